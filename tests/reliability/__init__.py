"""Crash, fuzz and abuse harnesses: test tooling, never in the wheel."""
