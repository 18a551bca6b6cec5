"""``read_topic_values`` (what ``runs diff`` reads two runs' signals with) on the real broker.

It must read everything committed before the call, also a transaction committed a moment ago whose markers
are not on the partitions yet (a read_committed reader's end, the last stable offset, is short then), skip
an aborted transaction's records and return past them, and wait for a transaction still open rather than
end before it.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer

from processors.runtime.runs import RunLogError, read_topic_values
from processors.runtime.settings import KafkaSettings
from tests.integration.stream.stream_support import create_topic

pytestmark = [pytest.mark.integration]
PARTITIONS = 3


def test_read_topic_values_reads_each_commit_at_once_skips_aborted_ones_and_waits_for_an_open_one(stack):
    topic = create_topic(stack.kafka_bootstrap, f"reader{uuid.uuid4().hex[:8]}", PARTITIONS)
    settings = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap)
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "transactional.id": topic, "linger.ms": 0})
    producer.init_transactions(60)

    def transaction(tag: str, *, commit: bool | None) -> list[bytes]:
        values = [f"{tag}-{p}".encode() for p in range(PARTITIONS)]
        producer.begin_transaction()
        for p, value in enumerate(values):
            producer.produce(topic, value=value, partition=p)
        if commit is True:
            producer.commit_transaction(60)
        elif commit is False:
            producer.abort_transaction(60)
        else:
            producer.flush(60)  # appended, neither committed nor aborted
        return values

    committed: list[bytes] = []
    for round_ in range(20):  # read right after each commit, as runs diff reads right after runs start
        committed += transaction(f"c{round_}", commit=True)
        assert sorted(read_topic_values(settings, topic)) == sorted(committed), round_
    transaction("aborted", commit=False)
    assert sorted(read_topic_values(settings, topic)) == sorted(committed), "an aborted tail is skipped, and passed"

    pending = transaction("open", commit=None)
    with pytest.raises(RunLogError, match="transaction still open"):
        read_topic_values(settings, topic, timeout_s=3)
    producer.commit_transaction(60)
    assert sorted(read_topic_values(settings, topic)) == sorted(committed + pending)
