"""Performance metrics of an equity curve and its round trips (pure numpy).

Called by backtests (one instrument or a portfolio) and by the sweep for every combination's
chosen metric. Definitions (docs/spark.md, "Metrics"):

- total return = final / initial − 1; CAGR = (final / initial)^(1/years) − 1 over the event-time span
  (365-day years; None for a span under 30 days — annualising days of data says nothing — or a bust account).
- Sharpe / Sortino: mean / σ (Sortino: downside deviation, √mean(min(r, 0)²)) of per-bar equity returns,
  annualised by √(bars per year), bars per year from the median bar spacing; risk-free 0. None when
  undefined (fewer than two returns, σ = 0).
- max drawdown: largest peak-to-trough fall, a fraction; its duration: the longest time (µs) from a
  peak until equity is back at that peak (or the end).
- Calmar = CAGR / max drawdown (None when either is undefined or the drawdown is 0).
- profit factor = Σ winning pnl / |Σ losing pnl| (None without a loss); win rate = winners / trades;
  expectancy = mean net return per trade; exposure = share of bars with a position at the close.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

YEAR_US = 365 * 86_400 * 1_000_000
METRIC_NAMES = ("total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_duration_s",
                "profit_factor", "win_rate", "expectancy", "exposure", "trades", "final_equity")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def drawdown(equity: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The drawdown at every point: 1 − equity / running peak (0 at a new high)."""
    peaks = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peaks > 0.0, 1.0 - equity / peaks, 0.0)


def _longest_underwater(equity: npt.NDArray[np.float64], times: npt.NDArray[np.int64]) -> int:
    peaks = np.maximum.accumulate(equity)
    longest, start = 0, None
    for index in range(len(equity)):
        if equity[index] >= peaks[index]:
            if start is not None:
                longest = max(longest, int(times[index] - times[start]))
            start = None
        elif start is None:
            start = index - 1 if index else index
    if start is not None:
        longest = max(longest, int(times[-1] - times[start]))
    return longest


def compute(equity: npt.NDArray[np.float64], times: npt.NDArray[np.int64], initial: float,
            pnl: npt.NDArray[np.float64], net_returns: npt.NDArray[np.float64],
            position: npt.NDArray[np.float64] | None = None) -> dict[str, Any]:
    """Every metric of :data:`METRIC_NAMES` (None where undefined)."""
    final = float(equity[-1]) if len(equity) else initial
    total = final / initial - 1.0
    span = float(times[-1] - times[0]) if len(times) > 1 else 0.0
    cagr = None
    if span >= 30 * 86_400 * 1e6 and final > 0.0:
        cagr = _finite((final / initial) ** (YEAR_US / span) - 1.0)
    sharpe = sortino = None
    if len(equity) > 2:
        before = np.concatenate([[initial], equity[:-1]])
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = np.where(before > 0.0, equity / before - 1.0, 0.0)
        spacing = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        if spacing > 0.0:
            scale = math.sqrt(YEAR_US / spacing)
            deviation = float(np.std(returns))
            mean = float(np.mean(returns))
            if deviation > 0.0:
                sharpe = _finite(mean / deviation * scale)
            downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
            if downside > 0.0:
                sortino = _finite(mean / downside * scale)
    falls = drawdown(np.concatenate([[initial], equity]))
    worst = float(falls.max()) if len(falls) else 0.0
    calmar = cagr / worst if cagr is not None and worst > 0.0 else None
    wins = pnl[pnl > 0.0]
    losses = pnl[pnl < 0.0]
    trades = len(pnl)
    return {
        "total_return": total,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "max_drawdown": worst,
        "max_drawdown_duration_s": _longest_underwater(equity, times) / 1e6 if len(equity) else 0.0,
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else None,
        "win_rate": len(wins) / trades if trades else None,
        "expectancy": float(np.mean(net_returns)) if trades else None,
        "exposure": float(np.mean(position != 0.0)) if position is not None and len(position) else 0.0,
        "trades": trades,
        "final_equity": final,
    }
