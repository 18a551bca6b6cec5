"""A first start waits for as many brokers as the replication factor, and retries topic creation.

On a first start of a cluster the brokers come up one by one: a service that creates its topics as
soon as one broker answers gets INVALID_REPLICATION_FACTOR. The local stack has one broker, so a
replication factor of 2 is a cluster whose second broker has not joined (yet).
"""

from __future__ import annotations

import time

import pytest

from processors.runtime.kafka_admin import KafkaUnavailableError, ensure_topics, wait_for_kafka
from processors.runtime.settings import KafkaSettings
from tests.support.kafka_tools import wait_until
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.integration


def test_wait_for_kafka_waits_for_the_replication_factor(stack, namespace) -> None:
    assert wait_for_kafka(KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, replication_factor=1), 120) == 1
    short = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, replication_factor=2, topic_prefix=namespace)
    began = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match="has 1 broker\\(s\\) up, fewer than the 2"):
        wait_for_kafka(short, timeout_s=2)
    assert time.monotonic() - began >= 2  # it waited, instead of returning on the first answer


def test_topic_creation_is_retried_then_reported_as_kafka_not_ready(stack, namespace, caplog) -> None:
    short = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, replication_factor=2, topic_prefix=namespace)
    with pytest.raises(KafkaUnavailableError, match="INVALID_REPLICATION_FACTOR"):
        ensure_topics(short, [short.topics().ticks], timeout_s=3)
    assert any("retrying" in record.getMessage() for record in caplog.records)
    # The services' start-up loops retry KafkaUnavailableError; a real error still raises at once.
    ok = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, replication_factor=1, topic_prefix=namespace)
    assert ensure_topics(ok, [ok.topics().ticks], timeout_s=120) == [ok.topics().ticks.name]


@pytest.mark.parametrize("command", ["process", "materialize"])
def test_services_wait_instead_of_crashing_while_brokers_are_missing(stack, namespace, tmp_path, command) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "STOCKSTREAM_TOPIC_PREFIX": namespace,
           "KAFKA_REPLICATION_FACTOR": "2", "REDIS_URL": stack.redis_url, "REDIS_KEY_PREFIX": namespace,
           "METRICS_PORT": "0", "PROCESS_STATE_DIR": str(tmp_path / "state")}
    service = ServiceProcess([command], env)
    try:
        wait_until(lambda: "retrying" in service.output or not service.alive(), timeout_s=180,
                   message=f"{command} to retry its start-up")
        assert service.alive(), service.output[-3000:]
        assert "fewer than the 2 that KAFKA_REPLICATION_FACTOR needs" in service.output
    finally:
        assert service.terminate(60) == 0, service.output[-3000:]
