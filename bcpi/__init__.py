"""bcpi: the Beijing bulk-commodity price index engine."""

__version__ = "0.1.0"
