"""The backfill's output rows: one wide row layout for every event kind, and the per-kind datasets.

The grouped step (:mod:`spark_jobs.backfill.runner`) returns one pandas frame per group in
the :func:`union_columns` layout (a ``kind`` column plus the union of every kind's fields);
the job then writes each kind as its own Parquet dataset with only that kind's columns
(:data:`DATASET_COLUMNS`), partitioned by ``symbol`` and ``date``. Pure: no Spark import
here, so the layout is testable without a JVM; :func:`spark_schema` builds the Spark type.

Every row keeps the causing tick's position (``partition``, ``offset``) and ``seq`` — the
event's index among the events that tick produced, in the live processor's emission order
(snapshots, candles, signals, summaries, then dead letters) — so ``(partition, offset, seq)``
orders a symbol's events exactly as the live output topics do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

KIND_INDICATORS = "indicators"
KIND_CANDLES = "candles"
KIND_SIGNALS = "signals"
KIND_DAILY = "daily"
KIND_DEAD_LETTERS = "dead_letters"
KIND_GROUP = "group"  # one report row per processed group (warm-up status), never written as data
EVENT_KINDS = (KIND_INDICATORS, KIND_CANDLES, KIND_SIGNALS, KIND_DAILY, KIND_DEAD_LETTERS)

# name → logical type; order is the frame's column order. Indicator columns follow ``price``.
COMMON: tuple[tuple[str, str], ...] = (
    ("kind", "string"), ("instrument", "string"), ("symbol", "string"), ("venue", "string"), ("date", "date"),
    ("timeframe", "string"),
    ("partition", "int"), ("offset", "long"), ("seq", "int"),
    ("ts_event", "timestamp"), ("ts_init", "timestamp"),
)
SPECIFIC: tuple[tuple[str, str], ...] = (
    ("ts_open", "timestamp"), ("ts_close", "timestamp"),
    ("open", "double"), ("high", "double"), ("low", "double"), ("close", "double"),
    ("volume", "double"), ("trade_count", "int"),
    ("mean_price", "double"), ("vwap", "double"), ("tick_count", "int"),
    ("buy_count", "int"), ("sell_count", "int"), ("final", "boolean"),
    ("signal_id", "string"), ("rule", "string"), ("side", "string"),
    ("source", "string"), ("reason", "string"), ("detail", "string"), ("raw", "string"),
    ("event", "string"),
)
POSITION = ("symbol", "date", "partition", "offset", "seq")


def indicator_column(name: str) -> str:
    """The column of one indicator value (``rsi_14`` → ``i_rsi_14``), kept apart from event fields."""
    return f"i_{name}"


def union_columns(indicator_names: Sequence[str]) -> list[tuple[str, str]]:
    """Every column of the grouped step's output frame, in order."""
    return [*COMMON, ("price", "double"),
            *((indicator_column(name), "double") for name in indicator_names), *SPECIFIC]


def dataset_columns(kind: str, indicator_names: Sequence[str], with_events: bool) -> list[str]:
    """The columns written for one kind (``event`` — the exact JSON — only when asked for)."""
    indicators = [indicator_column(name) for name in indicator_names]
    position = ["partition", "offset", "seq"]
    columns: dict[str, list[str]] = {
        KIND_INDICATORS: ["symbol", "venue", "date", "timeframe", "price", *indicators, "ts_event", "ts_init", *position],
        KIND_CANDLES: ["symbol", "venue", "date", "timeframe", "ts_open", "ts_close", "open", "high", "low", "close",
                       "volume", "trade_count", "ts_event", "ts_init", *position],
        KIND_SIGNALS: ["symbol", "venue", "date", "signal_id", "timeframe", "rule", "side", "price", *indicators,
                       "ts_event", "ts_init", *position],
        KIND_DAILY: ["symbol", "venue", "date", "open", "high", "low", "close", "mean_price", "vwap", "volume",
                     "tick_count", "buy_count", "sell_count", "final", "ts_event", "ts_init", *position],
        KIND_DEAD_LETTERS: ["symbol", "venue", "date", "source", "reason", "detail", "raw", "ts_init", *position],
    }
    chosen = columns[kind]
    return [*chosen, "event"] if with_events else chosen


def spark_schema(indicator_names: Sequence[str]) -> Any:
    """The Spark ``StructType`` of :func:`union_columns` (imports pyspark lazily)."""
    from pyspark.sql import types as T

    kinds = {
        "string": T.StringType(), "date": T.DateType(), "int": T.IntegerType(), "long": T.LongType(),
        "double": T.DoubleType(), "timestamp": T.TimestampType(), "boolean": T.BooleanType(),
    }
    return T.StructType([T.StructField(name, kinds[kind], True) for name, kind in union_columns(indicator_names)])
