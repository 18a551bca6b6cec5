"""Where the backfill's events go: Parquet datasets, the ``*.backfill`` topics, Redis views.

Called by :func:`spark_jobs.backfill.job.run_backfill` with the cached result frame (the
:func:`spark_jobs.backfill.rows.union_columns` layout).

- **Parquet** (default): ``<root>/<kind>/symbol=…/date=…/*.parquet`` for kind in
  ``indicators, candles, signals, daily, outcomes, dead_letters``, each row with its ``venue`` (the
  instrument is ``symbol`` + ``venue``); rows ordered by log position. Dead letters of records
  without a key are under ``symbol=_``.
- **Topics**: every event, encoded exactly as the live processor encodes it, to the live
  topic's name + ``.backfill`` (``indicators.backfill``, ``candles.1m.backfill``,
  ``signals.backfill``, ``aggregates.daily.backfill``, ``signals.outcomes.backfill``, ``ticks.dlq.backfill``), key = the
  instrument ``SYMBOL@venue`` (dead letters: source), one instrument's events in log order. Kafka's writer is at-least-once:
  a re-run appends again; every event carries its lineage, so readers can deduplicate.
- **Redis**: the materializer's own planner and compare-and-set store
  (:mod:`processors.materialize`) under a key prefix of its own. The views' offsets are the
  events' log positions ``offset·1024 + seq`` (the causing tick's offset and the event's index
  among that tick's events), so a re-run writes nothing new and a view never moves backwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from schemas.topics import TopicSpec
from spark_jobs.backfill.rows import (
    EVENT_KINDS,
    KIND_CANDLES,
    KIND_DAILY,
    KIND_DEAD_LETTERS,
    KIND_INDICATORS,
    KIND_OUTCOMES,
    KIND_SIGNALS,
    dataset_columns,
)
from spark_jobs.progress import SparkProgress
from spark_jobs.settings import SparkJobSettings

BACKFILL_SUFFIX = ".backfill"
NO_KEY = "_"  # the symbol partition of dead letters from records without a key (never a valid symbol)
SEQ_SLOTS = 1024  # events one tick can produce at most, for Redis view positions
REDIS_BATCH = 2000
_MODES = {"error": "errorifexists", "overwrite": "overwrite", "dynamic": "overwrite"}


class OutputExistsError(RuntimeError):
    """``--mode error`` and the Parquet output already holds a dataset; nothing was computed."""


def check_parquet_output(spark: Any, root: str, mode: str) -> None:
    """Fail before any work when ``mode`` is error and a kind's dataset exists (any Hadoop file system)."""
    if mode != "error":
        return
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for kind in EVENT_KINDS:
        path = jvm.org.apache.hadoop.fs.Path(f"{root.rstrip('/')}/{kind}")
        if path.getFileSystem(conf).exists(path):
            raise OutputExistsError(f"{root} already holds backfill output ({kind}): choose another --output,"
                                    " or --mode overwrite / dynamic")


def write_parquet(result: DataFrame, root: str, names: tuple[str, ...], mode: str,
                  progress: SparkProgress, signal_values: tuple[str, ...] = ()) -> dict[str, str]:
    """One dataset per kind under ``root``; ``mode`` error (default), overwrite, or dynamic (only the
    symbol/date partitions present in this backfill are replaced)."""
    spark = result.sparkSession
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic" if mode == "dynamic" else "static")
    written = {}
    for kind in EVENT_KINDS:
        path = f"{root.rstrip('/')}/{kind}"
        columns = [F.coalesce(F.col(name), F.lit(NO_KEY)).alias(name) if name == "symbol" else F.col(name)
                   for name in dataset_columns(kind, names, False, signal_values)]
        with progress.step(f"writing {kind} to Parquet"):
            (result.where(F.col("kind") == kind).select(*columns)
             .sortWithinPartitions("symbol", "date", "partition", "offset", "seq")
             .write.mode(_MODES[mode]).partitionBy("symbol", "date").parquet(path))
        written[f"parquet:{kind}"] = path
    return written


def backfill_specs(settings: SparkJobSettings) -> dict[str, TopicSpec]:
    """The ``*.backfill`` topic of every output topic, by kind (candles: by timeframe)."""
    registry = settings.topics()

    def renamed(spec: TopicSpec) -> TopicSpec:
        return dataclasses.replace(spec, name=spec.name + BACKFILL_SUFFIX)

    specs = {
        KIND_INDICATORS: renamed(registry.indicators),
        KIND_SIGNALS: renamed(registry.signals),
        KIND_DAILY: renamed(registry.aggregates_daily),
        KIND_OUTCOMES: renamed(registry.signal_outcomes),
        KIND_DEAD_LETTERS: renamed(registry.ticks_dlq),
    }
    for timeframe in settings.candle_timeframes:
        specs[f"{KIND_CANDLES}:{timeframe}"] = renamed(registry.candles(timeframe))
    return specs


def write_topics(result: DataFrame, settings: SparkJobSettings, progress: SparkProgress) -> dict[str, str]:
    """Every event to its ``*.backfill`` topic (created first with the live topic's configuration)."""
    from processors.runtime.kafka_admin import ensure_topics

    specs = backfill_specs(settings)
    ensure_topics(settings, specs.values())
    kind = F.col("kind")
    topic = F.when(kind == KIND_CANDLES, F.concat(
        F.lit(settings.topics().name("candles.")), F.col("timeframe"), F.lit(BACKFILL_SUFFIX)))
    for name in (KIND_INDICATORS, KIND_SIGNALS, KIND_DAILY, KIND_OUTCOMES, KIND_DEAD_LETTERS):
        topic = topic.when(kind == name, F.lit(specs[name].name))
    key = F.when(kind == KIND_DEAD_LETTERS, F.col("source")).otherwise(F.col("instrument"))
    partitions = max(1, result.sparkSession.sparkContext.defaultParallelism)
    with progress.step("writing events to the .backfill topics"):
        (result.where(kind.isin(*EVENT_KINDS))
         .repartition(partitions, "instrument")
         .sortWithinPartitions("instrument", "partition", "offset", "seq")
         .select(topic.alias("topic"), key.alias("key"), F.col("event").alias("value"))
         .write.format("kafka").options(**settings.kafka_options())
         .option("kafka.acks", "all").option("kafka.enable.idempotence", "true")
         .option("kafka.linger.ms", "20").option("kafka.compression.type", "lz4")
         .save())
    return {f"topic:{name}": spec.name for name, spec in specs.items()}


class _RedisWriter:
    """``foreachPartition`` function: plan and apply view batches with the materializer's own code."""

    def __init__(self, settings: SparkJobSettings, prefix: str) -> None:
        self.settings = settings
        self.prefix = prefix

    def __call__(self, rows: Iterator[Any]) -> None:
        from processors.materialize.keys import ViewKeys
        from processors.materialize.planner import BatchPlanner, Caps, InputRecord, InputTopics
        from processors.materialize.settings import redis_client
        from processors.materialize.store import ViewStore

        registry = self.settings.topics()
        topics = InputTopics.from_registry(registry)
        by_kind = {KIND_INDICATORS: registry.indicators.name, KIND_SIGNALS: registry.signals.name,
                   KIND_DAILY: registry.aggregates_daily.name}
        keys = ViewKeys(self.prefix)
        planner = BatchPlanner(keys, topics, Caps(), lambda: datetime.now(UTC))
        client = redis_client(self.settings)
        store = ViewStore(client, keys, publish=False)
        batch: list[InputRecord] = []
        try:
            for row in rows:
                kind = row["kind"]
                topic = (registry.candles(row["timeframe"]).name if kind == KIND_CANDLES else by_kind.get(kind))
                if topic is None:
                    continue
                batch.append(InputRecord(topic=topic, partition=row["partition"],
                                         offset=row["offset"] * SEQ_SLOTS + row["seq"],
                                         key=row["instrument"].encode(), value=row["event"].encode()))
                if len(batch) >= REDIS_BATCH:
                    store.apply(planner.plan(batch))
                    batch = []
            if batch:
                store.apply(planner.plan(batch))
        finally:
            client.close()


def write_redis(result: DataFrame, settings: SparkJobSettings, prefix: str, progress: SparkProgress) -> dict[str, str]:
    """The views of every backfilled event under ``prefix`` (idempotent; see the module docstring)."""
    partitions = max(1, result.sparkSession.sparkContext.defaultParallelism)
    kinds = (KIND_INDICATORS, KIND_CANDLES, KIND_SIGNALS, KIND_DAILY)
    with progress.step(f"writing Redis views under {prefix!r}"):
        (result.where(F.col("kind").isin(*kinds))
         .select("kind", "instrument", "timeframe", "partition", "offset", "seq", "event")
         .repartition(partitions, "instrument")
         .sortWithinPartitions("instrument", "partition", "offset", "seq")
         .foreachPartition(_RedisWriter(settings, prefix)))
    return {"redis": prefix}
