"""Reads a symbol's price path and signals from backfill output (the Parquet datasets of ``stockstream backfill``).

Called by :mod:`spark_jobs.backtest.run` once per symbol. Prices are the timeframe's
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


def _dataset(root: Path, kind: str) -> ds.Dataset:
    path = root / kind
    if not path.is_dir():
        raise BacktestInputError(f"{path} does not exist: point --input at a `stockstream backfill` output folder")
    return ds.dataset(path, format="parquet", partitioning="hive")


def symbols(root: Path) -> list[str]:
    """Every symbol with indicator rows in the output (the ``symbol=…`` folders)."""
    folder = root / "indicators"
    if not folder.is_dir():
        raise BacktestInputError(f"{folder} does not exist: point --input at a `stockstream backfill` output folder")
    return sorted(p.name.removeprefix("symbol=") for p in folder.glob("symbol=*") if p.is_dir())


def load(root: Path, symbol: str, timeframe: str,
         rules: Sequence[str]) -> tuple[list[PricePoint], list[SignalPoint]]:
    """(prices, signals) of one symbol and timeframe; signals only of ``rules``."""
    wanted = (pc.field("symbol") == symbol) & (pc.field("timeframe") == timeframe)
    prices = (_dataset(root, "indicators")
              .to_table(columns=["ts_event", "price", "partition", "offset", "seq"], filter=wanted)
              .sort_by(ORDER))
    signal_table = (_dataset(root, "signals")
                    .to_table(columns=["ts_event", "side", "price", "rule", "partition", "offset", "seq"],
                              filter=wanted & pc.field("rule").isin(list(rules)))
                    .sort_by(ORDER))
    price_points = [PricePoint(ts, price) for ts, price in zip(
        _micros(prices["ts_event"]), prices["price"].to_pylist(), strict=True)]
    signal_points = [SignalPoint(ts, side, price, rule) for ts, side, price, rule in zip(
        _micros(signal_table["ts_event"]), signal_table["side"].to_pylist(), signal_table["price"].to_pylist(),
        signal_table["rule"].to_pylist(), strict=True)]
    return price_points, signal_points


def _micros(column: object) -> list[int]:
    """Timestamps as integer µs since the epoch (exact; Spark writes µs precision)."""
    micros = pc.cast(column, pa.timestamp("us", tz="UTC"))
    return [int(value) for value in pc.cast(micros, pa.int64()).to_pylist()]
