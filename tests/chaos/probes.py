"""Read-only Kafka probes for the chaos and soak runs: end offsets, group commits, lag, drained.

Every call has a short timeout and returns ``None`` instead of raising when the broker does not
answer (the broker is down on purpose during part of a chaos run), so pollers simply try again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from processors.notify.offsets import OffsetError, last_stable_offsets
from stockstream.settings import KafkaSettings

Offsets = dict[tuple[str, int], int]


class KafkaProbe:
    """One admin client and one metadata consumer, reused across polls (cheap enough to poll at 2 Hz)."""

    def __init__(self, bootstrap: str, timeout_s: float = 4.0) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        base = {"bootstrap.servers": bootstrap, "log_level": 0, "socket.timeout.ms": int(timeout_s * 1000)}
        self.admin = AdminClient(base)
        self.consumer = Consumer({**base, "group.id": f"chaos-probe-{uuid.uuid4().hex[:8]}",
                                  "enable.auto.commit": False})
        self._partitions: dict[str, list[int]] = {}

    def close(self) -> None:
        self.consumer.close()

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
                    result[(topic, partition)] = self.consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=self.timeout_s)[1]
        except KafkaException:
            return None
        return result

    def committed(self, group: str, topics: Iterable[str]) -> Offsets | None:
        """The group's committed offset per (topic, partition), 0 where it committed nothing yet."""
        wanted = [TopicPartition(topic, p) for topic in topics for p in (self.partitions(topic) or [])]
        if not wanted:
            return None
        try:
            future = self.admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, wanted)])[group]
            found = future.result(timeout=self.timeout_s)
        except (KafkaException, TimeoutError, Exception):  # noqa: BLE001 - broker down: try again later
            return None
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in found.topic_partitions}

    def total(self, offsets: Offsets | None) -> int | None:
        return None if offsets is None else sum(offsets.values())

    def lag(self, group: str, topics: Iterable[str]) -> int | None:
        """Records the group has not committed yet (high watermark − committed, summed); None if unknown."""
        topics = list(topics)
        ends, committed = self.ends(topics), self.committed(group, topics)
        if ends is None or committed is None:
            return None
        return sum(max(0, end - committed.get(where, 0)) for where, end in ends.items())


def drained(bootstrap: str, probe: KafkaProbe, group: str, topics: Iterable[str]) -> bool:
    """The group committed past the last committed data record of every partition.

    The high watermark is not the target on topics written by exactly-once producers: transaction
    markers and aborted records occupy offsets no consumer ever gets.
    """
    topics = list(topics)
    committed = probe.committed(group, topics)
    if committed is None:
        return False
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    for topic in topics:
        try:
            last = last_stable_offsets(settings, topic, timeout_s=10)
        except (OffsetError, KafkaException):
            return False
        for partition, offset in last.items():
            if offset is not None and committed.get((topic, partition), 0) <= offset:
                return False
    return True


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
