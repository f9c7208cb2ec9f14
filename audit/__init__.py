"""Layer 5: the audit: verification of the hash chain over archived batches, and replay of
published values from the archive and the journal."""
