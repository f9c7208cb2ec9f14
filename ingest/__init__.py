"""Exchange trade feeds: reading, validation, normalisation to benchmark specs, storage."""
