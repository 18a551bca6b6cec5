"""Consumer-group positions for replays (``--since``) and renotify runs (Kafka admin, called at start).

- :func:`start_offsets`: where a replay from a time (or the beginning) starts, per partition;
- :func:`set_group_offsets`: move an inactive lane group there before its lane starts;
- :func:`last_stable_offsets`: the last committed data record per partition, so a
  renotify run knows when it has re-announced everything that was in the log.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from processors.runtime.settings import KafkaSettings
from processors.runtime.watermarks import watermarks


class OffsetError(RuntimeError):
    """Positions could not be read or set; the message says what to do."""


def _consumer(settings: KafkaSettings, **extra: object) -> Consumer:
    return Consumer({**settings.client_config(), "group.id": f"stockstream-notify-probe-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "isolation.level": "read_committed", **extra})


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=10)
    entry = metadata.topics.get(topic)
    if entry is None or entry.error is not None:
        raise OffsetError(f"topic {topic} does not exist")
    return sorted(entry.partitions)


def start_offsets(settings: KafkaSettings, topic: str, since: datetime | None) -> dict[int, int]:
    """First offset per partition at or after ``since`` (record timestamps); ``None`` = the beginning."""
    consumer = _consumer(settings)
    try:
        partitions = _partitions(consumer, topic)
        marks = {p: watermarks(consumer, TopicPartition(topic, p), 10) for p in partitions}
        if since is None:
            return {p: low for p, (low, _high) in marks.items()}
        wanted = [TopicPartition(topic, p, int(since.timestamp() * 1000)) for p in partitions]
        found = consumer.offsets_for_times(wanted, timeout=10)
        return {tp.partition: tp.offset if tp.offset >= 0 else marks[tp.partition][1] for tp in found}
    finally:
        consumer.close()


def set_group_offsets(settings: KafkaSettings, group: str, topic: str, offsets: dict[int, int],
                      timeout_s: float = 45.0) -> None:
    """Commit ``offsets`` for ``group`` once it has no live member.

    Kafka refuses while a member is in the group: another running notifier, or a lane that
    stopped moments ago (static members stay registered for ``session.timeout.ms``). Waits up
    to ``timeout_s`` for the group to empty, then raises :class:`OffsetError`.
    """
    admin = AdminClient(settings.client_config())
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in sorted(offsets.items())])
    deadline = time.monotonic() + timeout_s
    while True:
        problem = None
        try:
            for future in admin.alter_consumer_group_offsets([request]).values():
                result = future.result(timeout=30)
                errors = {str(tp.error) for tp in result.topic_partitions if tp.error is not None}
                problem = "; ".join(sorted(errors)) or None
        except KafkaException as error:
            problem = str(error.args[0])
        if problem is None:
            return
        if time.monotonic() > deadline:
            raise OffsetError(f"cannot move consumer group {group} ({problem}); is another notifier using it?")
        time.sleep(1.0)  # the group still has a member: wait for it to leave or expire


def last_stable_offsets(settings: KafkaSettings, topic: str, timeout_s: float = 30.0) -> dict[int, int | None]:
    """Offset of the last committed data record per partition (``None`` when it holds none).

    The high watermark is not enough: records written by exactly-once producers are
    followed by transaction markers, which occupy offsets but are never delivered.
    """
    consumer = _consumer(settings, **{"enable.partition.eof": True})
    try:
        result: dict[int, int | None] = {}
        for partition in _partitions(consumer, topic):
            low, high = watermarks(consumer, TopicPartition(topic, partition), 10)
            result[partition] = _last_record(consumer, topic, partition, low, high, timeout_s)
        return result
    finally:
        consumer.close()


def _last_record(consumer: Consumer, topic: str, partition: int, low: int, high: int, timeout_s: float) -> int | None:
    window = 16
    while high > low:
        start = max(low, high - window)
        consumer.assign([TopicPartition(topic, partition, start)])
        last = None
        while True:
            message = consumer.poll(timeout_s)
            if message is None:
                raise OffsetError(f"no answer reading {topic}[{partition}] within {timeout_s:.0f}s")
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    break
                raise OffsetError(f"reading {topic}[{partition}]: {error}")
            last = message.offset()
        if last is not None or start == low:
            return last
        window *= 4
    return None
