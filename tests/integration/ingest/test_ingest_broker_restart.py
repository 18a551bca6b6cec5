"""A broker restart in the middle of ingestion (private stack): every tick arrives exactly once."""

from __future__ import annotations

import json

import pytest
from ingest_support import sample, scrape

from tests.support.kafka_tools import read_topic, wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.integration

COUNT = 6_000


def test_broker_restart_loses_and_duplicates_nothing(private_stack, namespace):
    port = free_port()
    bootstrap = private_stack.kafka_bootstrap
    topic = f"{namespace}ticks"
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STOCKSTREAM_TOPIC_PREFIX": namespace, "METRICS_PORT": str(port),
           "INGEST_FLUSH_TIMEOUT_SECONDS": "120"}
    service = ServiceProcess(["ingest", "--source", "simulator", "--seed", "3", "--start-time", "2024-01-01T00:00:00",
                              "--rate", "300", "--count", str(COUNT)], env)
    try:
        def received() -> float:
            return sample(scrape(port), "stockstream_ingest_records_received_total", source="simulator")

        wait_until(lambda: sample(scrape(port), "stockstream_ingest_records_published_total", source="simulator")
                   >= 600, timeout_s=60, message="ticks acknowledged before the outage")
        assert private_stack.stack.down(["kafka"]) == ["kafka"]
        during = received()
        wait_until(lambda: received() >= during + 600, timeout_s=120,
                   message="ingestion to go on (queued locally) while the broker is down")
        assert service.alive()
        private_stack.stack.up(["kafka"])
        assert service.wait(150) == 0, service.output
    finally:
        service.terminate()
    output = service.log_path.read_text()
    assert "stopped cleanly" in output and f"delivered={COUNT}" in output, output[-3000:]
    ids = [json.loads(r.value)["source_id"] for r in read_topic(bootstrap, topic, timeout_s=120)]
    assert len(ids) == COUNT
    assert sorted(ids) == sorted(f"sim-s3-{i}" for i in range(COUNT))
