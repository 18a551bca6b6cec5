"""The local stack really answers: Kafka metadata and topic creation, Redis, Prometheus."""

from __future__ import annotations

import urllib.request

import pytest
import redis

from processors.runtime.kafka_admin import admin_client, ensure_topics, wait_for_kafka
from processors.runtime.settings import KafkaSettings

pytestmark = pytest.mark.integration


def test_kafka_answers_and_topics_are_created_with_their_declared_config(stack, namespace):
    settings = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace)
    assert wait_for_kafka(settings, timeout_s=10) == 1
    specs = settings.topics().all()
    created = ensure_topics(settings, specs)
    assert sorted(created) == sorted(spec.name for spec in specs)
    assert ensure_topics(settings, specs) == []  # idempotent

    client = admin_client(settings)
    from confluent_kafka.admin import ConfigResource

    ticks = settings.topics().ticks
    resource = ConfigResource(ConfigResource.Type.TOPIC, ticks.name)
    config = client.describe_configs([resource])[resource].result()
    assert config["retention.ms"].value == "-1"
    assert config["cleanup.policy"].value == "delete"
    metadata = client.list_topics(ticks.name, timeout=5)
    assert len(metadata.topics[ticks.name].partitions) == settings.partitions


def test_redis_and_prometheus_answer(stack):
    assert redis.Redis.from_url(stack.redis_url).ping()
    with urllib.request.urlopen(f"{stack.prometheus_url}/-/ready", timeout=5) as answer:
        assert answer.status == 200


def test_status_reports_every_service_up(stack):
    statuses = {entry.name: entry for entry in stack.stack.status()}
    assert set(statuses) == {"kafka", "redis", "redis-exporter", "prometheus"}
    assert all(entry.answering and entry.pid for entry in statuses.values())


def test_private_stack_restarts_kafka_and_keeps_data(private_stack, namespace):
    settings = KafkaSettings(bootstrap_servers=private_stack.kafka_bootstrap, topic_prefix=namespace)
    ensure_topics(settings, [settings.topics().ticks])
    from tests.support.kafka_tools import produce, read_topic

    produce(private_stack.kafka_bootstrap, settings.topics().ticks.name, [(b"K", b"v1")])
    assert private_stack.stack.down(["kafka"]) == ["kafka"]
    assert not any(e.answering for e in private_stack.stack.status() if e.name == "kafka")
    private_stack.stack.up(["kafka"])
    values = [r.value for r in read_topic(private_stack.kafka_bootstrap, settings.topics().ticks.name)]
    assert values == [b"v1"]
