"""The client settings ``stockstream process`` hands to Quix (processors/stream/topology.py), on the shared stack.

The application is built in-process (topics looked up on the real broker, nothing run): the
commit interval, the consumer poll timeout that bounds how late a due checkpoint is committed
when the input pauses, and the producer's batching reach Quix's configuration per guarantee.
"""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import CollectorRegistry

from processors.core.strategy import DEFAULT_STRATEGY
from processors.runtime.kafka_admin import ensure_topics
from processors.stream.metrics import ProcessMetrics
from processors.stream.settings import ProcessSettings
from processors.stream.topology import build_processor


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
