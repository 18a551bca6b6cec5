"""Indicator nodes over whole series: a timeframe's evaluations in, every line of a node out.

Called by :mod:`processors.core.vector.strategies` for every node a strategy set needs on a
timeframe (and by the backfill and backtests through it). The nodes are the engine's own
descriptions (:mod:`processors.core.nodes`, built by :func:`processors.core.strategies.catalog.node_output`);
:class:`NodeValues` computes each one once per timeframe with its compiled kernel
(:mod:`.kernels`). A node whose input is undefined at an evaluation skips it (state untouched,
output undefined), exactly as the O(1) node does, so a kernel runs on the defined values of its
input and its results are scattered back. Undefined = NaN (node outputs are finite wherever
they are defined: their inputs are bounded prices and volumes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.core.nodes.averages import Bands, Ema, Macd, Rsi, Vwap, Window, Wma
from processors.core.nodes.base import Bar, Node, Output, Source
from processors.core.nodes.momentum import Obv, Roc
from processors.core.nodes.ranges import DX_ZERO, Atr, Cci, Directional, Extreme, FastK, WilliamsR
from processors.core.timeutil import DAY_US
from processors.core.vector import kernels
from processors.core.vector.exact import TWO, scratch

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Series:
    """One timeframe's evaluations in order: what the engine's bar slots hold at each of them.

    ``ts_us`` is the evaluation's event time (the tick's, or the candle's close), ``day`` the UTC
    day of VWAP's anchor (the tick's day, or the day the candle opened). On ``tick``, open, high,
    low and close are the price.
    """

    ts_us: Ints
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Floats
    day: Ints

    def __len__(self) -> int:
        return int(self.close.shape[0])

    @classmethod
    def ticks(cls, ts_us: npt.ArrayLike, price: npt.ArrayLike, volume: npt.ArrayLike | None = None) -> Series:
        """In-order ticks: event times (µs), prices, volumes (0 = unknown)."""
        times = np.ascontiguousarray(ts_us, dtype=np.int64)
        prices = np.ascontiguousarray(price, dtype=np.float64)
        volumes = np.zeros(len(prices)) if volume is None else np.ascontiguousarray(volume, dtype=np.float64)
        return cls(times, prices, prices, prices, prices, volumes, times // DAY_US)

    @classmethod
    def candles(cls, ts_open_us: npt.ArrayLike, ts_close_us: npt.ArrayLike, open_: npt.ArrayLike,
                high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, volume: npt.ArrayLike) -> Series:
        """Closed candles in the order they are handed to the engine (by close time)."""
        opens = np.ascontiguousarray(ts_open_us, dtype=np.int64)

        def floats(values: npt.ArrayLike) -> Floats:
            return np.ascontiguousarray(values, dtype=np.float64)

        return cls(np.ascontiguousarray(ts_close_us, dtype=np.int64), floats(open_), floats(high), floats(low),
                   floats(close), floats(volume), opens // DAY_US)

    def field(self, name: str) -> npt.NDArray[np.float64] | Ints:
        """A bar field by the engine's name (open, high, low, close, volume, day)."""
        return getattr(self, name)  # type: ignore[no-any-return]


Lines = tuple[Floats, ...]


def _on_defined(values: Floats, kernel: Callable[[Floats], Lines]) -> Lines:
    """``kernel`` over the defined values only, results scattered back (NaN where the input is undefined)."""
    defined = ~np.isnan(values)
    if defined.all():
        return kernel(values)
    picked = np.ascontiguousarray(values[defined])
    lines = []
    for line in kernel(picked):
        full = np.full(values.shape[0], np.nan)
        full[defined] = line
        lines.append(full)
    return tuple(lines)


class NodeValues:
    """Every node's lines over one timeframe's :class:`Series`, each computed once (memoized by node)."""

    def __init__(self, series: Series) -> None:
        self.series = series
        self._lines: dict[Node, Lines] = {}
        self._partials = scratch()

    def source(self, source: Source) -> Floats:
        if isinstance(source, Bar):
            values = self.series.field(source.field)
            return values.astype(np.float64) if source.field == "day" else values  # type: ignore[return-value]
        return self.lines(source.node)[source.index]

    def output(self, output: Output) -> Floats:
        return self.lines(output.node)[output.index]

    def lines(self, node: Node) -> Lines:
        found = self._lines.get(node)
        if found is None:
            found = self._lines[node] = self._compute(node)
        return found

    def _compute(self, node: Node) -> Lines:  # noqa: PLR0911 - one branch per node kind
        partials = self._partials
        series = self.series
        if isinstance(node, Window):
            n = node.period
            return _on_defined(self.source(node.source),
                               lambda x: (kernels.window_sums(x, n, partials) / n,))
        if isinstance(node, Bands):
            window = node.window
            n, width = window.period, float(node.deviations)
            deviations = np.empty(n)
            return _on_defined(self.source(window.source), lambda x: kernels.bands(
                x, kernels.window_sums(x, n, partials), n, width, partials, deviations, TWO))
        if isinstance(node, Ema):
            return _on_defined(self.source(node.source), lambda x: (kernels.ema(x, node.period),))
        if isinstance(node, Rsi):
            return _on_defined(self.source(node.source), lambda x: (kernels.rsi(x, node.period),))
        if isinstance(node, Wma):
            products = np.empty(node.period)
            return _on_defined(self.source(node.source),
                               lambda x: (kernels.wma(x, node.period, partials, products),))
        if isinstance(node, Roc):
            return _on_defined(self.source(node.source), lambda x: (kernels.roc(x, node.period),))
        if isinstance(node, Extreme):
            return _on_defined(self.source(node.source),
                               lambda x: (kernels.extreme(x, node.period, node.highest),))
        if isinstance(node, Macd):
            return kernels.macd(self.output(Output(node.fast)), self.output(Output(node.slow)), node.signal)
        if isinstance(node, Vwap):
            return (kernels.vwap(series.close, series.volume, series.day),)
        if isinstance(node, Obv):
            return (kernels.obv(series.close, series.volume),)
        if isinstance(node, Atr):
            return (kernels.atr(series.high, series.low, series.close, node.period),)
        if isinstance(node, Directional):
            return kernels.directional(series.high, series.low, series.close, node.period, DX_ZERO)
        if isinstance(node, FastK | WilliamsR):
            return (kernels.stochastic_k(self.output(Output(node.highest)), self.output(Output(node.lowest)),
                                         series.close, isinstance(node, WilliamsR)),)
        if isinstance(node, Cci):
            return (kernels.cci(series.high, series.low, series.close, node.period, partials,
                                np.empty(node.period)),)
        raise TypeError(f"no vector kernel for node {node.key()}")
