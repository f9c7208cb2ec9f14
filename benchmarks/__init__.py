"""Benchmarks (pytest-benchmark), each beside the peer a user would otherwise use."""
