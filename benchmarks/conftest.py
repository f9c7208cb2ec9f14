"""Benchmarks run only when asked: ``.venv/bin/pytest benchmarks --benchmark-enable -s``."""
