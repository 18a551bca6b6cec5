"""The local stack really answers: Kafka metadata and topic creation, Redis, Prometheus."""

from __future__ import annotations

import json
import urllib.request

import pytest
import redis

from processors.runtime.kafka_admin import admin_client, ensure_topics, wait_for_kafka
from processors.runtime.settings import KafkaSettings
from stockstream.stack.manager import Stack
from stockstream.stack.services import StackSettings
from tests.conftest import TEST_SERVICES
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port

pytestmark = pytest.mark.integration


def test_kafka_answers_and_topics_are_created_with_their_declared_config(stack, namespace):
    settings = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace)
    assert wait_for_kafka(settings, timeout_s=120) == 1
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
    assert set(statuses) == {"kafka", "redis", "redis-exporter", "prometheus", "alertmanager"}
    # The shared stack runs what the tests use; Alertmanager's start, status and stop are proven on a
    # stack of their own below.
    assert all(statuses[name].answering and statuses[name].pid for name in TEST_SERVICES)


def test_stack_up_runs_alertmanager_and_prometheus_sends_to_it(tmp_path):
    """`stack up` on free ports: Alertmanager answers, status lists it up, Prometheus knows it, down stops it."""
    settings = StackSettings(state_dir=tmp_path / "stack", prometheus_port=free_port(),
                             alertmanager_port=free_port(), kafka_jmx_port=free_port(),
                             redis_exporter_port=free_port())  # never scrape the shared stack's exporters
    local = Stack(settings)
    try:
        started = local.up(["alertmanager", "prometheus"])
        assert set(started) == {"alertmanager", "prometheus"}
        statuses = {entry.name: entry for entry in local.status()}
        assert statuses["alertmanager"].answering and statuses["alertmanager"].port == settings.alertmanager_port
        with urllib.request.urlopen(f"{settings.alertmanager_url}/api/v2/status", timeout=5) as answer:
            status = json.loads(answer.read())
        assert "StockstreamKafkaUnreachable" in status["config"]["original"]  # the shipped routing file

        def alertmanager_known() -> bool:
            with urllib.request.urlopen(f"{settings.prometheus_url}/api/v1/alertmanagers", timeout=5) as answer:
                active = json.loads(answer.read())["data"]["activeAlertmanagers"]
            return [entry["url"] for entry in active] == [f"{settings.alertmanager_url}/api/v2/alerts"]

        wait_until(alertmanager_known, timeout_s=60, message="Prometheus to discover the stack's Alertmanager")
    finally:
        stopped = local.down()
    assert set(stopped) == {"alertmanager", "prometheus"}
    assert not any(entry.answering for entry in local.status())


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
