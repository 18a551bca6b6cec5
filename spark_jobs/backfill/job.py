"""The Spark backfill: read a range of the ticks log (plus warm-up), recompute every derived event, write them.

Called by ``stockstream backfill`` (and the bench) with a started SparkSession. Steps, each a
Spark job under its own progress line:

1. **read & plan** — Spark's Kafka source reads the range plus the warm-up
   (:mod:`spark_jobs.backfill.ranges`); a first aggregation gives per (symbol, UTC day)
   row counts and first positions, from which :func:`spark_jobs.backfill.plan.plan_groups`
   cuts each symbol into chunks (groups), largest first.
2. **recompute** — a broadcast join routes every record to its group (warm-up records to the
   following chunks too), the groups are hash-partitioned one per task, and
   ``applyInPandas`` runs :func:`spark_jobs.backfill.runner.run_group` — the core's
   pipeline step in log order — per group. The result is cached.
3. **write** — one Parquet dataset per event kind (partitioned by symbol and date), and
   optionally the ``*.backfill`` topics and Redis views (:mod:`spark_jobs.backfill.sinks`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from processors.core.admission import INSTRUMENT_NOT_ALLOWED
from processors.core.pipeline import PipelineConfig
from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs, Strategy
from processors.core.timeutil import DAY_US, to_us
from processors.stream.encoding import lineage_of
from processors.stream.records import decode_tick
from schemas.events import Lineage, Tick
from schemas.instruments import UNKNOWN_VENUE, VENUE_MAX_LENGTH, VENUE_PATTERN
from schemas.timeframes import timeframe_ms
from spark_jobs.backfill import sinks
from spark_jobs.backfill.admission import Admission, FirstTick, decide
from spark_jobs.backfill.plan import (
    DEFAULT_MIN_WARMUP_US,
    DEFAULT_TOLERANCE,
    POSITION_BITS,
    DayStat,
    GroupPlan,
    SymbolRange,
    Warmup,
    plan_groups,
    strategies_warmup,
    strategy_warmup,
)
from spark_jobs.backfill.ranges import LogRange, RangeRequest, resolve_range
from spark_jobs.backfill.rows import (
    EVENT_KINDS,
    KIND_GROUP,
    dataset_columns,
    signal_value_names,
    spark_schema,
)
from spark_jobs.backfill.runner import SHORT, GroupContext, GroupReport, run_group, within_bounds
from spark_jobs.progress import SparkProgress
from spark_jobs.settings import SparkJobSettings

WriteMode = Literal["error", "overwrite", "dynamic"]


@dataclass(frozen=True)
class BackfillRequest:
    """What to backfill and where to write it (the CLI's options, validated)."""

    range: RangeRequest = field(default_factory=RangeRequest)
    symbols: tuple[str, ...] = ()
    output: str | None = None  # Parquet root (path or URI); None: no Parquet
    write_mode: WriteMode = "error"
    topics: bool = False  # events to the *.backfill topics
    redis_prefix: str | None = None  # Redis views under this key prefix; None: no Redis
    chunks: int | None = None  # chunks per symbol; None: automatic
    warmup_periods: int | None = None
    min_warmup_us: int = DEFAULT_MIN_WARMUP_US
    tolerance: float = DEFAULT_TOLERANCE
    strategy: Strategy = DEFAULT_STRATEGY

    @property
    def with_events(self) -> bool:
        return self.topics or self.redis_prefix is not None


@dataclass
class BackfillResult:
    log_range: LogRange
    warmup: Warmup
    groups: list[GroupReport]
    events: dict[str, int]
    timings: dict[str, float]
    outputs: dict[str, str]
    refused: dict[str, list[str]] = field(default_factory=dict)  # reason → instruments the limit refuses

    @property
    def rows(self) -> int:
        return sum(group.rows for group in self.groups)

    @property
    def refused_ticks(self) -> int:
        """Ticks in the range dead-lettered by the instrument limit (``instrument_limit``/``instrument_not_allowed``)."""
        return sum(group.refused for group in self.groups)

    @property
    def short(self) -> list[GroupReport]:
        return [group for group in self.groups if group.status == SHORT]


class _Configs:
    """Per-symbol pipeline configs, built lazily in each Python worker (cheap to pickle).

    The live processor's (:func:`processors.stream.topology.pipeline_configs`): strategy, candle
    timeframes, grace, scorecard horizons and fee.
    """

    def __init__(self, strategy: Strategy, candle_timeframes: tuple[str, ...], grace_ms: int,
                 horizons_ms: tuple[int, ...] = (), fee: float = 0.0) -> None:
        self.strategy = strategy
        self.candle_timeframes = candle_timeframes
        self.grace_ms = grace_ms
        self.horizons_ms = horizons_ms
        self.fee = fee
        self._configs: PipelineConfigs | None = None

    @classmethod
    def of(cls, strategy: Strategy, settings: SparkJobSettings) -> _Configs:
        return cls(strategy, settings.candle_timeframes, settings.grace_ms, settings.horizons_ms, settings.scorecard_fee)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_configs": None}

    def __call__(self, symbol: str) -> PipelineConfig:
        if self._configs is None:
            self._configs = PipelineConfigs(self.strategy, candle_timeframes=self.candle_timeframes,
                                            grace_ms=self.grace_ms, horizons_ms=self.horizons_ms, fee=self.fee)
        return self._configs.for_symbol(symbol)


class _GroupRunner:
    """``applyInPandas`` function: one group's rows → its events (see :func:`run_group`)."""

    def __init__(self, plans: list[GroupPlan], slots: list[int], context: GroupContext, configs: _Configs) -> None:
        self.plans = {slots[plan.group]: plan for plan in plans}
        self.context = context
        self.configs = configs

    def __call__(self, key: tuple[Any, ...], rows: pd.DataFrame) -> pd.DataFrame:
        plan = self.plans[int(key[0])]
        return run_group(rows, plan, self.context, self.configs)


def route(spark: SparkSession, raw: DataFrame, plans: list[GroupPlan], slots: list[int]) -> DataFrame:
    """Every read record with the slot of each group it belongs to (a broadcast join, no Python).

    A record of key K at position q goes to chunk c of K when ``emit_from_c <= q <= emit_to_c``
    (its own rows), to chunk 0 when ``q < emit_from_0`` (read before the range: warm-up), and to
    every chunk c ≥ 1 with ``q < emit_from_c`` and event time ≥ ``warm_from_c`` (the warm-up
    of a later chunk). Records after the range match nothing.
    """
    table = spark.createDataFrame(
        [(plan.key, slots[plan.group], plan.chunk, plan.emit_from, plan.emit_to, plan.warm_from_us)
         for plan in plans],
        "plan_key string, slot long, chunk int, emit_from long, emit_to long, warm_from_us long")
    pos, chunk = F.col("pos"), F.col("chunk")
    joined = raw.join(F.broadcast(table), raw["key"].eqNullSafe(table["plan_key"]) & (
        pos.between(F.col("emit_from"), F.col("emit_to"))
        | ((chunk == 0) & (pos < F.col("emit_from")))
        | ((chunk > 0) & (pos < F.col("emit_from")) & (F.col("ts_us") >= F.col("warm_from_us")))))
    return joined.select("slot", "record_key", "partition", "offset", "pos", "timestamp_ms", "value", "stream_time")


def hash_slots(spark: SparkSession, count: int) -> list[int]:
    """For each group number g < count, a value whose Spark hash partition (of ``count``) is g.

    ``repartition(count, "slot")`` then puts group g alone in partition g — one group per task,
    largest first (groups are numbered by size) — with no sampling pass (``repartitionByRange``
    would compute the routed frame twice). Spark partitions by ``pmod(hash(slot), count)``,
    which is what is searched here.
    """
    found: dict[int, int] = {}
    start = 0
    while len(found) < count:
        rows = (spark.range(start, start + 64 * count)
                .select("id", F.expr(f"pmod(hash(id), {count})").alias("partition")).collect())
        for row in rows:
            found.setdefault(int(row["partition"]), int(row["id"]))
        start += 64 * count
    return [found[number] for number in range(count)]


def backfill_warmup(strategy: Strategy, config: PipelineConfig, settings: SparkJobSettings,
                    request: BackfillRequest) -> Warmup:
    """The warm-up of this backfill: :func:`spark_jobs.backfill.plan.strategy_warmup` with the request's knobs."""
    return strategy_warmup(strategy, config, [timeframe_ms(tf) * 1000 for tf in settings.candle_timeframes],
                           tolerance=request.tolerance, min_duration_us=request.min_warmup_us,
                           periods=request.warmup_periods)


def indicator_names(strategy: Strategy) -> tuple[str, ...]:
    return strategy.indicator_names()


def read_log(spark: SparkSession, settings: SparkJobSettings, log_range: LogRange, symbols: tuple[str, ...],
             config: PipelineConfig, *, from_log_start: bool = False) -> DataFrame:
    """The records of the read range with position, event time and usability (parsed in the JVM).

    ``from_log_start``: from every partition's first offset instead of the read start (the instrument limit).
    """
    options = settings.kafka_options()
    frame = (
        spark.read.format("kafka").options(**options)
        .option("subscribe", log_range.topic)
        .option("startingOffsets", "earliest" if from_log_start else log_range.spark_offsets(log_range.read_start))
        .option("endingOffsets", log_range.spark_offsets(log_range.read_end))
        .option("kafka.isolation.level", "read_committed")
        .load()
    )
    # One JSON parse per record for the fields the planning needs (the group parses fully).
    fields = frame.select(
        "*", F.json_tuple(F.col("value").cast("string"), "ts_event", "price", "volume", "source")
        .alias("t", "p", "v", "s"))
    price, volume = F.col("p").cast("double"), F.col("v").cast("double")
    ts_us = F.unix_micros(F.col("t").cast("timestamp"))
    usable = (ts_us.isNotNull() & price.between(config.min_price, config.max_price)
              & (volume.isNull() | (volume == 0) | volume.between(config.min_volume, config.max_volume)))
    # ``key`` groups the records: a key that is not UTF-8 gets U+FFFD for its bad bytes, as the driver's
    # collect() shows it, or the routing join (on the planned key) would lose the record. ``record_key``
    # keeps the bytes for decode_tick, which dead-letters such a record exactly as the live processor.
    # The group is the instrument: a v2 record's key (SYMBOL@venue); a v1 record's key is its symbol,
    # and its venue is its source (the tick upcaster's rule, schemas.instruments.venue_from_source).
    record_key = F.make_valid_utf8(F.col("key").cast("string"))
    instrument = F.when(record_key.isNull() | record_key.contains("@"), record_key).otherwise(
        F.concat(record_key, F.lit("@"), _venue_from_source(F.col("s"))))
    frame = fields.select(
        instrument.alias("key"), F.col("key").alias("record_key"),
        "partition", "offset",
        (F.shiftleft(F.col("partition").cast("long"), POSITION_BITS) + F.col("offset")).alias("pos"),
        F.unix_millis("timestamp").alias("timestamp_ms"), "value",
        ts_us.alias("ts_us"), F.coalesce(usable, F.lit(False)).alias("usable"),
    )
    if symbols:  # a symbol selects all its venues; SYMBOL@venue one instrument
        frame = frame.where(F.col("key").isin(list(symbols))
                            | F.substring_index(F.col("key"), "@", 1).isin(list(symbols)))
    return frame


class _ClockTimes:
    """``pandas_udf`` body: per record, the event time (µs) by which it moves its venue's stream time on its
    partition, as the stream processor's handler decides it — a tick that decodes under its own key, whose
    instrument is admitted and which is within the price/volume/calendar bounds — else -1. (A late tick
    never raises the stream time, so the step's lateness need not be known here.)"""

    def __init__(self, topic: str, config: PipelineConfig, admission: Admission | None) -> None:
        self.topic = topic
        self.config = config
        self.admission = admission

    def __call__(self, values: pd.Series, keys: pd.Series, stamps: pd.Series, partitions: pd.Series,
                 offsets: pd.Series) -> pd.Series:
        config, admission, topic = self.config, self.admission, self.topic
        plan = config.plan
        found = []
        for value, key, stamp, partition, offset in zip(values.tolist(), keys.tolist(), stamps.tolist(),
                                                        partitions.tolist(), offsets.tolist(), strict=True):
            lineage = lineage_of(topic, int(partition), int(offset))
            tick = decode_tick(None if value is None else bytes(value), None if key is None else bytes(key),
                               int(stamp), lineage)
            moment = -1
            if isinstance(tick, Tick) and (admission is None
                                           or admission.refusal(lineage.partition, tick.symbol, tick.venue) is None):
                ts = to_us(tick.ts_event)
                if plan.earliest <= ts <= plan.latest and within_bounds(tick, config):
                    moment = ts
            found.append(moment)
        return pd.Series(found, dtype="int64")


def with_stream_times(raw: DataFrame, topic: str, config: PipelineConfig, admission: Admission | None) -> DataFrame:
    """Per record of ``raw``: ``partition``, ``offset``, ``key``, ``clock_us`` (:class:`_ClockTimes`) and
    ``stream_time``: the stream time of the record's venue on its partition before it (the highest ``clock_us`` of
    the earlier records; -1: none), which the group runner gives the step of each tick, as the stream processor's
    partition clock does (docs/core.md, "Who agrees with whom"). Records read before the range's first are
    counted from the read's start.

    Narrow on purpose (the caller joins ``stream_time`` back by position): the window sorts each partition's
    records in one task, and with the payloads in it a 5,000,000-tick log on 4 partitions ran a ``local[2]``
    driver of 4 GiB out of heap (bench/bench_backfill.py, 2026-12-06)."""
    clock_of = _ClockTimes(topic, config, admission)

    def clock_times(values: pd.Series, keys: pd.Series, stamps: pd.Series, partitions: pd.Series,
                    offsets: pd.Series) -> pd.Series:  # pyspark wants a plain function with type hints
        return clock_of(values, keys, stamps, partitions, offsets)

    clock_us = F.pandas_udf(clock_times, "long")("value", "record_key", "timestamp_ms", "partition", "offset")
    before = (Window.partitionBy("partition", F.substring_index(F.col("key"), "@", -1)).orderBy("offset")
              .rowsBetween(Window.unboundedPreceding, -1))
    clocked = raw.select("partition", "offset", "key", clock_us.alias("clock_us"))
    return clocked.withColumn(
        "stream_time", F.coalesce(F.max(F.when(F.col("clock_us") >= 0, F.col("clock_us"))).over(before), F.lit(-1)))


def stream_end(clocks: DataFrame) -> dict[tuple[int, str], int]:
    """The stream time of each venue on each partition at the end of the read (the highest ``clock_us`` of
    :func:`with_stream_times`' frame), as the stream processor keeps it (docs/core.md, "Live candles and
    quiet feeds")."""
    venue = F.substring_index(F.col("key"), "@", -1)
    rows = (clocks.where(F.col("clock_us") >= 0)
            .groupBy("partition", venue.alias("venue")).agg(F.max("clock_us").alias("stream_time")).collect())
    return {(int(row["partition"]), str(row["venue"])): int(row["stream_time"]) for row in rows}


def last_groups(plans: list[GroupPlan]) -> frozenset[int]:
    """The groups that end their instrument's range (the last chunk of each key)."""
    last: dict[str | None, GroupPlan] = {}
    for plan in plans:
        if plan.key not in last or plan.emit_to > last[plan.key].emit_to:
            last[plan.key] = plan
    return frozenset(plan.group for plan in last.values())


def _venue_from_source(source: Column) -> Column:
    """:func:`schemas.instruments.venue_from_source` as a Spark expression (for v1 records' grouping)."""
    strip = "^[-_]+|[-_]+$"
    cleaned = F.regexp_replace(F.regexp_replace(F.lower(source), r"[^a-z0-9_\-]+", "-"), strip, "")
    cut = F.regexp_replace(F.substring(cleaned, 1, VENUE_MAX_LENGTH), strip, "")
    return (F.when(source.rlike(VENUE_PATTERN), source).when(cut.rlike(VENUE_PATTERN), cut)
            .otherwise(F.lit(UNKNOWN_VENUE)))


def _range_predicates(log_range: LogRange) -> tuple[Column, Column]:
    """(at or after the range start, before the range end) as Spark conditions on a read record."""
    if log_range.from_us is not None:
        start = F.col("ts_us") >= F.lit(log_range.from_us)
    else:
        pairs = [item for p, o in sorted(log_range.range_start.items()) for item in (F.lit(p), F.lit(o))]
        start = F.col("offset") >= F.create_map(*pairs)[F.col("partition")]
    end = F.col("ts_us") < F.lit(log_range.to_us) if log_range.to_us is not None else F.lit(True)
    return start, end


def _symbol_ranges(rows: list[Any]) -> list[SymbolRange]:
    by_key: dict[str | None, list[Any]] = defaultdict(list)
    for row in rows:
        by_key[row["key"]].append(row)
    ranges = []
    for key, stats in by_key.items():
        firsts = [row["first_any"] for row in stats if row["first_any"] is not None]
        lasts = [row["last"] for row in stats if row["last"] is not None]
        if not firsts or not lasts or min(firsts) > max(lasts):
            continue
        days = tuple(DayStat(int(row["day"]), int(row["rows"]), row["first_usable"], row["last"])
                     for row in stats if row["day"] is not None)
        ranges.append(SymbolRange(key, min(firsts), max(lasts), days))
    return sorted(ranges, key=lambda item: item.key or "")


def decide_admission(spark: SparkSession, settings: SparkJobSettings, log_range: LogRange, raw: DataFrame,
                     symbols: tuple[str, ...], config: PipelineConfig) -> Admission | None:
    """The instrument limit's decision for the log up to the range's end (:mod:`spark_jobs.backfill.admission`).

    Counts each partition's distinct allowed instruments (from the log's first offset: ``raw`` when it
    was read from there for every partition and every symbol, else one more read); only a partition
    holding more than its share of ``MAX_INSTRUMENTS`` needs its instruments' first decodable ticks,
    found by decoding each one's first records in the driver with the processor's ``decode_tick``.
    None: nothing is refused.
    """
    policy = settings.instrument_policy()
    whole = raw if not symbols and set(log_range.read_end) <= log_range.log_start else read_log(
        spark, settings, log_range, (), config, from_log_start=True)
    keys = (whole.where(F.col("key").contains("@")).select("partition", "key").distinct().collect())
    allowed: dict[int, set[str]] = defaultdict(set)
    not_allowed: dict[tuple[int, str], str] = {}  # refused on every tick; listed for the summary
    for row in keys:
        symbol, _, venue = row["key"].partition("@")
        if policy.allows(symbol, venue):
            allowed[int(row["partition"])].add(row["key"])
        else:
            not_allowed[(int(row["partition"]), row["key"])] = INSTRUMENT_NOT_ALLOWED
    binding = {partition: found for partition, found in allowed.items() if len(found) > policy.per_partition}
    if not binding:
        return Admission(policy, not_allowed) if policy.allow else None
    candidates = whole.where(F.col("partition").isin(list(binding)) & F.col("record_key").isNotNull())
    firsts: list[FirstTick] = []
    open_keys = {(partition, key) for partition, found in binding.items() for key in found}
    depth = 4
    while open_keys:
        ranked = (candidates.where(F.col("key").isin(sorted({key for _, key in open_keys})))
                  .withColumn("rank", F.row_number().over(Window.partitionBy("partition", "key").orderBy("offset")))
                  .where(F.col("rank") <= depth)
                  .select("partition", "key", "offset", "record_key", "value", "timestamp_ms").collect())
        rows: dict[tuple[int, str], list[Any]] = defaultdict(list)
        for row in ranked:
            rows[(int(row["partition"]), row["key"])].append(row)
        for where in sorted(open_keys):
            found = sorted(rows.get(where, []), key=lambda row: row["offset"])
            for row in found:
                lineage = Lineage(topic=log_range.topic, partition=where[0], offset=int(row["offset"]))
                tick = decode_tick(bytes(row["value"]), bytes(row["record_key"]), int(row["timestamp_ms"]), lineage)
                if isinstance(tick, Tick):
                    firsts.append(FirstTick(where[0], lineage.offset, tick.symbol, tick.venue))
                    open_keys.discard(where)
                    break
            else:
                if len(found) < depth:  # every record of it was read: none decodes, it is never admitted
                    open_keys.discard(where)
        depth *= 16
    decided = decide(policy, firsts)
    return Admission(policy, {**not_allowed, **decided.refused})


def run_backfill(spark: SparkSession, settings: SparkJobSettings, request: BackfillRequest,
                 progress: SparkProgress) -> BackfillResult:
    """Run the whole backfill; raises :class:`spark_jobs.backfill.ranges.RangeError` for an unreadable range
    and :class:`spark_jobs.backfill.sinks.OutputExistsError` (before any work) for an existing output."""
    if request.output is not None:
        sinks.check_parquet_output(spark, request.output, request.write_mode)
    strategy = request.strategy
    configs = _Configs.of(strategy, settings)
    base_config = configs("CHECK")
    warmup = backfill_warmup(strategy, base_config, settings, request)
    log_range = resolve_range(settings, request.range, warmup.duration_us, round(settings.clock_skew_s * 1e6))
    names = indicator_names(strategy)
    compiled = base_config.plan.compiled
    signal_values = signal_value_names(names, {} if compiled is None else compiled.all_columns())
    raw = read_log(spark, settings, log_range, request.symbols, base_config).persist(StorageLevel.MEMORY_AND_DISK)
    start, end = _range_predicates(log_range)
    with progress.step("deciding the instrument limit (MAX_INSTRUMENTS, INSTRUMENT_ALLOW)"):
        admission = decide_admission(spark, settings, log_range, raw, request.symbols, base_config)
    context = GroupContext(topic=log_range.topic, warmup=warmup, indicator_names=names,
                           with_events=request.with_events, read_from_us=log_range.read_from_us,
                           log_start=log_range.log_start,
                           range_start=None if log_range.from_us is not None else dict(log_range.range_start),
                           signal_values=signal_values, admission=admission,
                           cumulative=strategies_warmup(base_config.strategies)[1])
    refused = {} if admission is None else admission.instruments()
    # The stream time counts every instrument of the partition, also those a symbol selection leaves out. On disk:
    # the heap holds the log (raw) and the recompute's result; with these beside them a 5,000,000-tick log ran a
    # 4 GiB driver out of heap (bench/bench_backfill.py, 2026-12-06).
    clocks = with_stream_times(read_log(spark, settings, log_range, (), base_config) if request.symbols else raw,
                               log_range.topic, base_config, admission).persist(StorageLevel.DISK_ONLY)
    timed = raw.join(clocks.select("partition", "offset", "stream_time"), ["partition", "offset"])
    with progress.step(f"reading {log_range.records:,} records and planning"):
        stats = (
            raw.where(start).withColumn("day", F.floor(F.col("ts_us") / F.lit(DAY_US)))
            .groupBy("key", "day")
            .agg(F.count(F.lit(1)).alias("rows"), F.min("pos").alias("first_any"),
                 F.min(F.when(F.col("usable"), F.col("pos"))).alias("first_usable"),
                 F.max(F.when(end, F.col("pos"))).alias("last"))
            .collect()
        )
        if set(log_range.read_end) <= log_range.log_start:  # each symbol's first tick: whether a warm-up holds all
            context = dataclasses.replace(context, first_us={
                row["key"]: int(row["first_us"]) for row in
                raw.groupBy("key").agg(F.min("ts_us").alias("first_us")).collect() if row["first_us"] is not None})
    plans = plan_groups(_symbol_ranges(stats), warmup, request.chunks, spark.sparkContext.defaultParallelism)
    if request.range.to_offset is None and request.range.to_time is None and plans:
        with progress.step("the stream time at the log's end, per partition and venue"):
            context = dataclasses.replace(context, stream_end=stream_end(clocks),
                                          last_groups=last_groups(plans))
    timings: dict[str, float] = {}
    if not plans:
        raw.unpersist()
        clocks.unpersist()
        return BackfillResult(log_range, warmup, [], dict.fromkeys(EVENT_KINDS, 0), progress.timings, {}, refused)

    slots = hash_slots(spark, len(plans))
    runner = _GroupRunner(plans, slots, context, configs)

    def run(key: tuple[Any, ...], rows: pd.DataFrame) -> pd.DataFrame:  # pyspark wants a plain function
        return runner(key, rows)

    routed = route(spark, timed, plans, slots)
    result = (
        routed.repartition(len(plans), "slot").groupBy("slot")
        .applyInPandas(run, spark_schema(names, signal_values))
        .persist(StorageLevel.DISK_ONLY)
    )
    began = time.perf_counter()
    with progress.step(f"recomputing {sum(p.rows for p in plans):,} ticks in {len(plans)} groups"):
        reports = [GroupReport(**json.loads(row["detail"]))
                   for row in result.where(F.col("kind") == KIND_GROUP).select("detail").collect()]
        counts = {row["kind"]: row["count"] for row in result.groupBy("kind").count().collect()}
    timings["recompute"] = time.perf_counter() - began
    raw.unpersist()
    clocks.unpersist()
    events = {kind: int(counts.get(kind, 0)) for kind in EVENT_KINDS}
    outputs: dict[str, str] = {}
    if request.output is not None:
        outputs.update(sinks.write_parquet(result, request.output, names, request.write_mode, progress,
                                           signal_values))
    if request.topics:
        outputs.update(sinks.write_topics(result, settings, progress))
    if request.redis_prefix is not None:
        outputs.update(sinks.write_redis(result, settings, request.redis_prefix, progress))
    result.unpersist()
    reports.sort(key=lambda report: (report.key or "", report.chunk))
    return BackfillResult(log_range, warmup, reports, events, {**progress.timings, **timings}, outputs, refused)


__all__ = ["BackfillRequest", "BackfillResult", "dataset_columns", "run_backfill"]
