"""The backfill's output rows: one wide row layout for every event kind, and the per-kind datasets.

The grouped step (:mod:`spark_jobs.backfill.runner`) returns one pandas frame per group in
the :func:`union_columns` layout (a ``kind`` column plus the union of every kind's fields);
the job then writes each kind as its own Parquet dataset with only that kind's columns
(:data:`DATASET_COLUMNS`), partitioned by ``symbol`` and ``date``. Pure: no Spark import
here, so the layout is testable without a JVM; :func:`spark_schema` builds the Spark type.

Every row keeps the causing tick's position (``partition``, ``offset``) and ``seq`` — the
event's index among the events that tick produced, in the live processor's emission order
(snapshots, candles, signals, summaries, outcomes, then dead letters) — so ``(partition, offset, seq)``
orders a symbol's events exactly as the live output topics do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

KIND_INDICATORS = "indicators"
KIND_CANDLES = "candles"
KIND_SIGNALS = "signals"
KIND_DAILY = "daily"
KIND_DEAD_LETTERS = "dead_letters"
KIND_OUTCOMES = "outcomes"
KIND_GROUP = "group"  # one report row per processed group (warm-up status), never written as data
EVENT_KINDS = (KIND_INDICATORS, KIND_CANDLES, KIND_SIGNALS, KIND_DAILY, KIND_OUTCOMES, KIND_DEAD_LETTERS)

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
    ("strategy", "string"), ("strategy_version", "string"), ("condition", "string"),
    ("outcome_id", "string"), ("horizon", "string"), ("signal_price", "double"), ("signal_ts", "timestamp"),
    ("return_gross", "double"), ("return_net", "double"), ("fee", "double"),
    ("source", "string"), ("reason", "string"), ("detail", "string"), ("raw", "string"),
    ("event", "string"),
)
POSITION = ("symbol", "date", "partition", "offset", "seq")


def indicator_column(name: str) -> str:
    """The column of one indicator value (``rsi_14`` → ``i_rsi_14``), kept apart from event fields."""
    return f"i_{name}"


def union_columns(indicator_names: Sequence[str], signal_values: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Every column of the grouped step's output frame, in order.

    ``signal_values`` are the names of the strategies' values (:func:`signal_value_names`) that are not
    fixed indicators: a strategy's signal carries them, a snapshot never does.
    """
    return [*COMMON, ("price", "double"),
            *((indicator_column(name), "double") for name in (*indicator_names, *signal_values)), *SPECIFIC]


def signal_value_names(indicator_names: Sequence[str], strategy_columns: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The names of the values the strategies' signals carry (every timeframe's) not among ``indicator_names``.

    A strategy signal's ``indicators`` are its timeframe's strategy values (``ema_9``, ``stoch_14_3_3_k``):
    they get their own ``i_<name>`` columns in the ``signals`` dataset; a name equal to a fixed indicator's
    (``ema_12``, ``rsi_14``) is the same value and shares its column.
    """
    found: dict[str, None] = {}
    for names in strategy_columns.values():
        for name in names:
            if name not in indicator_names:
                found.setdefault(name)
    return tuple(found)


def dataset_columns(kind: str, indicator_names: Sequence[str], with_events: bool,
                    signal_values: Sequence[str] = ()) -> list[str]:
    """The columns written for one kind (``event`` — the exact JSON — only when asked for)."""
    indicators = [indicator_column(name) for name in indicator_names]
    values = [indicator_column(name) for name in signal_values]
    position = ["partition", "offset", "seq"]
    columns: dict[str, list[str]] = {
        KIND_INDICATORS: ["symbol", "venue", "date", "timeframe", "price", *indicators, "ts_event", "ts_init", *position],
        KIND_CANDLES: ["symbol", "venue", "date", "timeframe", "ts_open", "ts_close", "open", "high", "low", "close",
                       "volume", "trade_count", "ts_event", "ts_init", *position],
        KIND_SIGNALS: ["symbol", "venue", "date", "signal_id", "timeframe", "rule", "strategy", "strategy_version",
                       "condition", "side", "price", *indicators, *values, "ts_event", "ts_init", *position],
        KIND_DAILY: ["symbol", "venue", "date", "open", "high", "low", "close", "mean_price", "vwap", "volume",
                     "tick_count", "buy_count", "sell_count", "final", "ts_event", "ts_init", *position],
        KIND_OUTCOMES: ["symbol", "venue", "date", "outcome_id", "signal_id", "strategy", "strategy_version",
                        "timeframe", "side", "horizon", "signal_price", "signal_ts", "price", "return_gross",
                        "return_net", "fee", "ts_event", "ts_init", *position],
        KIND_DEAD_LETTERS: ["symbol", "venue", "date", "source", "reason", "detail", "raw", "ts_init", *position],
    }
    chosen = columns[kind]
    return [*chosen, "event"] if with_events else chosen


def spark_schema(indicator_names: Sequence[str], signal_values: Sequence[str] = ()) -> Any:
    """The Spark ``StructType`` of :func:`union_columns` (imports pyspark lazily)."""
    from pyspark.sql import types as T

    kinds = {
        "string": T.StringType(), "date": T.DateType(), "int": T.IntegerType(), "long": T.LongType(),
        "double": T.DoubleType(), "timestamp": T.TimestampType(), "boolean": T.BooleanType(),
    }
    return T.StructType([T.StructField(name, kinds[kind], True) for name, kind in union_columns(indicator_names, signal_values)])
