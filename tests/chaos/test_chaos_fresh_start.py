"""Topics are usable the moment ``ensure_topics`` returns; a materializer's first assignment is complete.

Found by the chaos run: every service starts together in a fresh namespace, the materializer creates
its input topics and subscribes; Kafka acknowledged the creation before the broker served the new
metadata, so the consumer was assigned only the topics it could see (4 of its 20 partitions) and
kept that until the next rebalance — with static membership, even across restarts. On a freshly
started broker the gap is reliable: a consumer's metadata right after ``create_topics`` lacked the
new topics 10 times out of 10. ``ensure_topics`` now returns only once the broker shows them.
"""

from __future__ import annotations

import re
import uuid

import pytest
from confluent_kafka import Consumer

from processors.materialize.settings import MaterializeSettings
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

# Three materializer starts, each waited for up to 120 s and stopped within 30 s, plus the topic checks.
pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(900)]
ASSIGNED = re.compile(r"assigned (\d+) partitions")


def unusable(bootstrap: str, names: list[str]) -> list[str]:
    """Topics a consumer's metadata does not show with every partition led."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex[:6]}"})
    try:
        topics = consumer.list_topics(timeout=10).topics
    finally:
        consumer.close()
    return [name for name in names if name not in topics or topics[name].error is not None
            or any(partition.leader < 0 for partition in topics[name].partitions.values())]


def test_new_topics_are_visible_and_a_fresh_materializer_gets_every_partition(private_stack, tmp_path):
    bootstrap = private_stack.kafka_bootstrap
    for attempt in range(5):
        settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"fresh{attempt}.")
        specs = settings.topics().all()
        assert ensure_topics(settings, specs)
        assert unusable(bootstrap, [spec.name for spec in specs]) == [], f"attempt {attempt}"

    first_assignments, expected = [], []
    for attempt in range(3):
        namespace = f"mat{attempt}."
        service = ServiceProcess(["materialize"], {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STOCKSTREAM_TOPIC_PREFIX": namespace,
            "STOCKSTREAM_PARTITIONS": "4", "REDIS_URL": private_stack.redis_url, "REDIS_KEY_PREFIX": namespace,
            "METRICS_PORT": str(free_port()), "PYTHONUNBUFFERED": "1",
        })
        inputs = MaterializeSettings(bootstrap_servers=bootstrap, topic_prefix=namespace).input_topics().names
        expected.append(len(inputs) * 4)
        try:
            wait_until(lambda s=service: ASSIGNED.search(s.output) is not None or not s.alive(), timeout_s=120,
                       message="the materializer's first assignment")
            match = ASSIGNED.search(service.output)
            assert match is not None, service.output[-2000:]
            first_assignments.append(int(match.group(1)))
        finally:
            service.terminate()
    # every input topic (ticks, indicators, signals, signals.outcomes, candles.1m, aggregates.daily) × 4 partitions
    assert first_assignments == expected, f"assigned {first_assignments}, inputs × 4 = {expected}"
    assert min(expected) >= 20
