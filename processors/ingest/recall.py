"""What the ticks log already holds, so that a restarted ingest does not publish a tick twice.

The duplicate window (:class:`~processors.ingest.dedup.RecentKeys`) lived only in memory: after a
``kill -9`` (or any restart) a source that re-delivers — a seeded simulator on a simulated clock
starting again from its first tick, a file replayed from the top, an exchange snapshot after a
reconnect — had every tick its predecessor already got into the log published a second time.
Downstream that is not harmless: a copy still inside the grace period is folded into its candle
and daily aggregate again. So at start the service reads the ``(source, source_id)`` of the newest
records of every ticks partition, up to the window size, into the window (called once by
:mod:`processors.ingest.app`; a failure only costs the protection, never the start).
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from confluent_kafka import Consumer, KafkaError, TopicPartition

from processors.runtime.settings import KafkaSettings
from processors.runtime.watermarks import watermarks

log = logging.getLogger(__name__)


def recall_published(settings: KafkaSettings, capacity: int, timeout_s: float = 60.0) -> list[tuple[str, str]]:
    """Keys of the newest ``capacity`` ticks in the log (oldest first); raises on Kafka errors or timeout."""
    topic = settings.topics().ticks.name
    consumer = Consumer({**settings.client_config(), "group.id": f"ingest-recall-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 3})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        entry = metadata.topics.get(topic)
        if entry is None or entry.error is not None:
            return []
        assignment, pending = [], set()
        for partition in sorted(entry.partitions):
            low, high = watermarks(consumer, TopicPartition(topic, partition), 10)
            if high > low:
                assignment.append(TopicPartition(topic, partition, max(low, high - capacity)))
                pending.add(partition)
        if not assignment:
            return []
        consumer.assign(assignment)
        found: list[tuple[int, str, str]] = []
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading the tail of {topic} took more than {timeout_s:.0f}s")
            for message in consumer.consume(10_000, timeout=1.0):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                        continue
                    raise RuntimeError(f"reading {topic}: {error}")
                key = _key(message.value())
                if key is not None:
                    found.append((message.timestamp()[1], *key))
        found.sort(key=lambda item: item[0])
        return [(source, source_id) for _, source, source_id in found[-capacity:]]
    finally:
        consumer.close()


def _key(value: bytes | None) -> tuple[str, str] | None:
    try:
        document = json.loads(value or b"")
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    source, source_id = document.get("source"), document.get("source_id")
    if isinstance(source, str) and isinstance(source_id, str):
        return source, source_id
    return None
