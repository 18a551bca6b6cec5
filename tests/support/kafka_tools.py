"""Small real-Kafka helpers for tests: produce records, read a topic to its end, wait for counts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from processors.runtime.watermarks import watermarks


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | str | None, bytes | str]]) -> int:
    """Produce (key, value) pairs idempotently and wait for every delivery; returns the count."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    errors: list[str] = []
    count = 0

    def on_delivery(error, _message):  # type: ignore[no-untyped-def]
        if error is not None:
            errors.append(str(error))

    for key, value in records:
        producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0 and not errors, f"produce failed: {errors[:3]} ({remaining} undelivered)"
    return count


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """High watermark per partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}",
                         "isolation.level": "read_committed"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        return {p: watermarks(consumer, TopicPartition(topic, p), 10)[1] for p in partitions}
    finally:
        consumer.close()


def wait_settled(bootstrap: str, topic: str, timeout_s: float = 120.0) -> None:
    """Wait until no transaction is pending on ``topic`` (every partition's last stable offset is its high
    watermark).

    ``commit_transaction`` and ``abort_transaction`` return once the transaction coordinator has logged the
    decision; the markers reach the partitions after that. Until they do, a read_committed reader's end is the
    old last stable offset, so a test that reads right after its own commit can find the records not there yet
    (CI of stop 37 read an empty topic after a commit; on this 2-core machine the last stable offset read right
    after a commit was short 73 and 97 times of 300 with the machine idle, 120 of 300 under CPU load).
    """
    stable = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}",
                       "isolation.level": "read_committed"})
    visible = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}",
                        "isolation.level": "read_uncommitted"})
    try:
        partitions = [TopicPartition(topic, p) for p in stable.list_topics(topic, timeout=10).topics[topic].partitions]

        def settled() -> bool:
            return all(watermarks(stable, p, 10)[1] == watermarks(visible, p, 10)[1] for p in partitions)

        wait_until(settled, timeout_s=timeout_s, interval_s=0.05, message=f"the transaction markers of {topic}")
    finally:
        stable.close()
        visible.close()


def read_topic(bootstrap: str, topic: str, *, read_committed: bool = True, idle_s: float | None = None,
               timeout_s: float = 60.0) -> list[Record]:
    """Every record of ``topic`` from the beginning up to the end offsets seen at call time.

    With ``read_committed`` (the default) aborted transactional records are skipped,
    which is what a downstream consumer of an exactly-once processor sees.

    By default the read goes on until the consumer's position reaches every partition's end offset
    (it moves past transaction markers and aborted records) and fails the test after ``timeout_s``.
    ``idle_s``: stop early instead once no record came for that long, for a caller that only samples
    a topic. A loaded broker can take longer than that to serve a partition's first fetch, and the
    read then returns fewer records: a whole-topic comparison must never ask for it (CI of stop 28
    read a run's signals topic 42 records short, most likely that way: the default was then 2 s).
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        "auto.offset.reset": "earliest",
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        assert topic in metadata.topics and metadata.topics[topic].error is None, f"no topic {topic}"
        partitions = list(metadata.topics[topic].partitions)
        ends = {p: watermarks(consumer, TopicPartition(topic, p), 10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Record] = []
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout_s
        last_progress = time.monotonic()
        while len(done) < len(partitions) and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error():
                    continue
                last_progress = time.monotonic()
                records.append(Record(message.topic(), message.partition(), message.offset(), message.key(),
                                      message.value(), message.timestamp()[1]))
                if message.offset() + 1 >= ends[message.partition()]:
                    done.add(message.partition())
            # In read_committed mode the last offsets may be transaction markers: the position moves past them.
            for p in partitions:
                if p not in done:
                    position = consumer.position([TopicPartition(topic, p)])[0].offset
                    if position >= ends[p]:
                        done.add(p)
            if idle_s is not None and time.monotonic() - last_progress > idle_s and len(done) < len(partitions):
                break
        if idle_s is None:
            assert len(done) == len(partitions), f"{topic} not read to its end offsets {ends} within {timeout_s:.0f}s"
        return records
    finally:
        consumer.close()


# The group coordinator is moving or loading (a broker just started, the coordinator changed): ask again later.
COORDINATOR_NOT_READY = frozenset({KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                                   KafkaError.COORDINATOR_NOT_AVAILABLE})


def committed_or_none(consumer: Consumer, partitions: list[TopicPartition],
                      timeout_s: float = 10) -> list[TopicPartition] | None:
    """``consumer.committed(partitions)``, or None while the group's coordinator is not ready (a wait's "not yet")."""
    try:
        return consumer.committed(partitions, timeout=timeout_s)
    except KafkaException as error:
        if error.args[0].code() in COORDINATOR_NOT_READY:
            return None
        raise


def wait_until(condition: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.2,
               message: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail the test with ``message`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {message}")


def delete_topics(bootstrap: str, prefix: str) -> None:
    """Remove a test namespace's topics (best effort)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            try:
                future.result()
            except Exception:  # noqa: BLE001,S110 - cleanup only
                pass


def topic_configs(bootstrap: str, prefix: str, keys: Iterable[str]) -> dict[str, dict[str, str]]:
    """The broker's value of each config in ``keys`` for every topic whose name starts with ``prefix``."""
    from confluent_kafka.admin import ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = sorted(name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix))
    wanted = list(keys)
    found: dict[str, dict[str, str]] = {}
    for resource, future in admin.describe_configs([ConfigResource("topic", name) for name in names]).items():
        entries = future.result(timeout=30)
        found[resource.name] = {key: entries[key].value for key in wanted}
    return found


def forged_write_error(environment: dict[str, str], topic: str) -> KafkaError | None:
    """The delivery error of one forged record produced with a service's Kafka variables (None = written).

    ``environment`` holds ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``,
    ``KAFKA_SASL_PASSWORD_FILE`` and optionally ``KAFKA_SECURITY_PROTOCOL`` (default SASL_PLAINTEXT).
    """
    producer = Producer({
        "bootstrap.servers": environment["KAFKA_BOOTSTRAP_SERVERS"],
        "security.protocol": environment.get("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
        "sasl.mechanism": environment["KAFKA_SASL_MECHANISM"], "sasl.username": environment["KAFKA_SASL_USERNAME"],
        "sasl.password": Path(environment["KAFKA_SASL_PASSWORD_FILE"]).read_text().strip(),
        "message.timeout.ms": 15_000, "log_level": 0})
    delivered: list[KafkaError | None] = []
    producer.produce(topic, b"forged", key=b"FORGED-USD@test", on_delivery=lambda error, _m: delivered.append(error))
    producer.flush(30)
    assert len(delivered) == 1
    return delivered[0]
