"""Audit: the hash chain over archived batches, the journal of computations, replay."""
