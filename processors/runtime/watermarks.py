"""A partition's watermarks (low and high offsets), asked again while its leader is moving.

A single broker answers ``NOT_LEADER_OR_FOLLOWER`` for a moment when its controller fenced it (a
heartbeat late on a busy machine) or while a leader election runs; librdkafka refreshes its metadata
on that error and the next request finds the leader. CI of stop 35 saw one such answer end a test.
Every other error, and a leader still missing at the deadline, is raised as it came.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

LEADER_MOVING = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE})


def watermarks(consumer: Consumer, partition: TopicPartition, timeout_s: float = 10.0) -> tuple[int, int]:
    """``consumer.get_watermark_offsets(partition)``, retried on :data:`LEADER_MOVING` until ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=max(0.5, deadline - time.monotonic()))
            return int(low), int(high)
        except KafkaException as error:
            if error.args[0].code() not in LEADER_MOVING or time.monotonic() + delay >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
