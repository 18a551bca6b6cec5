"""bench/bench_process.py's reading of a group's committed offset, the clock of every ``--kafka`` drain.

A broker just started answers "not coordinator" or "coordinator load in progress" while it loads its
group metadata (a ``bench_processor_ab --kafka`` right after ``stack up`` died of it): those are asked
again, anything else is raised at once. The consumer here is a stand-in that answers as librdkafka does.
Also its split of a process's CPU by kind of thread, on a real process that spins in two threads.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from bench.bench_process import committed, cpu_by_thread_kind, cpu_seconds, thread_cpu_seconds


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


_WORKER = """
import sys, threading, time

def spin(seconds):
    began = time.thread_time()
    while time.thread_time() - began < seconds:
        pass

def client():
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as comm:
        comm.write("rdk:broker1")  # as librdkafka names its threads
    spin(0.3)
    ready.set()
    stop.wait()

ready, stop = threading.Event(), threading.Event()
threading.Thread(target=client).start()
spin(0.2)
ready.wait()
print("spun", flush=True)
sys.stdin.readline()
stop.set()
"""


def test_thread_cpu_is_split_between_the_interpreter_and_the_kafka_clients_threads() -> None:
    """Each thread's CPU goes to its kind: the process's first thread is ``main``, ``rdk:*`` threads ``librdkafka``."""
    worker = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "spun"
        threads = thread_cpu_seconds(worker.pid)
        total = cpu_seconds(worker.pid)
    finally:
        worker.communicate("\n", timeout=30)
    assert sorted(kind for kind, _ in threads.values()) == ["librdkafka", "main"]
    found = cpu_by_thread_kind({}, threads)
    assert found["main"] >= 0.15 and found["librdkafka"] >= 0.25, found  # spun 0.2 s and 0.3 s of CPU (10 ms ticks)
    assert found["rocksdb"] == found["other"] == 0.0
    assert sum(found.values()) <= total + 0.01


def test_the_split_counts_what_each_thread_spent_in_between() -> None:
    """A thread seen twice counts its difference, a new one from zero, one that ended not at all."""
    before = {"10": ("main", 5.0), "11": ("librdkafka", 1.0), "12": ("other", 2.0)}
    after = {"10": ("main", 7.5), "11": ("librdkafka", 1.25), "13": ("rocksdb", 0.5)}
    assert cpu_by_thread_kind(before, after) == {"main": 2.5, "librdkafka": 0.25, "rocksdb": 0.5, "other": 0.0}
