"""Rebuild the views from the log (``stockstream views rebuild``), and compare two sets of views.

A rebuild reads every input topic from a start point (the beginning, an offset, or a time)
up to the end offsets seen when it starts, through the same planner and store as the live
materializer (minus live publishing and dead letters, which the live run already produced).

Where it writes:
- the live prefix itself when that holds no views yet (an empty Redis);
- otherwise a fresh staging prefix, then — with ``swap`` — one MULTI/EXEC that deletes the
  live views and renames the staging keys into their place (readers see old or new, never a
  mix), followed by a catch-up pass from the rebuild's end offsets to the current ends into
  the live prefix, so whatever the live materializer wrote meanwhile is not lost (writes are
  idempotent, so re-applying is harmless);
- or a prefix given with ``into`` (kept side by side, e.g. to compare with :func:`snapshot`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from processors.materialize.admission import ViewAdmission
from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner
from processors.materialize.service import to_record, utc_now
from processors.materialize.settings import MaterializeSettings, redis_client
from processors.materialize.store import ViewStore
from processors.runtime.watermarks import watermarks

log = logging.getLogger(__name__)
VIEW_ROOTS = ("instruments", "symbols", "latest:*", "rec:*", "candles:*", "ind:*", "signals:*", "daily:*")


class RebuildError(RuntimeError):
    """The rebuild cannot proceed; the message says why and what to do."""


@dataclass(frozen=True)
class StartAt:
    """Where to start reading every input partition: the beginning, an offset, or a time."""

    offset: int | None = None
    time: datetime | None = None


@dataclass(frozen=True)
class RebuildReport:
    target_prefix: str
    swapped: bool
    records: int
    events: int
    dead_letters: int
    caught_up: int
    seconds: float


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def view_keys_under(client: redis.Redis, prefix: str) -> list[str]:
    """Every view key under ``prefix`` (only our key roots: other prefixes that share its start are left alone)."""
    found: set[str] = set()
    for root in VIEW_ROOTS:
        for key in client.scan_iter(match=_glob_escape(prefix) + root, count=1000):
            found.add(_text(key))
    return sorted(found)


def snapshot(client: redis.Redis, prefix: str) -> dict[str, Any]:
    """The content of every view key under ``prefix``, keyed by the key without the prefix."""
    content: dict[str, Any] = {}
    for key in view_keys_under(client, prefix):
        kind = _text(client.type(key))
        if kind == "hash":
            value: Any = dict(client.hgetall(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(client.smembers(key))
        else:
            value = client.dump(key)
        content[key[len(prefix):]] = (kind, value)
    return content


class Rebuilder:
    def __init__(self, settings: MaterializeSettings, *, now: Callable[[], datetime] = utc_now,
                 progress: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.now = now
        self.progress = progress or log.info
        self.redis = redis_client(settings, settings.redis_socket_timeout_s)
        self.topics = settings.input_topics()

    def _consumer(self) -> Consumer:
        return Consumer({**self.settings.client_config(), "group.id": f"views-rebuild-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "log_level": 3})

    def _partitions(self, consumer: Consumer) -> list[TopicPartition]:
        partitions = []
        for name in self.topics.names:
            # One topic at a time: a listing of every topic silently leaves out those this Kafka user may
            # not describe, and a rebuild without them would "succeed" with views missing.
            topic = consumer.list_topics(name, timeout=30).topics.get(name)
            error = None if topic is None else topic.error
            if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise RebuildError(f"Kafka refused reading {name}: the rebuild needs the materializer's user (READ and"
                                   " DESCRIBE on its input topics; `stockstream kafka-access plan`)")
            if topic is None or error is not None:
                continue  # a timeframe with no topic yet has nothing to rebuild
            partitions += [TopicPartition(name, p) for p in sorted(topic.partitions)]
        return partitions

    def _starts(self, consumer: Consumer, partitions: list[TopicPartition], start: StartAt,
                ends: dict[tuple[str, int], int]) -> list[TopicPartition]:
        if start.time is not None:
            ms = int(start.time.timestamp() * 1000)
            found = consumer.offsets_for_times([TopicPartition(tp.topic, tp.partition, ms) for tp in partitions],
                                               timeout=30)
            # -1: no record at or after that time; start at the end (nothing to read).
            return [TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else
                                   ends[(tp.topic, tp.partition)]) for tp in found]
        if start.offset is not None:
            # Clamped into [low, end]: an out-of-range offset would make the consumer jump back to the start.
            return [TopicPartition(tp.topic, tp.partition, min(max(start.offset, self._low(consumer, tp)),
                                                               ends[(tp.topic, tp.partition)]))
                    for tp in partitions]
        return [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]

    @staticmethod
    def _end(consumer: Consumer, tp: TopicPartition) -> int:
        return int(watermarks(consumer, TopicPartition(tp.topic, tp.partition), 30)[1])

    @staticmethod
    def _low(consumer: Consumer, tp: TopicPartition) -> int:
        return int(watermarks(consumer, TopicPartition(tp.topic, tp.partition), 30)[0])

    def _replay(self, prefix: str, starts: list[TopicPartition], ends: dict[tuple[str, int], int]
                ) -> tuple[int, int, int, dict[tuple[str, int], int]]:
        """Read from ``starts`` to ``ends`` into ``prefix``; returns records, events, dead letters, positions."""
        keys = ViewKeys(prefix)
        admission = ViewAdmission(self.settings.instrument_policy(), self.redis.smembers(keys.instruments))
        planner = BatchPlanner(keys, self.topics, self.settings.caps(), self.now, admission)
        store = ViewStore(self.redis, keys, publish=False)
        consumer = self._consumer()
        positions = {(tp.topic, tp.partition): tp.offset for tp in starts}
        pending = {where for where, end in ends.items() if end > 0 and positions.get(where, 0) != end}
        records = events = dead = 0
        last_report = time.monotonic()
        try:
            if pending:
                consumer.assign([tp for tp in starts if (tp.topic, tp.partition) in pending])
            while pending:
                batch_records = []
                for message in consumer.consume(self.settings.batch_max_records, timeout=0.5):
                    if message.error() is not None:
                        if message.error().fatal():
                            raise KafkaException(message.error())
                        continue
                    where = (message.topic(), message.partition())
                    if where in pending and message.offset() < ends[where]:
                        batch_records.append(to_record(message))
                if batch_records:
                    batch = planner.plan(batch_records)
                    store.apply(batch)
                    records += batch.records
                    events += sum(batch.events_by_topic.values())
                    dead += len(batch.dead_letters)
                for where in list(pending):
                    position = consumer.position([TopicPartition(*where)])[0].offset
                    if position >= 0:
                        positions[where] = position
                    # read_committed: the last offsets may be transaction markers, so compare positions.
                    if position >= ends[where]:
                        pending.discard(where)
                        positions[where] = ends[where]
                if time.monotonic() - last_report > 5:
                    self.progress(f"rebuild: {records} records so far, {len(pending)} partitions to go")
                    last_report = time.monotonic()
        finally:
            consumer.close()
        return records, events, dead, positions

    def _swap(self, staging: str, live: str) -> int:
        """Atomically replace the views under ``live`` with those under ``staging``; returns keys moved."""
        old = view_keys_under(self.redis, live)
        new = view_keys_under(self.redis, staging)
        pipe = self.redis.pipeline(transaction=True)
        if old:
            pipe.delete(*old)
        for key in new:
            pipe.rename(key, live + key[len(staging):])
        pipe.execute()
        return len(new)

    def run(self, start: StartAt = StartAt(), *, into: str | None = None, swap: bool = False) -> RebuildReport:
        begun = time.monotonic()
        live = self.settings.redis_key_prefix
        if into is None:
            target = live if not view_keys_under(self.redis, live) else None
            if target is None:
                if not swap:
                    raise RebuildError(f"prefix {live!r} already holds views: pass --swap to rebuild into a staging "
                                       "prefix and swap it in, or --redis-prefix PREFIX to rebuild side by side")
                target = f"rebuild.{uuid.uuid4().hex[:8]}:"
        else:
            target = into
            if view_keys_under(self.redis, target):
                raise RebuildError(f"prefix {target!r} is not empty; pick a fresh one")
        if swap and target != live and (not live or target.startswith(live) or live.startswith(target)):
            raise RebuildError(f"cannot swap {target!r} into {live!r}: one prefix starts with the other")
        consumer = self._consumer()
        try:
            partitions = self._partitions(consumer)
            ends = {(tp.topic, tp.partition): self._end(consumer, tp) for tp in partitions}
            starts = self._starts(consumer, partitions, start, ends)
        finally:
            consumer.close()
        self.progress(f"rebuild: {len(partitions)} partitions into prefix {target!r}")
        records, events, dead, positions = self._replay(target, starts, ends)
        swapped = False
        caught_up = 0
        if swap and target != live:
            moved = self._swap(target, live)
            swapped = True
            self.progress(f"rebuild: swapped {moved} keys into {live!r}")
            # Catch up on what arrived during the rebuild, straight into the live prefix (idempotent writes).
            consumer = self._consumer()
            try:
                new_ends = {where: self._end(consumer, TopicPartition(*where)) for where in ends}
            finally:
                consumer.close()
            resume = [TopicPartition(topic, partition, positions.get((topic, partition), 0))
                      for (topic, partition) in new_ends]
            caught_up, extra_events, extra_dead, _ = self._replay(live, resume, new_ends)
            events += extra_events
            dead += extra_dead
        self.redis.close()
        return RebuildReport(target if not swapped else live, swapped, records + caught_up, events, dead, caught_up,
                             time.monotonic() - begun)
