"""Helpers for the stream processor tests: run ``stockstream process`` as a real subprocess, feed
``ticks``, wait for the consumer group to drain it, read the output topics back in a comparable form.

Shared by tests/integration/stream and tests/e2e/stream (imported as ``stream_support`` there too).
"""

from __future__ import annotations

import json
import math
import random
import time
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from processors.runtime.kafka_admin import wait_until_visible
from schemas.events import Tick, encode
from tests.support.kafka_tools import committed_or_none, delete_topics, end_offsets, read_topic, wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

OUTPUTS = ("indicators", "signals", "candles.1m", "aggregates.daily", "ticks.dlq")
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
RECORD_MS = int(time.time()) // 3600 * 3_600_000
"""The record timestamp :func:`produce_many` gives ticks by default: the start of the hour this process began.

Recent on purpose. The processor's outputs carry their input's record timestamp, and Kafka's time
retention counts from record timestamps: ``indicators`` (7 days) and ``ticks.dlq`` (30 days) written
for ticks stamped months ago are deleted at the broker's next retention check (30 s after it starts,
then every 5 minutes), possibly between a test's writing and reading them. Fixed for the process, so
two namespaces fed the same list in one test hold byte-identical logs.
"""


class Processor:
    """One ``stockstream process`` subprocess with its own metrics port (and state folder)."""

    def __init__(self, bootstrap: str, namespace: str, group: str, state_dir: Path, **env: str) -> None:
        self.metrics_port = free_port()
        self.state_dir = state_dir
        self.group = group
        self.env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STOCKSTREAM_TOPIC_PREFIX": namespace,
            "PROCESS_CONSUMER_GROUP": group, "PROCESS_STATE_DIR": str(state_dir),
            "METRICS_PORT": str(self.metrics_port), "PROCESS_STATS_INTERVAL_MS": "500", "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1", **env,
        }
        self.service = ServiceProcess(["process"], self.env)

    def restart(self) -> None:
        """A new process with the same settings (after :meth:`kill9` or :meth:`terminate`)."""
        self.service = ServiceProcess(["process"], self.env)

    @property
    def output(self) -> str:
        return self.service.output

    def alive(self) -> bool:
        return self.service.alive()

    def kill9(self) -> None:
        self.service.kill9()

    def terminate(self, timeout_s: float = 60) -> int:
        return self.service.terminate(timeout_s)

    def wait_running(self, timeout_s: float = 120) -> None:
        wait_until(lambda: "now processing incoming messages" in self.output or not self.alive(),
                   timeout_s=timeout_s, message="the processor to start")
        assert self.alive(), self.output[-3000:]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of its ``/metrics`` page, by (sample name, sorted labels)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def metric(self, name: str, **labels: str) -> float:
        try:
            return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)
        except (urllib.error.URLError, ConnectionError):
            return 0.0


def make_ticks(symbols: list[str], count: int, *, seed: int = 1, step_ms: int = 250,
               venue: str = "test") -> list[tuple[bytes, bytes]]:
    """``count`` valid ticks (key = instrument, value) round-robin over ``symbols`` of ``venue``, event time
    ``step_ms`` apart per symbol.

    ``ts_init`` is fixed by the data (not the wall clock), so two namespaces fed the same list hold
    byte-identical logs.
    """
    rng = random.Random(seed)
    prices = {symbol: 100.0 * (index + 1) for index, symbol in enumerate(symbols)}
    records = []
    for index in range(count):
        symbol = symbols[index % len(symbols)]
        prices[symbol] *= math.exp(rng.gauss(0.0, 2e-3))
        moment = T0 + timedelta(milliseconds=step_ms * (index // len(symbols)) + index % len(symbols))
        tick = Tick(symbol=symbol, venue=venue, price=round(prices[symbol], 4), volume=round(rng.lognormvariate(0, 1), 6),
                    ts_event=moment, ts_init=moment, source="test", source_id=str(index))
        records.append((f"{symbol}@{venue}".encode(), encode(tick)))
    return records


def create_topic(bootstrap: str, name: str, partitions: int = 1, **config: str) -> str:
    """Create topic ``name`` with topic ``config`` overrides (e.g. a small ``max.message.bytes``); returns its name.

    Returns once the broker's metadata shows it led, as ``ensure_topics`` does: the controller acknowledges the
    creation first, and a reader asking for the topic in between is told it does not exist (a freshly started
    broker, 2026-12-07: ``read_topic`` right after the creation failed with "no topic").
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept until the result: a freed client cancels it
    admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(30)
    wait_until_visible(admin, {name: partitions}, 60)
    return name


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets of ``topic`` (0 where none); asked again while its coordinator is not ready."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    found: list[TopicPartition] = []

    def answered() -> bool:
        found[:] = committed_or_none(consumer, [TopicPartition(topic, p) for p in range(partitions)]) or []
        return bool(found)

    try:
        wait_until(answered, timeout_s=120, interval_s=0.5, message=f"group {group}'s coordinator")
        return {tp.partition: max(tp.offset, 0) for tp in found}
    finally:
        consumer.close()


def drained(bootstrap: str, group: str, topic: str) -> bool:
    """Whether ``group`` has committed every record of ``topic``."""
    ends = end_offsets(bootstrap, topic)
    return committed_offsets(bootstrap, group, topic, len(ends)) == ends


def wait_drained(bootstrap: str, group: str, topic: str, *, timeout_s: float = 180,
                 processors: list[Processor] | None = None) -> None:
    def done() -> bool:
        for processor in processors or []:
            assert processor.alive(), processor.output[-3000:]
        return drained(bootstrap, group, topic)

    wait_until(done, timeout_s=timeout_s, interval_s=0.5, message=f"group {group} to drain {topic}")


def normalize(value: bytes, namespace: str) -> dict:
    """An output record without the namespace (so two namespaces fed the same log compare equal)."""
    document = json.loads(value)
    for field in ("lineage", "origin"):
        if isinstance(document.get(field), dict):
            document[field]["topic"] = document[field]["topic"].removeprefix(namespace)
    return document


def outputs_by_key(bootstrap: str, namespace: str, topics: tuple[str, ...] = OUTPUTS) -> dict[str, dict[bytes, list]]:
    """Each output topic as {record key: [normalized values in log order]} (read_committed)."""
    result: dict[str, dict[bytes, list]] = {}
    for base in topics:
        by_key: dict[bytes, list] = defaultdict(list)
        for record in sorted(read_topic(bootstrap, f"{namespace}{base}"), key=lambda r: (r.partition, r.offset)):
            by_key[record.key or b""].append(normalize(record.value or b"", namespace))
        result[base] = dict(by_key)
    return result


def cleanup(bootstrap: str, namespace: str) -> None:
    delete_topics(bootstrap, namespace)
    delete_topics(bootstrap, f"changelog__{namespace}")


def elapsed(began: float) -> str:
    return f"{time.monotonic() - began:.1f}s"


def group_assignment(bootstrap: str, group: str, topic: str) -> list[set[int]]:
    """The partitions of ``topic`` each member of ``group`` holds (empty list: no members)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result()
    return [{tp.partition for tp in member.assignment.topic_partitions if tp.topic == topic}
            for member in description.members]


def symbols_on_distinct_partitions(count: int, partitions: int, venue: str = "test") -> list[str]:
    """``count`` symbols whose instruments (``SYMBOL@venue``, the record keys of :func:`make_ticks`) the default
    (CRC32) partitioner puts on ``count`` different partitions."""
    import zlib

    chosen: dict[int, str] = {}
    for index in range(1000):
        symbol = f"S{index:03d}-USD"
        chosen.setdefault(zlib.crc32(f"{symbol}@{venue}".encode()) % partitions, symbol)
        if len(chosen) == count:
            return [chosen[p] for p in sorted(chosen)]
    raise AssertionError("no such symbols")


def produce_many(bootstrap: str, topic: str, records: list, timestamp_ms: int = RECORD_MS) -> None:
    """Produce (key, value) records idempotently, every one with the same record timestamp.

    A fixed timestamp makes two namespaces fed the same list hold byte-identical logs (a poison
    record's dead letter takes its ``ts_init`` from the record timestamp). The default
    (:data:`RECORD_MS`) is long after ``T0``, as if ingested after the ticks happened: the processor
    refuses event times more than 15 minutes beyond their record's timestamp (``timestamp_in_future``).
    """
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20,
                         "queue.buffering.max.messages": 1_000_000})
    errors: list[str] = []

    def on_delivery(error, _message) -> None:  # type: ignore[no-untyped-def]
        if error is not None:
            errors.append(str(error))

    for key, value in records:
        producer.produce(topic, value=value, key=key, timestamp=timestamp_ms, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(120) == 0 and not errors, errors[:3]
