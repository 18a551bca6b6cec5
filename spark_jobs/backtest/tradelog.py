"""The trades CSV and the equity PNG of a portfolio backtest (:mod:`spark_jobs.backtest.portfolio`).

Called by ``stockstream backtest`` for a ticks-file input. Deterministic: the same result gives the
same CSV bytes (floats as ``repr``) and PNG bytes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from processors.core.timeutil import from_us
from spark_jobs.backtest.portfolio import PortfolioResult
from spark_jobs.backtest.simulate import EXIT_NAMES

COLUMNS = ("symbol", "direction", "entry_time", "entry_price", "exit_time", "exit_price", "units", "fees", "pnl",
           "net_return", "exit_reason")


def _iso(us: int) -> str:
    return from_us(int(us)).isoformat().replace("+00:00", "Z")


def write_portfolio_trades(path: Path, result: PortfolioResult) -> None:
    """One row per round trip, per instrument in input order, in time order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for item in result.instruments:
            trades, times = item.simulation.trades, item.bars.times
            for index in range(len(trades["direction"])):
                writer.writerow([
                    item.symbol, "long" if trades["direction"][index] > 0 else "short",
                    _iso(times[trades["entry_bar"][index]]), repr(float(trades["entry_price"][index])),
                    _iso(times[trades["exit_bar"][index]]), repr(float(trades["exit_price"][index])),
                    repr(float(trades["units"][index])), repr(float(trades["fees"][index])),
                    repr(float(trades["pnl"][index])), repr(float(trades["net_return"][index])),
                    EXIT_NAMES[int(trades["exit_reason"][index])],
                ])


def plot_portfolio(path: Path, result: PortfolioResult) -> None:
    """Portfolio equity vs buy-and-hold and its drawdown (matplotlib, headless, reproducible bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spark_jobs.backtest.metrics import drawdown

    moments = [from_us(int(us)) for us in result.times]
    initial = result.equity[0] if len(result.equity) else 1.0
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(moments, result.equity, "-", linewidth=1, label=f"strategy ({result.metrics['total_return'] * 100:+.2f}%)")
    top.plot(moments, result.hold_equity, "--", linewidth=1,
             label=f"buy & hold ({result.hold_metrics['total_return'] * 100:+.2f}%)")
    top.set_ylabel("equity")
    top.legend(loc="best", fontsize=8)
    top.grid(alpha=0.3)
    top.set_title(", ".join(i.symbol for i in result.instruments) + f" · start {initial:g}", fontsize=9)
    bottom.fill_between(moments, -drawdown(np.asarray(result.equity)) * 100, 0, color="#b3261e", alpha=0.4)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
