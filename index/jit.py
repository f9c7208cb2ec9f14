"""The one place that sets Numba's compilation flags for every kernel in bcpi.

fastmath stays off so results are IEEE-exact and reproducible; kernels are cached on
disk so a second process does not pay the compile again.
"""

from __future__ import annotations

import functools

import numba

JIT_OPTIONS = {"nogil": True, "cache": True, "fastmath": False, "error_model": "numpy"}

njit = functools.partial(numba.njit, **JIT_OPTIONS)
"""Serial kernel."""

njit_parallel = functools.partial(numba.njit, parallel=True, **JIT_OPTIONS)
"""Kernel with ``numba.prange`` loops; each parallel iteration writes only its own slots."""
