"""Where a backfill reads: the range the user asked for, turned into offsets per partition, plus the warm-up.

Driver-side only (a short-lived confluent-kafka consumer, no Spark). A range is

- a start: offsets per partition (``--from-offset``), an event time (``--from-time``), or
  the log's beginning;
- an end: offsets per partition, exclusive (``--to-offset``), an event time, exclusive
  (``--to-time``), or the end of the log when the backfill starts.

Event times select ticks by ``ts_event``: the range runs, per symbol, from the first tick
(in log order) at or after the start time to the last one before the end time. Offsets are
positions in the log, so the events of an offset range are those the live processor
produced for exactly those records.

The read begins earlier than the range, for the warm-up: at the first record whose Kafka
timestamp is at least ``midnight before the start − 1 day − warm-up − clock skew``. A tick is
written after it happens, so its record timestamp is at or after its event time (give or
take the producer's clock skew): every tick with a later event time is then in the read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import Consumer, KafkaException, TopicPartition

from processors.core.timeutil import DAY_US, to_us
from processors.runtime.masking import failure_reason, mask_url
from processors.runtime.settings import KafkaSettings
from processors.runtime.watermarks import watermarks

OffsetSpec = int | Mapping[int, int]
"""One offset for every partition, or offsets by partition (partitions left out: their first/end offset)."""


class RangeError(ValueError):
    """The range cannot be read (unknown topic or partition, start after end…); the message says why."""


@dataclass(frozen=True)
class RangeRequest:
    from_offset: OffsetSpec | None = None
    to_offset: OffsetSpec | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None

    def __post_init__(self) -> None:
        if self.from_offset is not None and self.from_time is not None:
            raise RangeError("give the start as --from-offset or --from-time, not both")
        if self.to_offset is not None and self.to_time is not None:
            raise RangeError("give the end as --to-offset or --to-time, not both")
        if self.from_time is not None and self.to_time is not None and self.from_time >= self.to_time:
            raise RangeError("the --from time must be before the --to time")


@dataclass(frozen=True)
class LogRange:
    """A resolved range: what to read and which records are in the range."""

    topic: str
    read_start: dict[int, int]  # first offset read per partition (warm-up included)
    read_end: dict[int, int]  # exclusive
    range_start: dict[int, int]  # first offset of the range per partition (offset starts; else = read_start)
    from_us: int | None  # event-time start (from_time), else None
    to_us: int | None  # event-time end, exclusive (to_time), else None
    read_from_us: int | None  # every tick with an event time ≥ this is in the read (None: read from the log start)
    log_start: frozenset[int] = field(default_factory=frozenset)  # partitions read from their first offset

    @property
    def records(self) -> int:
        return sum(self.read_end[p] - self.read_start[p] for p in self.read_end)

    def spark_offsets(self, offsets: Mapping[int, int]) -> str:
        """Offsets in the JSON form of Spark's Kafka source options."""
        return json.dumps({self.topic: {str(p): int(o) for p, o in sorted(offsets.items())}})


def parse_offsets(text: str) -> OffsetSpec:
    """``"1200"`` (every partition) or ``"0:1200,1:800"`` (by partition). Raises :class:`RangeError`."""
    text = text.strip()
    try:
        if ":" not in text:
            value = int(text)
            if value < 0:
                raise RangeError("offsets are never negative")
            return value
        found: dict[int, int] = {}
        for part in text.split(","):
            partition, offset = (int(piece) for piece in part.split(":"))
            if partition < 0 or offset < 0 or partition in found:
                raise RangeError(f"bad or repeated partition offset {part!r}")
            found[partition] = offset
        return found
    except ValueError as error:
        if isinstance(error, RangeError):
            raise
        raise RangeError(f"offsets look like 1200 or 0:1200,1:800, not {text!r}") from None


def _by_partition(spec: OffsetSpec | None, partitions: list[int], default: Mapping[int, int],
                  low: Mapping[int, int], high: Mapping[int, int], what: str) -> dict[int, int]:
    if spec is None:
        return dict(default)
    if isinstance(spec, int):
        chosen = {p: spec for p in partitions}
    else:
        unknown = set(spec) - set(partitions)
        if unknown:
            raise RangeError(f"{what}: the topic has no partition {sorted(unknown)} (it has {partitions})")
        chosen = {p: spec.get(p, default[p]) for p in partitions}
    return {p: min(max(chosen[p], low[p]), high[p]) for p in partitions}


def _event_time_at(consumer: Consumer, topic: str, partition: int, offset: int) -> int | None:
    """The ``ts_event`` (µs) of the record at ``offset``, its record time when it has none; None if absent."""
    consumer.assign([TopicPartition(topic, partition, offset)])
    for _ in range(20):
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        try:
            text = json.loads(message.value() or b"{}").get("ts_event")
            return to_us(datetime.fromisoformat(text))
        except (ValueError, TypeError, AttributeError):
            return int(message.timestamp()[1]) * 1000
    return None


def offsets_at_event_time(settings: KafkaSettings, topic: str, moment: datetime, clock_skew_us: int,
                          timeout_s: float = 30.0, scan_limit: int = 5_000_000) -> dict[int, int]:
    """Per partition, the offset of the first record (in log order) whose tick event time is ≥ ``moment``.

    Looks up ``moment − clock_skew`` in the broker's time index (record timestamps), then scans
    forward parsing ``ts_event``; records that are not ticks are passed over. The partition's end
    offset when no record qualifies. Used by ``stockstream replay`` (the backfill selects by
    event time inside Spark instead).
    """
    target = to_us(moment)
    consumer = Consumer({
        **settings.client_config(), "group.id": f"stockstream-range-probe-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "isolation.level": "read_committed", "auto.offset.reset": "earliest",
    })
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise RangeError(f"topic {topic!r} does not exist")
        found: dict[int, int] = {}
        probes = [TopicPartition(topic, p, max(0, (target - clock_skew_us) // 1000)) for p in metadata.partitions]
        for answer in consumer.offsets_for_times(probes, timeout=timeout_s):
            low, high = watermarks(consumer, TopicPartition(topic, answer.partition), timeout_s)
            start = high if answer.offset < 0 else max(answer.offset, low)
            found[answer.partition] = _scan_to(consumer, topic, answer.partition, start, high, target, scan_limit)
        return found
    except KafkaException as error:
        raise RangeError(f"Kafka at {mask_url(settings.bootstrap_servers)}: {failure_reason(error)}") from None
    finally:
        consumer.close()


def _scan_to(consumer: Consumer, topic: str, partition: int, start: int, high: int, target_us: int,
             limit: int) -> int:
    if start >= high:
        return high
    consumer.assign([TopicPartition(topic, partition, start)])
    seen = 0
    while seen < limit:
        messages = consumer.consume(1000, timeout=1.0)
        if not messages:
            return high  # nothing more to read (end of the partition)
        for message in messages:
            if message.error():
                continue
            seen += 1
            try:
                moment = to_us(datetime.fromisoformat(json.loads(message.value() or b"{}")["ts_event"]))
            except (ValueError, TypeError, KeyError):
                moment = None
            if moment is not None and moment >= target_us:
                return int(message.offset())
            if message.offset() + 1 >= high:
                return high
    raise RangeError(f"partition {partition}: no tick at or after the time within {limit} records; give offsets")


def warmup_read_from_us(first_us: int, warmup_us: int) -> int:
    """The warm-up rule: every tick with an event time at or after this is read before a range whose first
    tick is at ``first_us`` — the UTC midnight before it, − 1 day, − the warm-up (``plan.strategy_warmup``).

    From the midnight on, the daily summary open at the start is complete; the day before is read whole
    too, since the first tick of a day emits the final summary of the day before; the warm-up before
    that lets every indicator forget its seed (docs/spark.md).
    """
    return first_us - first_us % DAY_US - DAY_US - warmup_us


def resolve_range(settings: KafkaSettings, request: RangeRequest, warmup_us: int, clock_skew_us: int,
                  timeout_s: float = 30.0) -> LogRange:
    """Offsets to read for ``request`` on the deployment's ticks topic. Raises :class:`RangeError`."""
    topic = settings.topics().ticks.name
    consumer = Consumer({
        **settings.client_config(), "group.id": f"stockstream-backfill-probe-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "isolation.level": "read_committed",
    })
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise RangeError(f"topic {topic!r} does not exist (check KAFKA_TOPIC / STOCKSTREAM_TOPIC_PREFIX)")
        partitions = sorted(found.partitions)
        low, high = {}, {}
        for p in partitions:
            low[p], high[p] = watermarks(consumer, TopicPartition(topic, p), timeout_s)
        range_start = _by_partition(request.from_offset, partitions, low, low, high, "--from")
        read_end = _by_partition(request.to_offset, partitions, high, low, high, "--to")
        for p in partitions:
            if range_start[p] > read_end[p]:
                raise RangeError(f"partition {p}: --from {range_start[p]} is after --to {read_end[p]}")

        first_us: int | None = None
        if request.from_time is not None:
            first_us = to_us(request.from_time)
        elif request.from_offset is not None:
            times = [_event_time_at(consumer, topic, p, range_start[p]) for p in partitions
                     if range_start[p] < read_end[p]]
            known = [t for t in times if t is not None]
            first_us = min(known) if known else None
        read_start = dict(low)
        read_from_us: int | None = None
        if first_us is not None:
            read_from_us = warmup_read_from_us(first_us, warmup_us)
            wanted = [TopicPartition(topic, p, max(0, (read_from_us - clock_skew_us) // 1000)) for p in partitions]
            for answer in consumer.offsets_for_times(wanted, timeout=timeout_s):
                p = answer.partition
                offset = high[p] if answer.offset < 0 else answer.offset
                ceiling = range_start[p] if request.from_offset is not None else read_end[p]
                read_start[p] = max(low[p], min(offset, ceiling))
        log_start = frozenset(p for p in partitions if read_start[p] <= low[p])
        return LogRange(
            topic=topic, read_start=read_start, read_end=read_end, range_start=range_start,
            from_us=None if request.from_time is None else to_us(request.from_time),
            to_us=None if request.to_time is None else to_us(request.to_time),
            read_from_us=read_from_us, log_start=log_start,
        )
    except KafkaException as error:
        raise RangeError(f"Kafka at {mask_url(settings.bootstrap_servers)}: {failure_reason(error)}") from None
    finally:
        consumer.close()
