"""Layer 3: exchange trade feeds in: reading, validation, normalisation to benchmark specs,
the push and file services, idempotent storage. No HTTP types."""
