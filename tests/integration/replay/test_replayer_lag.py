"""``Kafka.lag`` counts only records a read_committed consumer can still read (real broker).

``runs start`` waits for the views group to commit every event the run's processor wrote
(``stockstream/replayer.py``, ``_drain``). A transaction's control record is never committed past,
and neither is the tail of an aborted transaction (its records are invisible to read_committed
readers). A few offsets short is taken as markers only after a read_committed probe; a longer
shortfall is probed once the group has stopped committing (``probe=True``). Here a transactional
producer writes committed and aborted tails, a group commits what it read, and ``lag`` must say 0
exactly when nothing readable is left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from stockstream.replayer import MARKER_SLACK, Kafka
from tests.support.kafka_tools import delete_topics, wait_settled

pytestmark = [pytest.mark.integration]


@dataclass
class Log:
    topic: str
    group: str
    producer: Producer
    kafka: Kafka
    bootstrap: str

    def transaction(self, records: int, *, commit: bool) -> None:
        self.producer.begin_transaction()
        for index in range(records):
            self.producer.produce(self.topic, f"record {index}".encode(), partition=0)
        self.producer.flush(30)
        if commit:
            self.producer.commit_transaction(30)
        else:
            self.producer.abort_transaction(30)
        wait_settled(self.bootstrap, self.topic)  # its marker is on the partition before anyone reads offsets

    def end(self) -> int:
        return self.kafka.ends([self.topic])[(self.topic, 0)]

    def read_and_commit(self) -> int:
        """A read_committed member reads everything readable and commits after its last record."""
        member = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False,
                           "isolation.level": "read_committed", "enable.partition.eof": True})
        try:
            member.assign([TopicPartition(self.topic, 0, 0)])
            last = None
            deadline = time.monotonic() + 120
            while True:
                assert time.monotonic() < deadline, "no end of the partition within 120 s"
                message = member.poll(1)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    break
                last = message.offset()
            assert last is not None
            member.commit(offsets=[TopicPartition(self.topic, 0, last + 1)], asynchronous=False)
            return last + 1
        finally:
            member.close()


@pytest.fixture
def log(stack, namespace) -> Iterator[Log]:
    settings = KafkaSettings(topic_prefix=namespace, bootstrap_servers=stack.kafka_bootstrap)
    spec = settings.topics().signals
    ensure_topics(settings, [spec])
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "transactional.id": f"{namespace}tx"})
    producer.init_transactions(120)
    kafka = Kafka(settings)
    try:
        yield Log(spec.name, f"{namespace}views", producer, kafka, stack.kafka_bootstrap)
    finally:
        kafka.close()
        delete_topics(stack.kafka_bootstrap, namespace)


def test_an_aborted_tail_is_no_lag_once_probed_and_readable_records_always_are(log):
    log.transaction(5, commit=True)
    log.transaction(MARKER_SLACK + 7, commit=False)  # longer than the marker slack
    end = log.end()
    committed = log.read_and_commit()
    assert committed == 5
    targets = {(log.topic, 0): end}
    assert end - committed > MARKER_SLACK
    assert log.kafka.lag(log.group, targets) == end - committed  # unprobed: counted as it stands
    assert log.kafka.lag(log.group, targets, probe=True) == 0  # nothing readable is left

    log.transaction(2, commit=True)  # readable records after the aborted tail
    end = log.end()
    targets = {(log.topic, 0): end}
    assert log.kafka.lag(log.group, targets, probe=True) > 0
    assert log.read_and_commit() == end - 1  # after the last record, before its marker
    assert log.kafka.lag(log.group, targets) == 0  # one marker short: probed anyway
    assert log.kafka.lag(log.group, targets, probe=True) == 0
