"""Backtests over backfill output (``stockstream backtest --input FOLDER`` or a range of the log) with the next-bar model.

Called by :mod:`stockstream.commands.backtest`. The signals are those the backfill recorded — the
live processor's own, replayed — for the chosen rules on one timeframe; they are traded by
:func:`spark_jobs.backtest.portfolio.trade` exactly as a ticks file is (docs/spark.md, "Backtest
model"): a signal at bar i fills at the open of bar i + 1, never at its own price.

Bars per instrument:

- ``tick``: every indicator snapshot of the tick timeframe in log order (partition, offset, seq);
  open = high = low = close = the tick's price, so a tick signal fills at the **next tick's** price.
- a candle timeframe: the snapshots of that timeframe (one per closed candle, at its close) give the
  order; open/high/low/close/volume come from the ``candles`` dataset of the same timeframe (matched
  on the candle's close time), so a candle signal fills at the **next candle's open**.

A signal belongs to the bar of the same input record (partition, offset): the snapshot and the
signals the processor emitted for it. BUY and SELL on one bar cancel. Missing datasets, unknown
instruments and signals that match no bar are :class:`~spark_jobs.backtest.data.BacktestInputError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow.compute as pc

from schemas.timeframes import TICK
from spark_jobs.backtest.data import ORDER, BacktestInputError, instruments, micros, open_dataset, select
from spark_jobs.backtest.portfolio import InstrumentBars, PortfolioResult, trade, weights_of
from spark_jobs.backtest.simulate import SimulationConfig


def _filter(instrument: str, timeframe: str) -> pc.Expression:
    symbol, _, venue = instrument.partition("@")
    wanted = (pc.field("symbol") == symbol) & (pc.field("timeframe") == timeframe)
    return wanted & (pc.field("venue") == venue) if venue else wanted


def load(root: Path, instrument: str, timeframe: str,
         rules: Sequence[str]) -> tuple[InstrumentBars, npt.NDArray[np.int8]]:
    """One instrument's bars of ``timeframe`` and its +1/−1/0 signal per bar from the chosen ``rules``."""
    wanted = _filter(instrument, timeframe)
    snapshots = (open_dataset(root, "indicators")
                 .to_table(columns=["ts_event", "price", "partition", "offset", "seq"], filter=wanted)
                 .sort_by(ORDER))
    times = np.array(micros(snapshots["ts_event"]), dtype=np.int64)
    price = snapshots["price"].to_numpy().astype(np.float64)
    if timeframe == TICK:
        opens = highs = lows = closes = price
        volume = np.zeros(len(price))
    else:
        candles = (open_dataset(root, "candles")
                   .to_table(columns=["ts_close", "open", "high", "low", "close", "volume"], filter=wanted))
        frame = pd.DataFrame({"ts": micros(candles["ts_close"]), **{name: candles[name].to_numpy()
                                                                      for name in ("open", "high", "low", "close",
                                                                                   "volume")}})
        frame = frame.drop_duplicates("ts", keep="last").set_index("ts").reindex(times)
        if frame["open"].isna().any():
            first = int(times[np.flatnonzero(frame["open"].isna().to_numpy())[0]])
            raise BacktestInputError(f"{instrument}: no {timeframe} candle closing at {first} µs in {root}/candles")
        opens, highs, lows = (frame[name].to_numpy(dtype=np.float64) for name in ("open", "high", "low"))
        closes = frame["close"].to_numpy(dtype=np.float64)
        volume = frame["volume"].to_numpy(dtype=np.float64)
    bars = InstrumentBars(instrument, times, opens, highs, lows, closes, volume)
    signal_table = (open_dataset(root, "signals")
                    .to_table(columns=["side", "partition", "offset"],
                              filter=wanted & pc.field("rule").isin(list(rules))))
    keys = pd.MultiIndex.from_arrays([snapshots["partition"].to_numpy(), snapshots["offset"].to_numpy()])
    where = keys.get_indexer(pd.MultiIndex.from_arrays([signal_table["partition"].to_numpy(),
                                                        signal_table["offset"].to_numpy()]))
    if (where < 0).any():
        raise BacktestInputError(f"{instrument}: {int((where < 0).sum())} {timeframe} signals match no snapshot")
    total = np.zeros(len(times), dtype=np.int64)
    sides = np.where(np.array(signal_table["side"].to_pylist()) == "BUY", 1, -1)
    np.add.at(total, where, sides)
    return bars, np.sign(total).astype(np.int8)


def run_backfilled(root: Path, symbols: Sequence[str], timeframe: str, config: SimulationConfig,
                   rules: Sequence[str], weights: dict[str, float] | None = None) -> PortfolioResult:
    """Every requested instrument of the output on its share of the capital (as :func:`~.portfolio.run_portfolio`)."""
    available = instruments(root)
    chosen, missing = select(available, symbols)
    if missing:
        raise BacktestInputError(f"no backfill output for {missing} in {root} (it has {available})")
    signalled = []
    for instrument in chosen:
        bars, signal = load(root, instrument, timeframe, rules)
        if not len(bars.close):
            raise BacktestInputError(f"{instrument} has no {timeframe} prices in {root}")
        signalled.append((bars, signal))
    return trade(signalled, timeframe, config, weights_of(chosen, weights))
