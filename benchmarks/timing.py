"""What the benchmarks share: the best round's time, when there is one."""

from __future__ import annotations


def best_seconds(benchmark) -> float | None:
    """The best round's time, or ``None`` when benchmarks are disabled: the function then
    ran once, as a test of its answer, and no timing was kept."""
    return None if benchmark.stats is None else benchmark.stats.stats.min
