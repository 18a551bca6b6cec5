"""One sweep task's work: many parameter combinations over one instrument's bars, one at a time.

Called inside Spark tasks by :mod:`spark_jobs.sweep.job` (and directly by tests and the bench). The
strategy here is the dual moving-average crossover (the rule ``ema_cross`` of the core, on SMA or
EMA lines): BUY when fast − slow goes from ≤ 0 to > 0, SELL when from ≥ 0 to < 0 — the same
:func:`processors.core.vector.rules.cross` — traded by :func:`spark_jobs.backtest.simulate.run`
(next-bar open fills, fees). Memory per task is a few series of the bars' length: a combination's
signals are built, simulated and dropped; moving averages are cached only up to a budget.

A :class:`SweepStrategy` is what Phase B's rule-language strategies plug into: parameters in,
signals (+1/−1/0 per bar) out.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from processors.core.vector import indicators as kernel
from processors.core.vector.jit import njit
from spark_jobs.backtest.simulate import Signals, SimulationConfig, run

Floats = npt.NDArray[np.float64]
YEAR_US = 365 * 86_400 * 1_000_000
RESULT_COLUMNS = ("trades", "final_equity", "total_return", "sharpe", "sortino", "max_drawdown", "exposure")


@dataclass(frozen=True)
class Bars:
    """One instrument's bars (ticks: price as open and close) with their times (µs)."""

    times: npt.NDArray[np.int64]
    open: Floats
    close: Floats

    def __len__(self) -> int:
        return len(self.close)

    def slice(self, start: int, stop: int) -> Bars:
        return Bars(self.times[start:stop], self.open[start:stop], self.close[start:stop])

    @property
    def bars_per_year(self) -> float:
        spacing = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.0
        return YEAR_US / spacing if spacing > 0 else 0.0


class SweepStrategy(Protocol):
    """Signals of one parameter combination over bars (+1 BUY, −1 SELL, 0), no look-ahead."""

    def signals(self, parameters: dict[str, int | float], bars: Bars) -> Signals: ...


@njit
def cross_signals(fast: Floats, slow: Floats) -> Signals:  # pragma: no cover - compiled
    """+1 where fast − slow goes from ≤ 0 to > 0, −1 where from ≥ 0 to < 0 (NaN: no signal)."""
    size = fast.shape[0]
    out = np.zeros(size, dtype=np.int8)
    before = np.nan
    for index in range(size):
        difference = fast[index] - slow[index]
        if before <= 0.0 < difference:
            out[index] = 1
        elif before >= 0.0 > difference:
            out[index] = -1
        before = difference
    return out


class MovingAverageCross:
    """The dual moving-average crossover with parameters ``fast`` and ``slow`` (windows, in bars)."""

    def __init__(self, average: str = "sma", cache_bytes: int = 128 * 2**20) -> None:
        if average not in ("sma", "ema"):
            raise ValueError("average is sma or ema")
        self.average = average
        self.cache_bytes = cache_bytes
        # (id of the closes, window) → (those closes, line). The entry holds the closes so that their id
        # cannot be reused while it lives: walk-forward slices a view per fold and drops it, and a freed
        # view's address is soon handed to the next one (keyed by id alone, a fold got another's lines).
        self._cache: OrderedDict[tuple[int, int], tuple[Floats, Floats]] = OrderedDict()

    def line(self, window: int, bars: Bars) -> Floats:
        key = (id(bars.close), window)
        found = self._cache.get(key)
        if found is not None and found[0] is bars.close:
            self._cache.move_to_end(key)
            return found[1]
        line = kernel.sma(bars.close, window) if self.average == "sma" else kernel.ema(bars.close, window)
        limit = max(2, self.cache_bytes // max(1, line.nbytes))
        self._cache[key] = (bars.close, line)
        while len(self._cache) > limit:
            self._cache.popitem(last=False)
        return line

    def signals(self, parameters: dict[str, int | float], bars: Bars) -> Signals:
        fast, slow = int(parameters["fast"]), int(parameters["slow"])
        return cross_signals(self.line(fast, bars), self.line(slow, bars))


def evaluate(signals: Signals, bars: Bars, config: SimulationConfig, start: int = 0) -> dict[str, float]:
    """Simulate ``signals`` from bar ``start`` on (earlier bars only warm the indicators) → result columns."""
    nothing = np.full(len(bars) - start, np.nan)
    _, _, _, count, value, statistics = run(
        bars.open[start:], bars.close[start:], bars.close[start:], bars.close[start:], signals[start:], nothing,
        *config.arguments(), False)
    size = len(bars) - start
    per_year = math.sqrt(bars.bars_per_year) if bars.bars_per_year else 0.0
    mean = statistics[0] / size if size else 0.0
    variance = statistics[1] / size - mean * mean if size else 0.0
    downside = math.sqrt(statistics[2] / size) if size else 0.0
    return {
        "trades": float(count),
        "final_equity": value,
        "total_return": value / config.initial_capital - 1.0,
        "sharpe": mean / math.sqrt(variance) * per_year if variance > 0.0 else float("nan"),
        "sortino": mean / downside * per_year if downside > 0.0 else float("nan"),
        "max_drawdown": float(statistics[3]),
        "exposure": float(statistics[4]) / size if size else 0.0,
    }


def sweep(strategy: SweepStrategy, bars: Bars, combinations: Iterable[dict[str, int | float]],
          config: SimulationConfig, start: int = 0) -> Iterator[dict[str, float]]:
    """Each combination's parameters and results, one at a time (streaming: nothing is kept)."""
    for parameters in combinations:
        yield {**{name: float(value) for name, value in parameters.items()},
               **evaluate(strategy.signals(parameters, bars), bars, config, start)}
