"""Fixtures for notifier service tests: a namespaced signals topic on the real broker and the notifier's env."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Signal, encode
from tests.support.kafka_tools import end_offsets, produce
from tests.support.ports import free_port


@dataclass
class NotifyBench:
    """Where one test's notifier reads and writes, and how to drive it."""

    bootstrap: str
    namespace: str
    signals_topic: str
    dlq_topic: str
    env: dict[str, str]
    metrics_port: int

    def produce(self, records: list[Signal | tuple[str, bytes]]) -> None:
        pairs = [(r.symbol, encode(r)) if isinstance(r, Signal) else r for r in records]
        produce(self.bootstrap, self.signals_topic, pairs)

    def lane_group(self, channel: str) -> str:
        return f"{self.env['NOTIFY_CONSUMER_GROUP']}.{channel}"

    def committed(self, channel: str) -> dict[int, int]:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        request = ConsumerGroupTopicPartitions(self.lane_group(channel))
        result = list(admin.list_consumer_group_offsets([request]).values())[0].result(timeout=10)
        return {tp.partition: tp.offset for tp in result.topic_partitions if tp.topic == self.signals_topic}

    def caught_up(self, channel: str) -> bool:
        """The lane committed every record of the signals topic (transaction markers included)."""
        ends = end_offsets(self.bootstrap, self.signals_topic)
        committed = self.committed(channel)
        # A committed offset may stop one short of the end: the last offset can be a transaction marker.
        return all(end == 0 or committed.get(p, -1) >= end - 1 for p, end in ends.items())

    def metric(self, name: str, **labels: str) -> float:
        """A sample from the notifier's /metrics (0 when absent or while the endpoint is not up yet)."""
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()  # noqa: S310
        except OSError:
            return 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == f"stockstream_notify_{name}" and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0


@pytest.fixture
def bench(stack, namespace: str, tmp_path: Path) -> Iterator[NotifyBench]:  # type: ignore[no-untyped-def]
    settings = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace)
    topics = settings.topics()
    ensure_topics(settings, [topics.signals, topics.notifications_dlq])
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "STOCKSTREAM_TOPIC_PREFIX": namespace,
        "NOTIFY_CONSUMER_GROUP": f"{namespace}notify",
        "NOTIFY_STATE_DIR": str(tmp_path / "state"),
        "NOTIFY_SUBSCRIPTIONS": "",
        "NOTIFY_SHUTDOWN_GRACE_S": "10",
        "METRICS_PORT": str(port),
        "REDIS_URL": stack.redis_url,
        "REDIS_KEY_PREFIX": namespace,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    yield NotifyBench(stack.kafka_bootstrap, namespace, topics.signals.name, topics.notifications_dlq.name, env, port)
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    mine = [name for name in admin.list_topics(timeout=10).topics if namespace in name]  # incl. changelogs
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            try:
                future.result()
            except Exception:  # noqa: BLE001,S110 - best-effort cleanup
                pass
