"""Crash-safety harness and test-only fault injection."""
