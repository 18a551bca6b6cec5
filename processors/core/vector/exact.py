"""The engine's two non-elementary float operations, compiled with the same results: ``math.fsum`` and ``x ** 2``.

Called by the kernels of :mod:`processors.core.vector.nodes` wherever the O(1) engine
(:mod:`processors.core.nodes`) re-derives a sum exactly (SMA, Bollinger, WMA, CCI), so that a
kernel gives the engine's bits, not just values within rounding.

- :func:`exact_sum` is CPython's ``math.fsum`` (Shewchuk's non-overlapping partials, then the
  half-even correction across partials) written for numba: the correctly rounded sum of finite
  values, so the same bits as ``math.fsum`` for every input the engine sums (prices and the
  values derived from them are finite). Order does not matter to a correctly rounded sum, so a
  kernel may sum a window in time order where the engine sums its ring buffer.
- :func:`square` is ``x ** 2`` as CPython computes it: the C library's ``pow(x, 2.0)``, which is
  not always the correctly rounded ``x * x``. The exponent comes from an array the caller passes
  in (:data:`TWO`), so the compiler cannot fold ``pow(x, 2.0)`` into ``x * x``.

Both are tested against CPython on random and adversarial inputs
(tests/unit/core/test_core_vector_strategies.py).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from processors.core.vector.jit import njit

Floats = npt.NDArray[np.float64]

PARTIALS = 128
"""Scratch size for :func:`exact_sum`: non-overlapping partials of finite doubles number at most ~40."""

TWO = np.array([2.0])
"""The exponent of :func:`square`, handed in at run time (see the module docstring)."""


def scratch() -> Floats:
    """A scratch buffer for :func:`exact_sum` (callers allocate one per kernel call, not per sum)."""
    return np.empty(PARTIALS)


@njit
def exact_sum(values: Floats, start: int, stop: int, partials: Floats) -> float:  # pragma: no cover - compiled
    """``math.fsum(values[start:stop])`` for finite values; ``partials`` is scratch of :data:`PARTIALS`."""
    count = 0
    for index in range(start, stop):
        x = values[index]
        kept = 0
        for j in range(count):
            y = partials[j]
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low != 0.0:
                partials[kept] = low
                kept += 1
            x = high
        count = kept
        if x != 0.0:
            partials[count] = x
            count += 1
    high = 0.0
    if count > 0:
        count -= 1
        high = partials[count]
        low = 0.0
        while count > 0:
            x = high
            count -= 1
            y = partials[count]
            high = x + y
            low = y - (high - x)
            if low != 0.0:
                break
        # Half-even rounding across several partials (as CPython does).
        if count > 0 and ((low < 0.0 and partials[count - 1] < 0.0) or (low > 0.0 and partials[count - 1] > 0.0)):
            y = low * 2.0
            x = high + y
            if y == x - high:
                high = x
    return high  # type: ignore[no-any-return]


@njit
def square(x: float, two: Floats) -> float:  # pragma: no cover - compiled
    """``x ** 2`` exactly as CPython computes it (the C library's pow); ``two`` is :data:`TWO`."""
    return x ** two[0]  # type: ignore[no-any-return]
