"""The client settings ``stockstream process`` hands to Quix (processors/stream/topology.py), on the shared stack.

The application is built in-process (topics looked up on the real broker, nothing run): the
commit interval, the consumer poll timeout that bounds how late a due checkpoint is committed
when the input pauses, and the producer's batching reach Quix's configuration per guarantee.
How the outputs are produced (:func:`output_producer`: exactly once straight to librdkafka's
transactional producer, at least once through Quix's ``produce``) is checked on the broker, per
guarantee: a full local queue loses nothing and keeps the order; exactly once, a record the broker
refuses fails the transaction's commit, so nothing of it is read; at least once, Quix's delivery
callback latches it, so the next record and the checkpoint's flush raise it.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry
from quixstreams.internal_producer import InternalProducer
from quixstreams.kafka.exceptions import KafkaProducerDeliveryError
from stream_support import create_topic

from processors.core.strategy import DEFAULT_STRATEGY
from processors.runtime.kafka_admin import ensure_topics
from processors.stream.metrics import ProcessMetrics
from processors.stream.settings import ProcessSettings
from processors.stream.topology import build_processor, output_producer
from tests.support.kafka_tools import end_offsets, read_topic, wait_settled, wait_until


@pytest.mark.parametrize(("guarantee", "interval", "poll_timeout", "linger_ms"), [
    ("exactly-once", None, 0.05, 20.0), ("exactly-once", 0.1, 0.02, 20.0), ("at-least-once", None, 0.05, 5.0)])
def test_commit_interval_poll_timeout_and_linger_reach_the_quix_application(
        stack, namespaces, tmp_path, monkeypatch, guarantee, interval, poll_timeout, linger_ms) -> None:
    for name in ("PROCESS_POLL_TIMEOUT_SECONDS", "PROCESS_COMMIT_INTERVAL_SECONDS", "PROCESS_PRODUCER_LINGER_MS"):
        monkeypatch.delenv(name, raising=False)
    namespace = namespaces(f"topo{uuid.uuid4().hex[:8]}.")
    settings = ProcessSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace,
                               processing_guarantee=guarantee, commit_interval_s=interval, state_dir=tmp_path,
                               metrics_port=0)
    ensure_topics(settings, settings.topics().all())
    config = build_processor(settings, DEFAULT_STRATEGY, ProcessMetrics(CollectorRegistry())).app.config
    assert config.processing_guarantee == guarantee
    assert config.commit_interval == settings.commit_interval
    assert config.consumer_poll_timeout == pytest.approx(poll_timeout) == settings.poll_timeout
    assert config.producer_extra_config["linger.ms"] == linger_ms


def _transactional(bootstrap: str, **config: object) -> InternalProducer:
    producer = InternalProducer(bootstrap, transactional=True, extra_config={
        "transactional.id": f"topo-{uuid.uuid4().hex}", "transaction.timeout.ms": 20_000, **config})
    producer.begin_transaction()
    return producer


def _small_and_fine(bootstrap: str, namespaces) -> tuple[str, str]:
    """Two new topics: one that refuses records over 2,000 bytes, one that takes them."""
    namespace = namespaces(f"topo{uuid.uuid4().hex[:8]}.")
    return (create_topic(bootstrap, f"{namespace}small", **{"max.message.bytes": "2000"}),
            create_topic(bootstrap, f"{namespace}fine"))


def test_an_exactly_once_output_the_broker_refuses_fails_the_commit_and_nothing_is_read(stack, namespaces) -> None:
    bootstrap = stack.kafka_bootstrap
    small, fine = _small_and_fine(bootstrap, namespaces)
    producer = _transactional(bootstrap)
    produce = output_producer(producer, exactly_once=True)
    produce(topic=fine, value=b"kept only if the transaction commits", key=b"k", headers=None, timestamp=1_000)
    # On the broker before the refused record is sent: otherwise, when both wait in librdkafka's queue, the failure
    # can purge it unsent (a proof of 2026-12-07 found the topic empty), and "written, then aborted" proves nothing.
    assert producer.flush(30) == 0
    produce(topic=small, value=b"x" * 10_000, key=b"k", headers=None, timestamp=1_000)  # the broker refuses it
    with pytest.raises(KafkaException) as failed:
        producer.commit_transaction([], None)
    error = failed.value.args[0]
    assert error.code() == KafkaError.MSG_SIZE_TOO_LARGE and error.txn_requires_abort(), error
    producer.abort_transaction(10)
    wait_settled(bootstrap, fine)  # the abort marker is on the partition
    assert read_topic(bootstrap, fine) == [] and end_offsets(bootstrap, fine)[0] >= 1  # written, then aborted


@pytest.mark.parametrize("exactly_once", [True, False])
def test_outputs_survive_a_full_local_queue_in_order(stack, namespaces, exactly_once) -> None:
    bootstrap = stack.kafka_bootstrap
    topic = create_topic(bootstrap, f"{namespaces(f'topo{uuid.uuid4().hex[:8]}.')}out")
    config = {"queue.buffering.max.messages": 5, "linger.ms": 50}
    producer = _transactional(bootstrap, **config) if exactly_once else InternalProducer(bootstrap, extra_config=config)
    produce = output_producer(producer, exactly_once=exactly_once)
    for number in range(200):  # far beyond the queue: produce meets BufferError and falls back to Quix's retry
        produce(topic=topic, value=str(number).encode(), key=b"BTC-USD@test", headers=None, timestamp=1_000 + number)
    if exactly_once:
        producer.commit_transaction([], None)
        wait_settled(bootstrap, topic)  # the commit marker is on the partition
    else:
        producer.flush(30)
    records = read_topic(bootstrap, topic)
    assert [int(r.value) for r in records] == list(range(200))
    assert {r.key for r in records} == {b"BTC-USD@test"} and [r.timestamp_ms for r in records][:2] == [1_000, 1_001]


def test_an_at_least_once_output_the_broker_refuses_is_raised_by_the_flush_and_by_the_next_record(
        stack, namespaces) -> None:
    bootstrap = stack.kafka_bootstrap
    small, fine = _small_and_fine(bootstrap, namespaces)
    producer = InternalProducer(bootstrap)
    produce = output_producer(producer, exactly_once=False)
    assert produce == producer.produce
    produce(topic=small, value=b"x" * 10_000, key=b"k", headers=None, timestamp=1_000)  # the broker refuses it
    with pytest.raises(KafkaProducerDeliveryError) as failed:  # what the checkpoint does before committing offsets
        producer.flush(30)
    assert failed.value.error.code() == KafkaError.MSG_SIZE_TOO_LARGE, failed.value
    produce(topic=small, value=b"y" * 10_000, key=b"k", headers=None, timestamp=1_000)

    def latched() -> bool:  # the delivery report arrives: Quix's callback latches it
        producer.poll(0.2)
        return producer._error is not None

    wait_until(latched, timeout_s=60, message="the refused record's delivery report")
    with pytest.raises(KafkaProducerDeliveryError):  # the next record raises it and is not sent
        produce(topic=fine, value=b"after the loss", key=b"k", headers=None, timestamp=1_000)
    producer.flush(30)
    assert read_topic(bootstrap, fine) == []
