"""Read-only Kafka probes for the chaos and soak runs: end offsets, group commits, lag, drained.

Every call has a short timeout and returns ``None`` instead of raising when the broker does not
answer (the broker is down on purpose during part of a chaos run), so pollers simply try again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from processors.notify.offsets import OffsetError, last_stable_offsets
from processors.runtime.settings import KafkaSettings

Offsets = dict[tuple[str, int], int]


class KafkaProbe:
    """A metadata consumer and one offset reader per group, reused across polls (cheap enough at 4 Hz)."""

    def __init__(self, bootstrap: str, timeout_s: float = 4.0) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._base = {"bootstrap.servers": bootstrap, "log_level": 0, "socket.timeout.ms": int(timeout_s * 1000)}
        self.consumer = Consumer({**self._base, "group.id": f"chaos-probe-{uuid.uuid4().hex[:8]}",
                                  "enable.auto.commit": False})
        self._readers: dict[str, Consumer] = {}
        self._partitions: dict[str, list[int]] = {}

    def close(self) -> None:
        for consumer in (self.consumer, *self._readers.values()):
            consumer.close()
        self._readers.clear()

    def partitions(self, topic: str) -> list[int] | None:
        if topic not in self._partitions:
            try:
                metadata = self.consumer.list_topics(topic, timeout=self.timeout_s)
            except KafkaException:
                return None
            entry = metadata.topics.get(topic)
            if entry is None or entry.error is not None or not entry.partitions:
                return None
            self._partitions[topic] = sorted(entry.partitions)
        return self._partitions[topic]

    def ends(self, topics: Iterable[str]) -> Offsets | None:
        """High watermark per (topic, partition); None while the broker does not answer."""
        result: Offsets = {}
        try:
            for topic in topics:
                partitions = self.partitions(topic)
                if partitions is None:
                    return None
                for partition in partitions:
                    # A probe samples: a partition without a leader (the broker restarting) is "not now", not
                    # a wait (watermarks() would hold each sample up to timeout_s per partition).
                    result[(topic, partition)] = self.consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=self.timeout_s)[1]
        except KafkaException:
            return None
        return result

    def committed(self, group: str, topics: Iterable[str]) -> Offsets | None:
        """The group's committed offset per (topic, partition), 0 where it committed nothing yet.

        Read with a consumer carrying the group's id that never subscribes (an OffsetFetch, no join).
        Not the AdminClient: its ``list_consumer_group_offsets`` aborts the process inside librdkafka
        (``rd_kafka_enq_once_del_source_return`` assertion, 2.12.1) when polled across a broker restart.
        """
        wanted = [TopicPartition(topic, p) for topic in topics for p in (self.partitions(topic) or [])]
        if not wanted:
            return None
        reader = self._readers.get(group)
        if reader is None:
            reader = self._readers[group] = Consumer({**self._base, "group.id": group, "enable.auto.commit": False})
        try:
            found = reader.committed(wanted, timeout=self.timeout_s)
        except KafkaException:
            return None
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in found}

    def total(self, offsets: Offsets | None) -> int | None:
        return None if offsets is None else sum(offsets.values())

    def lag(self, group: str, topics: Iterable[str]) -> int | None:
        """Records the group has not committed yet (high watermark − committed, summed); None if unknown."""
        topics = list(topics)
        ends, committed = self.ends(topics), self.committed(group, topics)
        if ends is None or committed is None:
            return None
        return sum(max(0, end - committed.get(where, 0)) for where, end in ends.items())


def final_positions(bootstrap: str, topics: Iterable[str]) -> Offsets | None:
    """Offset after the last committed data record per (topic, partition) — where a consumer that has
    read everything stands (None if a topic cannot be read). Only final once the producers are idle.

    The high watermark is not that target on topics written by exactly-once producers: transaction
    markers and aborted records occupy offsets no consumer ever gets.
    """
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    targets: Offsets = {}
    for topic in topics:
        try:
            last = last_stable_offsets(settings, topic, timeout_s=10)
        except (OffsetError, KafkaException):
            return None
        targets.update({(topic, partition): offset + 1 for partition, offset in last.items() if offset is not None})
    return targets


def reached(probe: KafkaProbe, group: str, targets: Offsets) -> bool:
    """The group committed at least ``targets`` everywhere."""
    committed = probe.committed(group, sorted({topic for topic, _ in targets}))
    return committed is not None and all(committed.get(where, 0) >= offset for where, offset in targets.items())


@dataclass
class Waited:
    seconds: float | None  # None: the condition never held within the timeout
    samples: int


def wait_for(condition: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.25,
             since: float | None = None) -> Waited:
    """Poll ``condition``; seconds from ``since`` (default: now) until it held, or None after the timeout."""
    origin = time.monotonic() if since is None else since
    deadline = time.monotonic() + timeout_s
    samples = 0
    while True:
        samples += 1
        try:
            held = condition()
        except Exception:  # noqa: BLE001 - a probe failing mid-fault counts as "not yet"
            held = False
        if held:
            return Waited(time.monotonic() - origin, samples)
        if time.monotonic() > deadline:
            return Waited(None, samples)
        time.sleep(interval_s)
