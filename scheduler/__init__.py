"""Layer 6: the scheduler process: leader election, the exactly-once fence per slot, and
thin jobs that call the publication services."""
