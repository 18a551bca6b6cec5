"""Redis outage: the materializer keeps its place, retries, and the views catch up when Redis returns.

Runs ``stockstream materialize`` as a real subprocess against a private stack (its own Kafka
and Redis), because the test stops Redis.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
import redis

from processors.materialize.settings import MaterializeSettings
from processors.runtime.kafka_admin import ensure_topics
from tests.integration.views.streams import Stream, make_stream, produce_stream
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port
from tests.support.processes import running

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def scrape(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def split(stream: Stream, at: int) -> tuple[Stream, Stream]:
    cut = stream.ticks[at].ts_event
    first, second = Stream(), Stream()
    for name in ("ticks", "indicators", "candles", "signals", "daily"):
        for event in getattr(stream, name):
            (first if event.ts_event < cut else second).__dict__[name].append(event)
    return first, second


def test_views_catch_up_after_redis_comes_back(private_stack, namespace):
    settings = MaterializeSettings(bootstrap_servers=private_stack.kafka_bootstrap, topic_prefix=namespace,
                                   redis_url=private_stack.redis_url, redis_key_prefix=namespace)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    before, during = split(make_stream(count=240, seed=9), 120)
    client = redis.Redis.from_url(private_stack.redis_url, socket_timeout=2)
    history = f"{namespace}ind:BTC-USD@test:tick"
    metrics_port = free_port()
    env = {"KAFKA_BOOTSTRAP_SERVERS": private_stack.kafka_bootstrap, "REDIS_URL": private_stack.redis_url,
           "STOCKSTREAM_TOPIC_PREFIX": namespace, "REDIS_KEY_PREFIX": namespace,
           "METRICS_PORT": str(metrics_port), "MATERIALIZE_RETRY_MAX_SECONDS": "1",
           "REDIS_SOCKET_TIMEOUT_SECONDS": "1"}
    with running(["materialize"], env) as service:
        produce_stream(private_stack.kafka_bootstrap, registry, before)
        wait_until(lambda: client.zcard(history) == 120, timeout_s=60,
                   message=f"first half materialized; log:\n{service.output[-2000:]}")

        assert private_stack.stack.down(["redis"]) == ["redis"]
        produce_stream(private_stack.kafka_bootstrap, registry, during)
        # It notices and retries (without crashing) while Redis is away.
        wait_until(lambda: scrape(metrics_port, "stockstream_materialize_redis_errors_total") >= 2, timeout_s=60,
                   message="the materializer to report failed writes")
        assert scrape(metrics_port, "stockstream_materialize_redis_up") == 0
        assert service.alive()

        private_stack.stack.up(["redis"])
        wait_until(lambda: client.zcard(history) == 240, timeout_s=60,
                   message=f"views to catch up; log:\n{service.output[-2000:]}")
        assert service.alive()
        last = during.ticks[-1]
        assert json.loads(client.hget(f"{namespace}latest:BTC-USD@test", "tick"))["source_id"] == last.source_id
        assert client.zcard(f"{namespace}signals:BTC-USD@test") == len(before.signals) + len(during.signals)
        assert "retrying" in service.output
    client.close()
