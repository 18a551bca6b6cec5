"""Optional numba: ``njit`` compiles the kernel's loops when numba is installed, else leaves them as Python.

Called at import by the kernel modules of this package. numba is in the ``spark`` extra (history:
backfill, backtests, sweeps); the live processor never imports this package, so it needs neither
numba nor numpy. Without numba the kernel gives the same numbers, about 100× slower.

The compiled loops use strict IEEE arithmetic (no ``fastmath``, so no reassociation and no fused
multiply-add): a loop written in the same operation order as :mod:`processors.core.indicators`
gives the same bits as the engine.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar, cast

FunctionT = TypeVar("FunctionT", bound=Callable[..., Any])

try:
    _numba: Any = importlib.import_module("numba")
except ImportError:  # pragma: no cover - exercised only where numba is absent
    _numba = None

HAVE_NUMBA = _numba is not None


def njit(function: FunctionT) -> FunctionT:
    """``numba.njit(cache=True)`` when numba is installed; the function unchanged otherwise."""
    if _numba is None:  # pragma: no cover
        return function
    return cast(FunctionT, _numba.njit(cache=True, nogil=True)(function))
