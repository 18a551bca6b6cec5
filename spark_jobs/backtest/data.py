"""Reads an instrument's price path and signals from backfill output (the Parquet datasets of ``stockstream backfill``).

Called by :mod:`spark_jobs.backtest.run` once per instrument (``SYMBOL@venue``: two venues quoting
one symbol are two price paths, never one mixed series; output written before venues existed has
no ``venue`` column, and each symbol is then one instrument named by the symbol alone). Prices are the timeframe's
indicator snapshots (tick prices, or candle closes for a candle timeframe), signals those of
the chosen rules on the same timeframe, both in log order (partition, offset, seq) — the
order the live processor emitted them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from spark_jobs.backtest.engine import PricePoint, SignalPoint

ORDER = [("partition", "ascending"), ("offset", "ascending"), ("seq", "ascending")]


class BacktestInputError(ValueError):
    """The backfill output is missing or holds nothing for the request; the message says what."""


def open_dataset(root: Path, kind: str) -> ds.Dataset:
    path = root / kind
    if not path.is_dir():
        raise BacktestInputError(f"{path} does not exist: point --input at a `stockstream backfill` output folder")
    return ds.dataset(path, format="parquet", partitioning="hive")


def instruments(root: Path) -> list[str]:
    """Every instrument with indicator rows in the output: ``SYMBOL@venue`` (``SYMBOL`` without a venue column)."""
    indicators = open_dataset(root, "indicators")
    if "venue" not in indicators.schema.names:
        return sorted(set(indicators.to_table(columns=["symbol"])["symbol"].to_pylist()))
    pairs = indicators.to_table(columns=["symbol", "venue"]).group_by(["symbol", "venue"]).aggregate([])
    return sorted(f"{symbol}@{venue}" for symbol, venue in zip(
        pairs["symbol"].to_pylist(), pairs["venue"].to_pylist(), strict=True))


def select(available: Sequence[str], requested: Sequence[str]) -> tuple[list[str], list[str]]:
    """(chosen instruments, requests matching none): ``BTC-USD`` picks each venue's BTC-USD, ``BTC-USD@kraken`` one."""
    if not requested:
        return list(available), []
    chosen: list[str] = []
    missing: list[str] = []
    for wanted in requested:
        matches = [name for name in available if name == wanted or name.partition("@")[0] == wanted]
        chosen += [name for name in matches if name not in chosen]
        if not matches:
            missing.append(wanted)
    return chosen, missing


def load(root: Path, instrument: str, timeframe: str,
         rules: Sequence[str]) -> tuple[list[PricePoint], list[SignalPoint]]:
    """(prices, signals) of one instrument and timeframe; signals only of ``rules``."""
    symbol, _, venue = instrument.partition("@")
    wanted = (pc.field("symbol") == symbol) & (pc.field("timeframe") == timeframe)
    if venue:
        wanted &= pc.field("venue") == venue
    prices = (open_dataset(root, "indicators")
              .to_table(columns=["ts_event", "price", "partition", "offset", "seq"], filter=wanted)
              .sort_by(ORDER))
    signal_table = (open_dataset(root, "signals")
                    .to_table(columns=["ts_event", "side", "price", "rule", "partition", "offset", "seq"],
                              filter=wanted & pc.field("rule").isin(list(rules)))
                    .sort_by(ORDER))
    price_points = [PricePoint(ts, price) for ts, price in zip(
        micros(prices["ts_event"]), prices["price"].to_pylist(), strict=True)]
    signal_points = [SignalPoint(ts, side, price, rule) for ts, side, price, rule in zip(
        micros(signal_table["ts_event"]), signal_table["side"].to_pylist(), signal_table["price"].to_pylist(),
        signal_table["rule"].to_pylist(), strict=True)]
    return price_points, signal_points


def micros(column: object) -> list[int]:
    """Timestamps as integer µs since the epoch (exact; Spark writes µs precision)."""
    micros = pc.cast(column, pa.timestamp("us", tz="UTC"))
    return [int(value) for value in pc.cast(micros, pa.int64()).to_pylist()]
