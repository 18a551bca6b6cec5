"""bench/bench_process.py's reading of a group's committed offset, the clock of every ``--kafka`` drain.

A broker just started answers "not coordinator" or "coordinator load in progress" while it loads its
group metadata (a ``bench_processor_ab --kafka`` right after ``stack up`` died of it): those are asked
again, anything else is raised at once. The consumer here is a stand-in that answers as librdkafka does.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from bench.bench_process import committed


class _Answers:
    """``Consumer.committed`` answering with each of ``answers`` in turn (an error is raised)."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.asked = 0

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, KafkaError):
            raise KafkaException(answer)
        assert isinstance(answer, int)
        return [TopicPartition(partitions[0].topic, 0, answer)]


def test_a_busy_coordinator_is_asked_again_until_it_answers() -> None:
    consumer = _Answers(KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS), KafkaError(KafkaError.NOT_COORDINATOR),
                        1234)
    assert committed(consumer, "ticks") == 1234  # type: ignore[arg-type]
    assert consumer.asked == 3


def test_no_committed_offset_reads_as_zero() -> None:
    assert committed(_Answers(-1001), "ticks") == 0  # type: ignore[arg-type]


def test_another_error_is_raised_at_once() -> None:
    consumer = _Answers(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED), 5)
    with pytest.raises(KafkaException):
        committed(consumer, "ticks")  # type: ignore[arg-type]
    assert consumer.asked == 1


def test_a_coordinator_busy_beyond_the_patience_is_raised() -> None:
    consumer = _Answers(*[KafkaError(KafkaError.NOT_COORDINATOR)] * 3)
    with pytest.raises(KafkaException):
        committed(consumer, "ticks", patience_s=0.0)  # type: ignore[arg-type]
    assert consumer.asked == 1
