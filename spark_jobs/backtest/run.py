"""``stockstream backtest`` minus the command line: load each instrument, simulate, write the trades CSV and the PNG.

Called by :mod:`stockstream.commands.backtest` with a backfill output folder (the command runs
a backfill first when given a range of the log instead). Deterministic: the same folder and
request give the same CSV bytes, metrics and picture.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from processors.core.rules import RULE_NAMES
from processors.core.timeutil import from_us
from spark_jobs.backtest import data
from spark_jobs.backtest.engine import BacktestConfig, BacktestResult, Metrics, simulate

TRADE_COLUMNS = ("symbol", "direction", "entry_time", "entry_price", "entry_rule", "exit_time", "exit_price",
                 "exit_rule", "units", "fees", "pnl", "net_return", "at_end")


@dataclass(frozen=True)
class BacktestRequest:
    input: Path
    symbols: tuple[str, ...] = ()  # empty: every instrument; SYMBOL: each venue's; SYMBOL@venue: that one
    timeframe: str = "tick"
    rules: tuple[str, ...] = RULE_NAMES
    config: BacktestConfig = BacktestConfig()
    trades_csv: Path | None = Path("trades.csv")
    equity_png: Path | None = Path("equity.png")


@dataclass(frozen=True)
class SymbolBacktest:
    symbol: str  # the instrument, SYMBOL@venue (SYMBOL alone for output written before venues)
    prices: int
    signals: int
    result: BacktestResult


def run(request: BacktestRequest) -> list[SymbolBacktest]:
    """Backtest every requested instrument; raises :class:`data.BacktestInputError` for missing input."""
    unknown = set(request.rules) - set(RULE_NAMES)
    if unknown:
        raise data.BacktestInputError(f"unknown rules {sorted(unknown)}: choose from {', '.join(RULE_NAMES)}")
    available = data.instruments(request.input)
    chosen, missing = data.select(available, request.symbols)
    if missing:
        raise data.BacktestInputError(f"no backfill output for {missing} in {request.input} (it has {available})")
    outcomes = []
    for symbol in chosen:
        prices, signals = data.load(request.input, symbol, request.timeframe, request.rules)
        if not prices:
            raise data.BacktestInputError(f"{symbol} has no {request.timeframe} prices in {request.input}")
        outcomes.append(SymbolBacktest(symbol, len(prices), len(signals), simulate(prices, signals, request.config)))
    if request.trades_csv is not None:
        write_trades(request.trades_csv, outcomes)
    if request.equity_png is not None:
        plot_equity(request.equity_png, outcomes, request)
    return outcomes


def _iso(us: int) -> str:
    return from_us(us).isoformat().replace("+00:00", "Z")


def write_trades(path: Path, outcomes: Sequence[SymbolBacktest]) -> None:
    """One row per round trip, every symbol, in time order per symbol (floats as ``repr``: exact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TRADE_COLUMNS)
        for outcome in outcomes:
            for trade in outcome.result.trades:
                writer.writerow([
                    outcome.symbol, trade.direction, _iso(trade.entry_ts_us), repr(trade.entry_price), trade.entry_rule,
                    _iso(trade.exit_ts_us), repr(trade.exit_price), trade.exit_rule, repr(trade.units),
                    repr(trade.fees), repr(trade.pnl), repr(trade.net_return), str(trade.at_end).lower(),
                ])


def plot_equity(path: Path, outcomes: Sequence[SymbolBacktest], request: BacktestRequest) -> None:
    """Strategy vs buy-and-hold equity, one panel per symbol (matplotlib, headless, reproducible bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(outcomes), 1, figsize=(10, 3.2 * len(outcomes)), squeeze=False, sharex=False)
    for axis, outcome in zip(axes[:, 0], outcomes, strict=True):
        result = outcome.result
        for curve, label, style in ((result.equity, f"strategy ({_pct(result.metrics.total_return)})", "-"),
                                    (result.buy_and_hold_equity,
                                     f"buy & hold ({_pct(result.buy_and_hold.total_return)})", "--")):
            if curve:
                axis.plot([from_us(ts) for ts, _ in curve], [value for _, value in curve], style, label=label,
                          linewidth=1)
        axis.set_title(f"{outcome.symbol} · {request.timeframe} · {', '.join(request.rules)} · "
                       f"{request.config.mode.replace('_', '-')}, fee {request.config.fee_rate:g}/side", fontsize=9)
        axis.set_ylabel("equity")
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
        axis.legend(loc="best", fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)


def _pct(value: float) -> str:
    return f"{value * 100:+.2f}%"


def metrics_dict(metrics: Metrics) -> dict[str, float | int | None]:
    return {"trades": metrics.trades, "win_rate": metrics.win_rate, "total_return": metrics.total_return,
            "max_drawdown": metrics.max_drawdown, "sharpe": metrics.sharpe, "exposure": metrics.exposure,
            "final_equity": metrics.final_equity}
