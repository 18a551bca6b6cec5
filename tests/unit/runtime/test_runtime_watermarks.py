"""Watermarks asked again while a partition's leader moves; every other error raised at once.

The stand-in consumer answers the way librdkafka does (a ``KafkaException`` carrying the broker's error
code): the real broker gives NOT_LEADER_OR_FOLLOWER only for moments we cannot provoke on demand.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from processors.runtime.watermarks import watermarks

PARTITION = TopicPartition("ticks", 0)


class Answers:
    """``get_watermark_offsets`` answering from a list: an error code raises, a pair is returned."""

    def __init__(self, *answers: int | tuple[int, int]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        assert partition is PARTITION and timeout > 0
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, int):
            raise KafkaException(KafkaError(answer))
        return answer


def test_a_moving_leader_is_asked_again_until_it_answers():
    consumer = Answers(KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, (3, 17))
    assert watermarks(consumer, PARTITION, timeout_s=30) == (3, 17)  # type: ignore[arg-type]
    assert consumer.calls == 3


def test_any_other_error_is_raised_at_once():
    consumer = Answers(KafkaError.UNKNOWN_TOPIC_OR_PART, (0, 1))
    with pytest.raises(KafkaException) as raised:
        watermarks(consumer, PARTITION, timeout_s=30)  # type: ignore[arg-type]
    assert raised.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART and consumer.calls == 1


def test_a_leader_still_missing_at_the_deadline_is_raised():
    consumer = Answers(*[KafkaError.NOT_LEADER_FOR_PARTITION] * 50)
    with pytest.raises(KafkaException) as raised:
        watermarks(consumer, PARTITION, timeout_s=0.5)  # type: ignore[arg-type]
    assert raised.value.args[0].code() == KafkaError.NOT_LEADER_FOR_PARTITION and 1 <= consumer.calls < 50


ROOT = Path(__file__).resolve().parents[3]
# Samplers, which take any error as "not now" and ask again at their next round: the changelog-size gauge, and
# the chaos probes (a retry held each sample up to its timeout per partition while the restarted broker had
# no leaders, and the chaos test's recovery figures went missing).
DIRECT_CALLERS_ALLOWED = {"processors/runtime/watermarks.py", "processors/stream/kafka_stats.py", "tests/chaos/probes.py"}


def test_every_caller_goes_through_the_helper():
    callers = set()
    for folder in ("schemas", "processors", "spark_jobs", "stockstream", "tests/support", "tests/chaos"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute) and node.attr == "get_watermark_offsets":
                    callers.add(path.relative_to(ROOT).as_posix())
    assert callers == DIRECT_CALLERS_ALLOWED, f"call processors.runtime.watermarks.watermarks instead: {sorted(callers - DIRECT_CALLERS_ALLOWED)}"
