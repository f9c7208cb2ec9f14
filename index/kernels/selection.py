"""Order statistics in place: a selection costs a pass where a sort costs n log n."""

from __future__ import annotations

from index.jit import njit


@njit
def _select(values, k):
    """The k-th smallest of ``values``, found in place (quickselect): afterwards no value
    before position k is larger and none after it is smaller."""
    lo, hi = 0, values.size - 1
    while hi > lo:
        pivot = values[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return values[k]


@njit
def median_in_place(values):
    """The median of ``values`` (reordered in place), by selection rather than a sort; the
    order statistics are exact, so it is the number a sort would give."""
    n = values.size
    half = n // 2
    upper = _select(values, half)
    if n % 2 == 1:
        return upper
    lower = values[0]
    for i in range(1, half):
        lower = max(lower, values[i])
    return (lower + upper) / 2.0
