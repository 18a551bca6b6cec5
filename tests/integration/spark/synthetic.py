"""A deterministic ticks log for the Spark tests, with the awkward records a real log has, and the reference run.

:func:`synthetic_log` builds (key, value) records: symbols round-robin on a simulated clock
(prices from the simulator's :class:`PricePath`), plus out-of-order ticks within grace,
late ticks, ticks without volume, absurd prices, malformed JSON, keys that are not the
tick's symbol (one of them not even UTF-8) and records without a key. :func:`reference_events` runs the
per-record logic in-process over the whole log (decode_tick + SymbolProcessor in (partition, offset)
order, from the log's beginning): each instrument by its own event time (the batch command), or, with
``given_stream_time=True``, each step given its record's stream time — the truth a backfill must match — or,
with ``stream_time=True``, with its partition's stream time and the configs' live updates
(:func:`processors.core.stream_time.process_in_partition`): what ``stockstream process`` writes.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from confluent_kafka import Producer

from processors.core.pipeline import (
    PRICE_OUT_OF_RANGE,
    TIME_OUT_OF_RANGE,
    VOLUME_OUT_OF_RANGE,
    PipelineConfig,
    StepOutput,
    SymbolProcessor,
)
from processors.core.rundiff import Closes, Span, closes_window
from processors.core.strategy import PipelineConfigs
from processors.core.stream_time import PartitionClock, process_in_partition
from processors.core.timeutil import to_us
from processors.ingest.sources.simulator import PricePath, round_price, start_price
from processors.stream.records import decode_tick
from schemas.events import (
    Candle,
    DailySummary,
    DeadLetter,
    IndicatorSnapshot,
    Lineage,
    Signal,
    SignalOutcome,
    Tick,
    encode,
)
from schemas.instruments import Instrument
from tests.support.kafka_tools import Record
from tests.support.legacy import events_v1

OUT_OF_BOUNDS = (PRICE_OUT_OF_RANGE, VOLUME_OUT_OF_RANGE, TIME_OUT_OF_RANGE)


def synthetic_log(symbols: tuple[str, ...], count: int, start: datetime, step: timedelta,
                  seed: int = 7, *, venue: str = "synthetic", version: int = 2) -> list[tuple[bytes | None, bytes]]:
    """``count`` records, deterministic for the arguments.

    ``version`` 2 writes what this release writes (key ``SYMBOL@venue``); 1 writes the same ticks as the
    release before instruments did (tests/support/legacy/events_v1.py, key = symbol, ``source`` = ``venue``).
    """
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation
    paths = {s: PricePath(start_price(s), random.Random(f"{seed}:{s}")) for s in symbols}  # noqa: S311
    records: list[tuple[bytes | None, bytes]] = []
    for index in range(count):
        symbol = symbols[index % len(symbols)]
        moment = start + index * step
        path = paths[symbol]
        price = round_price(path.step(step.total_seconds() * len(symbols)))
        volume: float | None = path.trade_size()
        roll = rng.random()
        if roll < 0.002:
            moment -= timedelta(seconds=2)  # out of order, within the 5 s grace
        elif roll < 0.003:
            moment -= timedelta(minutes=3)  # late: its candle closed long ago
        elif roll < 0.004:
            volume = None
        elif roll < 0.0045:
            price = 5e12  # a valid Tick the core rejects (price_out_of_range)
        fields = {"symbol": symbol, "price": price, "volume": volume, "ts_event": moment, "ts_init": moment,
                  "source": venue, "source_id": f"syn-{seed}-{index}"}
        if version == 1:
            key: bytes | None = symbol.encode()
            value = events_v1.encode(events_v1.Tick(**fields))
        else:
            key = f"{symbol}@{venue}".encode()
            value = encode(Tick(venue=venue, **fields))
        if roll > 0.9995:
            value = b'{"symbol": "' + symbol.encode() + b'", "price": oops}'  # malformed_json
        elif 0.9990 < roll <= 0.9995:
            other = symbols[(index + 1) % len(symbols)]  # key_mismatch
            key = other.encode() if version == 1 else f"{other}@{venue}".encode()
        elif 0.9988 < roll <= 0.9990:
            key = None  # key_missing
        if index == count * 7 // 10:
            wrapped = symbol if version == 1 else f"{symbol}@{venue}"
            key = b"\xe2\x82" + wrapped.encode() + b"\xff"  # not UTF-8: key_mismatch, detail with its bytes
        records.append((key, value))
    return records


def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    """Produce every record idempotently, waiting when the local queue is full; fails on any error."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20,
                         "compression.type": "lz4"})
    errors: list[str] = []

    def on_delivery(error, _message):  # type: ignore[no-untyped-def]
        if error is not None:
            errors.append(str(error))

    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0 and not errors, errors[:3]


@dataclass
class Reference:
    """Every event of the in-process run, by kind, each with its (partition, offset, seq)."""

    indicators: list[tuple[int, int, int, IndicatorSnapshot]] = field(default_factory=list)
    candles: list[tuple[int, int, int, Candle]] = field(default_factory=list)
    signals: list[tuple[int, int, int, Signal]] = field(default_factory=list)
    daily: list[tuple[int, int, int, DailySummary]] = field(default_factory=list)
    outcomes: list[tuple[int, int, int, SignalOutcome]] = field(default_factory=list)
    dead_letters: list[tuple[int, int, int, DeadLetter]] = field(default_factory=list)

    def between(self, kind: str, starts: dict[int, int], ends: dict[int, int] | None = None) -> list:
        """Events of ``kind`` caused by records with ``starts[p] <= offset < ends[p]``."""
        return [item for item in getattr(self, kind)
                if item[1] >= starts.get(item[0], 0) and (ends is None or item[1] < ends.get(item[0], 1 << 62))]

    def add(self, where: tuple[int, int], outputs: list[StepOutput], seq: int = 0) -> int:
        """The events of ``outputs``, emitted at log position ``where`` from index ``seq`` on; the next index."""
        for output in outputs:
            for kind, events in (("indicators", output.snapshots), ("candles", output.candles),
                                 ("signals", output.signals), ("daily", output.summaries),
                                 ("outcomes", output.outcomes), ("dead_letters", output.rejections)):
                for event in events:
                    getattr(self, kind).append((*where, seq, event))
                    seq += 1
        return seq


def reference_events(records: Iterable[Record], configs: PipelineConfigs, *, stream_time: bool = False,
                     given_stream_time: bool = False) -> Reference:
    """The pipeline over ``records`` (any order; sorted here by partition and offset); see the module docstring.

    ``given_stream_time``: each instrument alone, but every step gets its record's stream time (the partition
    clock before the record, kept as the stream processor keeps it) — what the Spark backfill does: the stream
    processor's events, each instrument's closes written at its own next record instead of another's.
    """
    reference = Reference()
    processors: dict[tuple[str, str], SymbolProcessor] = {}
    by_partition: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)

    def processor_of(key: str) -> SymbolProcessor:
        symbol, _, venue = key.rpartition("@")
        found = processors.get((symbol, venue))
        if found is None:
            found = processors[(symbol, venue)] = SymbolProcessor(configs.for_symbol(symbol), Instrument(symbol, venue))
        return found

    for partition in sorted(by_partition):
        clocks: dict[str, PartitionClock] = defaultdict(PartitionClock)  # per venue
        ends: dict[str, int] = {}  # per venue: its stream time (highest event time of its ticks in bounds)
        last: dict[str, tuple[Tick, Lineage, int]] = {}  # per instrument: its last tick, position, events' count
        for record in sorted(by_partition[partition], key=lambda r: r.offset):
            lineage = Lineage(topic=record.topic, partition=partition, offset=record.offset)
            decoded = decode_tick(record.value, record.key, record.timestamp_ms, lineage)
            where = (partition, record.offset)
            if isinstance(decoded, DeadLetter):
                reference.dead_letters.append((*where, 0, decoded))
                continue
            key = f"{decoded.symbol}@{decoded.venue}"
            if stream_time:
                outputs = [output for _, output in
                           process_in_partition(clocks[decoded.venue], key, processor_of(key), decoded, lineage,
                                                processor_of)]
            elif given_stream_time:
                clock = clocks[decoded.venue]
                output = processor_of(key).process(decoded, lineage, clock.stream_time)
                if not output.rejections:
                    clock.observe(to_us(decoded.ts_event))
                outputs = [output]
            else:
                outputs = [processor_of(key).process(decoded, lineage)]
            seq = reference.add(where, outputs)
            if not any(letter.reason in OUT_OF_BOUNDS for letter in outputs[0].rejections):
                moment = to_us(decoded.ts_event)
                ends[decoded.venue] = max(moment, ends.get(decoded.venue, moment))
            last[key] = (decoded, lineage, seq)
        # The end of the log: every instrument is brought to its venue's stream time there, as the stream
        # processor's later records of other instruments did (a no-op with ``stream_time``). Emitted at the
        # instrument's last position, after its own events, as the backfill of a range to the log's end does.
        for key, (item, lineage, seq) in sorted(last.items()):
            processor = processor_of(key)
            end = ends.get(item.venue)
            if end is not None and (processor.clock is None or end > processor.clock):
                reference.add((partition, lineage.offset), [processor.advance(end, item, lineage)], seq)
    return reference


def window_closes(records: Iterable[Record], config: PipelineConfig) -> Closes:
    """``runs diff``'s ``closes`` over records in memory: what the CLI reads from the ticks log
    (``stockstream/commands/runs.py``): a tick after the signal's own on its partition, before the run's end,
    that closes the signal's window."""
    ticks: dict[int, list[tuple[int, Tick]]] = defaultdict(list)
    for record in records:
        lineage = Lineage(topic=record.topic, partition=record.partition, offset=record.offset)
        decoded = decode_tick(record.value, record.key, record.timestamp_ms, lineage)
        if isinstance(decoded, Tick):
            ticks[record.partition].append((record.offset, decoded))

    def closes(signal: Signal, span: Span) -> bool:
        partition = signal.lineage.partition
        end = None if span.end is None else span.end.get(partition, 0)
        return any(closes_window(signal, tick, config) for offset, tick in ticks[partition]
                   if offset > signal.lineage.offset and (end is None or offset < end))

    return closes
