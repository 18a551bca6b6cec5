"""The backfill's per-group work: the one pipeline step over a chunk of one symbol's log, in log order.

Pure Python (pandas only for the frame in and out), no Spark: the job calls
:func:`run_group` inside ``applyInPandas`` and tests call it directly. Each record is
decoded exactly as the live processor does (:func:`processors.stream.records.decode_tick`)
and fed to :class:`processors.core.pipeline.SymbolProcessor` — the same code, in the same
order (partition, offset), as ``stockstream process`` — so the events equal the live
output topics'. A tick of an instrument the instrument limit refuses in its partition
(:mod:`spark_jobs.backfill.admission`) becomes the processor's dead letter instead.

A group's rows are its warm-up (before ``emit_from``) and its own rows. The warm-up is
trimmed to the ticks whose event time is at least ``R = midnight of the day open at the
chunk start − warm-up duration`` (see :mod:`spark_jobs.backfill.plan`); its events are
discarded. The :class:`GroupReport` says whether the warm-up was ``exact`` (the same
ticks as a run from the log's beginning), ``converged`` (long enough by time and by tick
count) or ``short`` (the result may differ from a full run; the CLI warns).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from processors.core.admission import INSTRUMENT_LIMIT, INSTRUMENT_NOT_ALLOWED
from processors.core.pipeline import PipelineConfig, StepOutput, SymbolProcessor
from processors.core.timeutil import DAY_US, day_date, to_us
from processors.stream.encoding import lineage_of
from processors.stream.records import decode_tick, raw_text, record_time
from schemas.events import DeadLetter, Event, Lineage, Signal, SignalOutcome, Tick, encode
from schemas.instruments import Instrument
from schemas.timeframes import TICK
from spark_jobs.backfill.admission import Admission
from spark_jobs.backfill.columnar import ColumnarProcessor, TickRows, TickTimeframe, merge_snapshots
from spark_jobs.backfill.plan import GroupPlan, Warmup
from spark_jobs.backfill.rows import (
    EVENT_KINDS,
    KIND_CANDLES,
    KIND_DAILY,
    KIND_DEAD_LETTERS,
    KIND_GROUP,
    KIND_INDICATORS,
    KIND_OUTCOMES,
    KIND_SIGNALS,
    dataset_columns,
    indicator_column,
    union_columns,
)
from spark_jobs.gcpause import cycle_collection_paused

EXACT, CONVERGED, SHORT = "exact", "converged", "short"
REFUSALS = (INSTRUMENT_LIMIT, INSTRUMENT_NOT_ALLOWED)
_NAT = np.iinfo(np.int64).min  # numpy's NaT as int64


@dataclass(frozen=True)
class GroupContext:
    """What every group needs besides its rows (pickled into the Spark closure once)."""

    topic: str
    warmup: Warmup
    indicator_names: tuple[str, ...]
    with_events: bool
    read_from_us: int | None  # oldest event time the driver's read is sure to hold (None: log start)
    log_start: frozenset[int]  # partitions read from their first offset
    range_start: dict[int, int] | None = None  # offset ranges: first offset of the range per partition
    signal_values: tuple[str, ...] = ()  # the strategies' value columns of the signals (rows.signal_value_names)
    admission: Admission | None = None  # the instruments each partition refuses (None: every one is admitted)
    cumulative: bool = False  # a strategy reads a cumulative indicator (OBV): only a run from the log start is exact
    first_us: dict[str | None, int] | None = None  # per group key, its earliest event time (reads from the log start)
    # A range that reaches the log's end: the stream time there per (partition, venue), and the groups that end
    # an instrument's range; each such group brings its instrument to that stream time at its end, closing what
    # the stream processor has closed by the other instruments' ticks (docs/core.md, "Who agrees with whom").
    stream_end: dict[tuple[int, str], int] | None = None
    last_groups: frozenset[int] = frozenset()


@dataclass
class GroupReport:
    group: int
    key: str | None
    chunk: int
    warmup_ticks: int = 0  # ticks run before the first emitted one
    warmup_before_day: int = 0  # of those, before the midnight that opened the chunk's first day
    warmup_candles: int | None = None  # fewest warm-up candles opened before that midnight, over the timeframes
    dropped: int = 0  # rows read before the chunk but older than the warm-up needs
    rows: int = 0  # rows emitted (ticks and dead records)
    refused: int = 0  # of those, ticks of an instrument the instrument limit refuses (dead-lettered)
    events: int = 0
    status: str = EXACT
    detail: str = ""


class _Table:
    """Column lists of one kind's rows (only that kind's varying columns), appended event by event.

    ``kind`` and the instrument are the same on every row of a group's kind, so they are filled in
    when the frame is built instead of appended per event.
    """

    __slots__ = ("kind", "data", "length")

    def __init__(self, kind: str, names: Sequence[str]) -> None:
        self.kind = kind
        self.data: dict[str, list[Any]] = {name: [] for name in names
                                           if name not in ("kind", "instrument", "symbol", "venue")}
        self.length = 0

    def add(self, values: dict[str, Any]) -> None:
        self.length += 1
        get = values.get
        for name, column in self.data.items():
            column.append(get(name))


class _Days:
    """UTC day number → ``date`` (a few distinct days per group: cached)."""

    def __init__(self) -> None:
        self.cache: dict[int, date] = {}

    def __call__(self, us: int) -> date:
        day = us // DAY_US
        found = self.cache.get(day)
        if found is None:
            found = self.cache[day] = day_date(day)
        return found


class _Emitter:
    """Turns a tick's :class:`StepOutput` into rows, in the live processor's emission order.

    The hot path (one indicator snapshot per tick) appends straight to its column lists.
    """

    def __init__(self, context: GroupContext, key: str | None) -> None:
        self.context = context
        self.key = key
        self.events = context.with_events
        names = context.indicator_names
        self.tables = {kind: _Table(kind, dataset_columns(kind, names, context.with_events, context.signal_values))
                       for kind in EVENT_KINDS}
        self.tables[KIND_GROUP] = _Table(KIND_GROUP, ["seq", "offset", "detail"])
        self.indicator_columns = {name: indicator_column(name) for name in (*names, *context.signal_values)}
        self.day = _Days()
        data = self.tables[KIND_INDICATORS].data
        self._snapshot_columns = (
            data["date"].append, data["timeframe"].append, data["price"].append, data["ts_event"].append,
            data["ts_init"].append, data["partition"].append, data["offset"].append, data["seq"].append)
        self._snapshot_values = tuple((name, data[indicator_column(name)].append) for name in names)
        self._snapshot_events = data["event"].append if self.events else None
        outcomes = self.tables[KIND_OUTCOMES].data
        self._outcome_fields = tuple((name, outcomes[name].append) for name in _OUTCOME_FIELDS)
        self._outcome_times = tuple((name, outcomes[name].append) for name in _OUTCOME_TIMES)
        self._outcome_position = (outcomes["date"].append, outcomes["partition"].append, outcomes["offset"].append,
                                  outcomes["seq"].append)
        self._outcome_events = outcomes["event"].append if self.events else None
        self.tick_rows: TickRows | None = None  # the columnar path's tick snapshots and signals

    def _base(self, event: Event, day: date, lineage: Lineage, seq: int, **extra: Any) -> dict[str, Any]:
        row = {"date": day, "partition": lineage.partition, "offset": lineage.offset, "seq": seq, **extra}
        if self.events:
            row["event"] = encode(event).decode()
        return row

    def _values(self, row: dict[str, Any], values: dict[str, float | None]) -> None:
        columns = self.indicator_columns
        for name, value in values.items():
            column = columns.get(name)
            row[column if column is not None else indicator_column(name)] = value

    def output(self, output: StepOutput, lineage: Lineage, tick: Tick | None = None, evaluation: int = -1,
               seq: int = 0) -> int:
        """Append one tick's events (``seq``: the first one's index among its position's events); returns the
        index after the last. ``evaluation`` ≥ 0: the columnar path's tick snapshot and signals (from
        :attr:`tick_rows`) follow the candle-timeframe ones, where the core appends them."""
        tables = self.tables
        if output.snapshots:
            add_date, add_tf, add_price, add_event_time, add_init, add_partition, add_offset, add_seq = (
                self._snapshot_columns)
            partition, offset = lineage.partition, lineage.offset
            for snapshot in output.snapshots:
                moment = to_us(snapshot.ts_event)
                add_date(self.day(moment))
                add_tf(snapshot.timeframe)
                add_price(snapshot.price)
                values = snapshot.values
                for name, append in self._snapshot_values:
                    append(values.get(name))
                add_event_time(moment)
                add_init(to_us(snapshot.ts_init))
                add_partition(partition)
                add_offset(offset)
                add_seq(seq)
                if self._snapshot_events is not None:
                    self._snapshot_events(encode(snapshot).decode())
                seq += 1
            tables[KIND_INDICATORS].length += len(output.snapshots)
        if evaluation >= 0 and self.tick_rows is not None and tick is not None:
            self.tick_rows.snapshot(evaluation, lineage, seq, to_us(tick.ts_init))
            seq += 1
        for candle in output.candles:
            tables[KIND_CANDLES].add(self._base(
                candle, candle.ts_open.date(), lineage, seq, timeframe=candle.timeframe, ts_open=_us(candle.ts_open),
                ts_close=_us(candle.ts_close), open=candle.open, high=candle.high, low=candle.low,
                close=candle.close, volume=candle.volume, trade_count=candle.trade_count,
                ts_event=_us(candle.ts_event), ts_init=_us(candle.ts_init)))
            seq += 1
        signals = output.signals
        if evaluation >= 0 and self.tick_rows is not None and tick is not None:
            # The core emits candle signals, then the tick rules' (here: the kernel's), then the tick strategies'.
            seq = self._signals([s for s in signals if s.timeframe != TICK], lineage, seq)
            for row in self.tick_rows.signal_rows(evaluation, tick, lineage, seq):
                tables[KIND_SIGNALS].add(row)
                seq += 1
            signals = [s for s in signals if s.timeframe == TICK]
        seq = self._signals(signals, lineage, seq)
        for summary in output.summaries:
            tables[KIND_DAILY].add(self._base(
                summary, summary.date, lineage, seq, open=summary.open, high=summary.high, low=summary.low,
                close=summary.close, mean_price=summary.mean_price, vwap=summary.vwap, volume=summary.volume,
                tick_count=summary.tick_count, buy_count=summary.buy_count, sell_count=summary.sell_count,
                final=summary.final, ts_event=_us(summary.ts_event), ts_init=_us(summary.ts_init)))
            seq += 1
        if output.outcomes:
            seq = self._outcomes(output.outcomes, lineage, seq)
        for letter in output.rejections:
            self.dead_letter(letter, lineage, seq)
            seq += 1
        return seq

    def _outcomes(self, outcomes: Sequence[SignalOutcome], lineage: Lineage, seq: int) -> int:
        """Append outcome rows column by column (a tick matures several: the hot path after snapshots)."""
        fields_of, times_of = self._outcome_fields, self._outcome_times
        add_date, add_partition, add_offset, add_seq = self._outcome_position
        partition, offset = lineage.partition, lineage.offset
        moments: dict[datetime, int] = {}  # a step's outcomes share the maturing tick's times
        for outcome in outcomes:
            fields = outcome.__dict__
            for name, append in fields_of:
                append(fields[name])
            for name, append in times_of:
                moment = fields[name]
                found = moments.get(moment)
                if found is None:
                    found = moments[moment] = to_us(moment)
                append(found)
            add_date(self.day(moments[outcome.ts_event]))
            add_partition(partition)
            add_offset(offset)
            add_seq(seq)
            if self._outcome_events is not None:
                self._outcome_events(encode(outcome).decode())
            seq += 1
        self.tables[KIND_OUTCOMES].length += len(outcomes)
        return seq

    def _signals(self, signals: Sequence[Signal], lineage: Lineage, seq: int) -> int:
        table = self.tables[KIND_SIGNALS]
        for signal in signals:
            row = self._base(signal, signal.ts_event.date(), lineage, seq, timeframe=signal.timeframe,
                             signal_id=signal.signal_id, rule=signal.rule, strategy=signal.strategy,
                             strategy_version=signal.strategy_version, condition=signal.condition, side=signal.side,
                             price=signal.price, ts_event=_us(signal.ts_event), ts_init=_us(signal.ts_init))
            self._values(row, signal.indicators)
            table.add(row)
            seq += 1
        return seq

    def dead_letter(self, letter: DeadLetter, lineage: Lineage, seq: int = 0) -> None:
        self.tables[KIND_DEAD_LETTERS].add(self._base(
            letter, letter.ts_init.date(), lineage, seq, source=letter.source, reason=letter.reason,
            detail=letter.detail, raw=letter.raw, ts_init=_us(letter.ts_init)))

    def report(self, report: GroupReport) -> None:
        self.tables[KIND_GROUP].add({"seq": report.chunk, "offset": report.group, "detail": json.dumps(asdict(report))})


# An outcome row's columns that are its event's fields as they are, and those that are its times (as µs).
_OUTCOME_FIELDS = ("outcome_id", "signal_id", "strategy", "strategy_version", "timeframe", "side", "horizon",
                   "signal_price", "price", "return_gross", "return_net", "fee")
_OUTCOME_TIMES = ("signal_ts", "ts_event", "ts_init")


def _us(moment: Any) -> int | None:
    return None if moment is None else to_us(moment)


def within_bounds(tick: Tick, config: PipelineConfig) -> bool:
    """Whether ``tick`` is within the step's price and volume bounds (the calendar bounds apart)."""
    volume = tick.volume or 0.0
    return (config.min_price <= tick.price <= config.max_price
            and (not volume or config.min_volume <= volume <= config.max_volume))


def run_group(rows: pd.DataFrame, plan: GroupPlan, context: GroupContext,
              config_for: Callable[[str], PipelineConfig], *, columnar: bool | None = None) -> pd.DataFrame:
    """Run one group; ``rows`` has ``partition, offset, pos, value, timestamp_ms`` and ``record_key`` (the
    record's key bytes; the group's key when absent), in any order.

    ``columnar`` (default: when the group's events are not needed as JSON) takes the tick timeframe
    from the vectorized kernel (:mod:`spark_jobs.backfill.columnar`); False runs the core step alone
    per tick. Both give the same frame (values to ~1e-15; tests/integration/spark/test_spark_columnar.py).

    Returns the frame of :func:`spark_jobs.backfill.rows.union_columns` with one ``group``
    report row at the end. Never raises for bad records: they become dead-letter rows. Runs with the cyclic garbage
    collector paused (:mod:`spark_jobs.gcpause`).
    """
    with cycle_collection_paused():
        return _run_group(rows, plan, context, config_for, columnar=columnar)


def _run_group(rows: pd.DataFrame, plan: GroupPlan, context: GroupContext,
               config_for: Callable[[str], PipelineConfig], *, columnar: bool | None = None) -> pd.DataFrame:
    """:func:`run_group`'s work."""
    emitter = _Emitter(context, plan.key)
    report = GroupReport(plan.group, plan.key, plan.chunk)
    ordered = rows.sort_values("pos", kind="stable")
    positions: Sequence[int] = ordered["pos"].tolist()
    partitions = ordered["partition"].tolist()
    offsets = ordered["offset"].tolist()
    values = ordered["value"].tolist()
    stamps = ordered["timestamp_ms"].tolist()
    # Each record's stream time (its partition's, for its venue, before it; job.stream_times): the step is
    # brought to it first, as the stream processor's is. -1 or absent: none (the instrument's own time).
    times: list[int | None] = ([None if time < 0 else int(time) for time in ordered["stream_time"].tolist()]
                               if "stream_time" in ordered else [None] * len(positions))
    # The record's own key bytes (decode_tick compares them with the instrument, or a v1 record's symbol,
    # as the live processor does).
    fallback = None if plan.key is None else plan.key.encode()
    keys = ordered["record_key"].tolist() if "record_key" in ordered else [fallback] * len(positions)
    topic = context.topic

    admission = context.admission

    def decode(index: int, lineage: Lineage) -> Tick | DeadLetter:
        """The record as the live processor takes it: decoded, then refused if its instrument is not admitted."""
        item = decode_tick(values[index], keys[index], stamps[index], lineage)
        if admission is None or not isinstance(item, Tick):
            return item
        refused = admission.refusal(lineage.partition, item.symbol, item.venue)
        if refused is None:
            return item
        return DeadLetter(source=item.source, reason=refused[0], detail=refused[1], raw=raw_text(values[index]),
                          ts_init=record_time(stamps[index]), origin=lineage)

    first_emit = next((i for i, pos in enumerate(positions) if pos >= plan.emit_from), len(positions))
    decoded: list[Tick | DeadLetter] = []
    lineages: list[Lineage] = []
    open_us: int | None = None
    for index in range(first_emit):
        lineage = lineage_of(topic, partitions[index], offsets[index])
        item = decode(index, lineage)
        decoded.append(item)
        lineages.append(lineage)
        if isinstance(item, Tick) and within_bounds(item, config_for(item.symbol)):
            moment = to_us(item.ts_event)
            open_us = moment if open_us is None or moment > open_us else open_us

    # Warm-up: from W periods before the midnight that opened the day still open at the chunk start.
    day_start = None if open_us is None else open_us - open_us % DAY_US
    needed_from = None if day_start is None else day_start - context.warmup.duration_us
    # A later chunk whose warm-up reaches back before the symbol's first tick holds every tick a run from the
    # log's beginning sees, however few periods that is (a log shorter than the warm-up).
    first = None if context.first_us is None else context.first_us.get(plan.key)
    from_log_start = set(partitions) <= context.log_start and (
        plan.chunk == 0 or (first is not None and plan.warm_from_us is not None and plan.warm_from_us <= first))
    warm: list[tuple[Tick, Lineage, int | None]] = []
    for index, item in enumerate(decoded):
        if not isinstance(item, Tick):
            continue
        moment = to_us(item.ts_event)
        if needed_from is not None and moment < needed_from:
            report.dropped += 1
            continue
        report.warmup_ticks += 1
        if day_start is not None and moment < day_start:
            report.warmup_before_day += 1
        warm.append((item, lineages[index], times[index]))

    starts = context.range_start
    emitted: list[tuple[Tick | DeadLetter, Lineage, int | None]] = []
    for index in range(first_emit, len(positions)):
        if positions[index] > plan.emit_to:
            break
        if starts is not None and offsets[index] < starts.get(partitions[index], 0):
            continue  # a key spread over partitions (records without a key): this one is before the range
        lineage = lineage_of(topic, partitions[index], offsets[index])
        emitted.append((decode(index, lineage), lineage, times[index]))

    runs = [(tick, time) for tick, _, time in warm] + [(item, time) for item, _, time in emitted
                                                         if isinstance(item, Tick)]
    ticks = [tick for tick, _ in runs]
    processor: SymbolProcessor | None = None
    if ticks:
        # decode_tick accepts a tick only under its own instrument's key: one instrument per group
        instrument = Instrument(ticks[0].symbol, ticks[0].venue)
        config = config_for(instrument.symbol)
        if columnar is None:
            columnar = not context.with_events
        if columnar:
            tick_timeframe = TickTimeframe(config, ticks, [time for _, time in runs])
            processor = ColumnarProcessor(config, instrument, tick_timeframe)
            emitter.tick_rows = TickRows(instrument, tick_timeframe, context.indicator_names, context.signal_values)
        else:
            processor = SymbolProcessor(config, instrument)

    candles: dict[str, int] = {}
    for tick, lineage, time in warm:
        assert processor is not None  # noqa: S101 - there are ticks
        for candle in processor.process(tick, lineage, time).candles:
            if day_start is not None and to_us(candle.ts_open) < day_start:
                candles[candle.timeframe] = candles.get(candle.timeframe, 0) + 1
    if warm and processor is not None and processor.config.candle_timeframes:
        report.warmup_candles = min(candles.get(tf, 0) for tf in processor.config.candle_timeframes)

    last: tuple[Tick, Lineage, int] | None = None  # the last tick run, its position and its events' count
    for item, lineage, time in emitted:
        report.rows += 1
        if isinstance(item, DeadLetter):
            emitter.dead_letter(item, lineage)
            report.events += 1
            if item.reason in REFUSALS:
                report.refused += 1
        else:
            assert processor is not None  # noqa: S101 - a tick makes a processor
            output = processor.process(item, lineage, time)
            evaluation = processor.evaluation if isinstance(processor, ColumnarProcessor) else -1
            count = emitter.output(output, lineage, item, evaluation)
            report.events += count
            last = (item, lineage, count)
    stream_end = context.stream_end
    if stream_end is not None and last is not None and processor is not None and plan.group in context.last_groups:
        tick, lineage, count = last
        end_time = stream_end.get((lineage.partition, tick.venue))
        if end_time is not None and (processor.clock is None or end_time > processor.clock):
            # what the other instruments' ticks closed after this one's last: emitted at its last position
            report.events += emitter.output(processor.advance(end_time, tick, lineage), lineage, seq=count) - count

    _judge(report, plan, context, needed_from, from_log_start or processor is None)
    emitter.report(report)
    frame = _frame(list(emitter.tables.values()), context, plan.key)
    if emitter.tick_rows is None:
        return frame
    # Tick snapshots (columns) join the candle snapshots in emission order: (partition, offset, seq).
    return merge_snapshots(frame, emitter.tick_rows.frame(plan.key))


def _judge(report: GroupReport, plan: GroupPlan, context: GroupContext, needed_from: int | None,
           from_log_start: bool) -> None:
    """Set the report's status: exact, converged or short (with the reasons)."""
    if from_log_start and report.dropped == 0:
        report.status = EXACT  # the very ticks a run from the log's beginning sees (or no tick at all)
        return
    if needed_from is None:
        report.status = CONVERGED
        report.detail = "no earlier tick of the symbol in the read window: started afresh"
        return
    problems = []
    if context.cumulative:
        problems.append("a strategy reads obv, which sums every tick since the log's first: only a backfill from"
                        " the log's beginning in one chunk gives the live values (--chunks 1, no --from)")
    available = plan.warm_from_us if plan.chunk else context.read_from_us
    if not from_log_start and available is not None and available > needed_from:
        problems.append(f"the read holds event times from {available} µs, the warm-up needs {needed_from} µs"
                        " (raise --min-warmup)")
    periods = context.warmup.periods
    if report.warmup_before_day < periods:
        problems.append(f"{report.warmup_before_day} warm-up ticks before the chunk's day, fewer than"
                        f" {periods} (a sparse symbol: raise --min-warmup)")
    if report.warmup_candles is not None and report.warmup_candles < periods:
        problems.append(f"{report.warmup_candles} candles closed in the warm-up, fewer than {periods}"
                        " (gaps in the data: raise --min-warmup)")
    report.status = SHORT if problems else CONVERGED
    report.detail = "; ".join(problems)


def _frame(tables: list[_Table], context: GroupContext, key: str | None) -> pd.DataFrame:
    """The union-layout frame with nullable dtypes (None stays null through Arrow, never NaN)."""
    data: dict[str, Any] = {}
    # The group key is the instrument SYMBOL@venue (a key without "@" is a dead letter's odd key).
    symbol, _, venue = key.partition("@") if key is not None else (None, "", "")
    given = {"instrument": key, "symbol": symbol, "venue": venue or None}
    for name, kind in union_columns(context.indicator_names, context.signal_values):
        values: list[Any] = []
        for table in tables:
            if name == "kind":
                values += [table.kind] * table.length
            elif name in given:
                values += [given[name]] * table.length
            else:
                column = table.data.get(name)
                values += column if column is not None else [None] * table.length
        if kind == "double":  # through Arrow: pandas' own conversion of a list with None is a Python loop
            doubles = pa.array(values, type=pa.float64(), from_pandas=True).to_numpy(zero_copy_only=False)
            data[name] = pd.arrays.FloatingArray(doubles, np.isnan(doubles))  # None, as NaN would be: null
        elif kind in ("int", "long"):
            integers = pa.array(values, type=pa.int64() if kind == "long" else pa.int32())
            data[name] = pd.arrays.IntegerArray(integers.fill_null(0).to_numpy(),
                                                integers.is_null().to_numpy(zero_copy_only=False))
        elif kind == "boolean":
            data[name] = pd.array(values, dtype="boolean")
        elif kind == "timestamp":
            micros = np.array([_NAT if value is None else value for value in values], dtype=np.int64)
            data[name] = pd.Series(micros.view("datetime64[us]")).dt.tz_localize("UTC")
        else:
            data[name] = pd.Series(values, dtype="object")
    return pd.DataFrame(data)
