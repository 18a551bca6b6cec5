"""``Kafka.committed`` reads where a group stopped, never the checkpoint before it (real broker).

``strategy promote`` takes a stopped group's committed offsets as its stop point
(``stockstream/handover.py``). A processor under exactly-once commits them in its checkpoint's
transaction, and the broker writes the transaction's markers after the commit returns; a plain
read in between answers the previous checkpoint's offsets (93 of 200 reads right after a commit
did on the shared machine). Here a transactional producer commits a group's offsets as a
processor's checkpoint does, and every read right after a commit must be that commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from stockstream.replayer import Kafka, ReplayError
from tests.support.kafka_tools import delete_topics, wait_until

pytestmark = [pytest.mark.integration]
COMMITS = 60


@dataclass
class Checkpoints:
    """A group member and a transactional producer that commits the member's offsets, like a checkpoint."""

    topic: str
    group: str
    member: Consumer
    producer: Producer
    kafka: Kafka

    def begin(self, offset: int) -> dict[tuple[str, int], int]:
        """A checkpoint's transaction holding one output and the offsets ``offset`` on every partition."""
        assigned = self.member.assignment()
        self.producer.begin_transaction()
        self.producer.produce(self.topic, b"output")
        self.producer.send_offsets_to_transaction([TopicPartition(self.topic, tp.partition, offset) for tp in assigned],
                                                  self.member.consumer_group_metadata())
        return {(self.topic, tp.partition): offset for tp in assigned}


@pytest.fixture
def checkpoints(stack, namespace) -> Iterator[Checkpoints]:
    settings = KafkaSettings(topic_prefix=namespace, bootstrap_servers=stack.kafka_bootstrap)
    spec = settings.topics().ticks
    ensure_topics(settings, [spec])
    group = f"{namespace}process"
    member = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": group, "enable.auto.commit": False,
                       "isolation.level": "read_committed"})
    member.subscribe([spec.name])
    wait_until(lambda: member.poll(0.2) is None and bool(member.assignment()), timeout_s=120,
               message="the member to be assigned the topic's partitions")
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "transactional.id": f"{group}-tx"})
    producer.init_transactions(120)
    kafka = Kafka(settings)
    try:
        yield Checkpoints(spec.name, group, member, producer, kafka)
    finally:
        kafka.close()
        member.close()
        delete_topics(stack.kafka_bootstrap, namespace)


def test_offsets_read_right_after_a_checkpoint_are_that_checkpoints(checkpoints):
    for offset in range(1, COMMITS + 1):
        expected = checkpoints.begin(offset)
        checkpoints.producer.commit_transaction()
        assert checkpoints.kafka.committed(checkpoints.group, checkpoints.topic) == expected, offset


def test_offsets_of_an_open_transaction_are_never_read_as_committed(checkpoints):
    committed = checkpoints.begin(7)
    checkpoints.producer.commit_transaction()
    checkpoints.begin(9)
    with pytest.raises(ReplayError, match="still open"):
        checkpoints.kafka.committed(checkpoints.group, checkpoints.topic, timeout_s=2)
    checkpoints.producer.abort_transaction()
    assert checkpoints.kafka.committed(checkpoints.group, checkpoints.topic) == committed
