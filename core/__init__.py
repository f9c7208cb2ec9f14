"""Layer 1, the ground floor: settings, errors, the catalogue, the methodology, the calendar,
field names and the fault hook. Imports nothing of bcpi."""

__version__ = "0.1.0"
