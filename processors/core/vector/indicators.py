"""The indicator set of an :class:`~processors.core.indicators.IndicatorSpec` over whole arrays.

Called by the sweeps (:func:`sma`, :func:`ema`: one moving-average line per parameter) and by code
that computes the classic snapshot columns of a series at once. The values are the engine's
**bits**: every line is the node the engine uses for it (:func:`processors.core.strategies.builtin.indicator_outputs`
maps the spec to nodes; :class:`~processors.core.nodes` are bit-identical to
:class:`~processors.core.indicators.IndicatorEngine`), computed by its compiled kernel
(:mod:`processors.core.vector.kernels`). Held to the engine by tests/unit/core/test_core_vector_kernel.py.

Undefined values (the engine's ``None``) are NaN. Inputs: ``price`` float64, ``volume`` float64
(0 = unknown), ``day`` int64 UTC day numbers (VWAP anchor).
"""

from __future__ import annotations

import numpy as np

from processors.core.indicators import IndicatorSpec
from processors.core.strategies.builtin import indicator_outputs
from processors.core.strategies.catalog import node_output
from processors.core.vector import kernels
from processors.core.vector.exact import scratch
from processors.core.vector.nodes import Floats, Ints, NodeValues, Series

Days = Ints


def sma(price: Floats, n: int) -> Floats:
    """SMA(n): the mean of the last n prices (the engine's running window sum and re-derivations)."""
    values = np.ascontiguousarray(price, dtype=np.float64)
    return kernels.window_sums(values, n, scratch()) / n


def ema(price: Floats, n: int) -> Floats:
    """EMA(n) seeded with the SMA of the first n prices, then ``ema += k·(p − ema)``."""
    return kernels.ema(np.ascontiguousarray(price, dtype=np.float64), n)


def compute(spec: IndicatorSpec, price: Floats, volume: Floats | None = None,
            day: Days | None = None) -> dict[str, Floats]:
    """Every indicator of ``spec`` over one series, keyed by :meth:`IndicatorSpec.names` (in that order).

    ``volume`` and ``day`` are needed only for VWAP (missing: no volume, one day). The series is one
    symbol's prices in event order, as the engine would be fed them from a fresh state.
    """
    prices = np.ascontiguousarray(price, dtype=np.float64)
    size = prices.shape[0]
    volumes = np.zeros(size) if volume is None else np.ascontiguousarray(volume, dtype=np.float64)
    days = np.zeros(size, dtype=np.int64) if day is None else np.ascontiguousarray(day, dtype=np.int64)
    series = Series(np.zeros(size, dtype=np.int64), prices, prices, prices, prices, volumes, days)
    nodes = NodeValues(series)
    return {name: nodes.output(node_output(indicator)) for name, indicator in indicator_outputs(spec)}
