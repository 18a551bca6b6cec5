"""``stockstream views rebuild``: rebuilt views equal the live ones key for key; swap; start by time or offset."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from processors.materialize.rebuild import Rebuilder, RebuildError, StartAt, snapshot, view_keys_under
from processors.materialize.settings import MaterializeSettings
from processors.runtime.kafka_admin import ensure_topics
from tests.integration.views.conftest import drop_prefix
from tests.integration.views.streams import make_stream, produce_stream
from tests.integration.views.test_views_materializer import caught_up, running
from tests.support.kafka_tools import wait_until
from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.integration


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([STOCKSTREAM, *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)


def test_rebuilt_views_equal_the_live_ones_and_swap_repairs_the_live_prefix(
        stack, namespace, views_prefix, redis_client, topics_cleanup):
    settings = MaterializeSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace,
                                   redis_url=stack.redis_url, redis_key_prefix=namespace, metrics_port=0,
                                   partitions=2, batch_timeout_s=0.05)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    stream = make_stream(count=180, seed=21)
    stream.extend(make_stream("ETH-USD", count=90, price=3000.0, seed=22))
    produce_stream(stack.kafka_bootstrap, registry, stream)
    with running(settings):
        wait_until(lambda: redis_client.zcard(f"{namespace}ind:BTC-USD@test:tick") == 180
                   and redis_client.zcard(f"{namespace}ind:ETH-USD@test:tick") == 90
                   and redis_client.zcard(f"{namespace}signals:BTC-USD@test")
                   == sum(s.symbol == "BTC-USD" for s in stream.signals)
                   and redis_client.zcard(f"{namespace}signals:ETH-USD@test")
                   == sum(s.symbol == "ETH-USD" for s in stream.signals)
                   and redis_client.hlen(f"{namespace}daily:ETH-USD@test") == 1
                   # every input committed, so written: a view not waited for above may come later under load
                   and all(caught_up(settings, name) for name in settings.input_topics().names),
                   timeout_s=120, message="live views")
    live = snapshot(redis_client, namespace)
    assert len(live) > 15

    side = f"{namespace}rb."
    env = {"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "REDIS_URL": stack.redis_url,
           "STOCKSTREAM_TOPIC_PREFIX": namespace, "REDIS_KEY_PREFIX": namespace, "STOCKSTREAM_PARTITIONS": "2"}
    try:
        done = cli(env, "views", "rebuild", "--into", side)
        assert done.returncode == 0, done.stderr
        assert snapshot(redis_client, side) == live  # key for key, value for value
        assert cli(env, "views", "compare", side).returncode == 0

        # Damage the live views; a plain rebuild refuses to overwrite them, --swap repairs them atomically.
        redis_client.delete(f"{namespace}candles:BTC-USD@test:1m")
        redis_client.hset(f"{namespace}latest:BTC-USD@test", "tick", "garbage")
        redis_client.sadd(f"{namespace}instruments", "ZZZ@x")
        compared = cli(env, "views", "compare", side)
        assert compared.returncode == 1 and "latest:BTC-USD@test" in compared.stderr
        refused = cli(env, "views", "rebuild")
        assert refused.returncode == 1 and "--swap" in refused.stderr
        swapped = cli(env, "views", "rebuild", "--swap")
        assert swapped.returncode == 0, swapped.stderr
        assert snapshot(redis_client, namespace) == live
        staging = re.search(r"into prefix '(rebuild\.[0-9a-f]+:)'", swapped.stderr)
        assert staging is not None, swapped.stderr
        assert view_keys_under(redis_client, staging.group(1)) == []  # everything was moved
    finally:
        drop_prefix(redis_client, side)


def test_rebuild_from_a_time_or_an_offset_and_into_an_empty_prefix(stack, namespace, views_prefix, redis_client,
                                                                  topics_cleanup):
    settings = MaterializeSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace,
                                   redis_url=stack.redis_url, redis_key_prefix=namespace, metrics_port=0,
                                   partitions=1)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    first = make_stream(count=60, seed=31)
    produce_stream(stack.kafka_bootstrap, registry, first)
    # --from-time works on record (produce) time: every record of the first part is older than this.
    boundary_ms = int(time.time() * 1000) + 1
    wait_until(lambda: time.time() * 1000 > boundary_ms + 1, timeout_s=120, message="the clock to pass the boundary")
    second = make_stream(count=40, seed=32, start=first.ticks[-1].ts_event, first_offset=60)
    produce_stream(stack.kafka_bootstrap, registry, second)

    from datetime import UTC, datetime

    report = Rebuilder(settings).run(StartAt(time=datetime.fromtimestamp(boundary_ms / 1000, UTC)))
    assert report.target_prefix == namespace and not report.swapped  # the prefix was empty: rebuilt in place
    history = redis_client.zrange(f"{namespace}ind:BTC-USD@test:tick", 0, -1)
    assert [json.loads(h)["price"] for h in history] == [s.price for s in second.indicators if s.timeframe == "tick"]

    by_offset = f"{namespace}o."
    try:
        Rebuilder(settings).run(StartAt(offset=50), into=by_offset)
        assert redis_client.zcard(f"{by_offset}ind:BTC-USD@test:tick") == 50  # offsets 50..99 of one partition
        with pytest.raises(RebuildError):
            Rebuilder(settings).run(into=by_offset)  # not empty any more
        with pytest.raises(RebuildError):
            Rebuilder(settings).run()  # the live prefix holds views now: needs --swap or --into
    finally:
        drop_prefix(redis_client, by_offset)
    assert view_keys_under(redis_client, namespace)
