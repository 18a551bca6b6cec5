"""Redis loses acknowledged view writes (``kill -9`` of redis-server): the views still end up complete.

The Redis of this test persists only by explicit snapshot (``--save "" --appendonly no``), so a
``kill -9`` deterministically loses everything written after the last ``SAVE`` — the worst case of
AOF ``everysec`` or a late RDB, made certain. The materializer has already committed its Kafka
offsets past those writes. It must notice (Redis's ``{p}progress`` is behind what it wrote) and
re-read them; the views are then compared key for key with a clean rebuild of the same log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from processors.materialize.rebuild import Rebuilder, snapshot
from processors.materialize.service import Materializer
from processors.materialize.settings import MaterializeSettings
from processors.runtime.kafka_admin import ensure_topics
from tests.integration.views.streams import make_stream, produce_stream
from tests.support.kafka_tools import end_offsets, wait_until
from tests.support.ports import free_port
from tests.support.redis_tools import wait_for_redis

pytestmark = pytest.mark.integration


class SnapshotRedis:
    """A redis-server that persists only on SAVE; ``kill`` is SIGKILL, ``start`` reloads the last snapshot."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             "--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb"],
            stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port)
        wait_for_redis(client, timeout_s=120, message="redis-server to answer")
        client.close()

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def snapshot_redis(tmp_path) -> Iterator[SnapshotRedis]:
    server = SnapshotRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.terminate()
            server.process.wait(10)


@contextmanager
def materializing(settings: MaterializeSettings) -> Iterator[Materializer]:
    stop = threading.Event()
    materializer = Materializer(settings, stop=stop)
    thread = threading.Thread(target=materializer.run, daemon=True)
    thread.start()
    try:
        yield materializer
    finally:
        stop.set()
        thread.join(60)


def committed_everything(bootstrap: str, group: str, topics: list[str]) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    result = list(admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values())[0].result(
        timeout=10)
    committed = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}
    for topic in topics:
        for partition, end in end_offsets(bootstrap, topic).items():
            # the last offset may be a transaction marker, never delivered
            if end and committed.get((topic, partition), -1) < end - 1:
                return False
    return True


def test_views_survive_redis_losing_acknowledged_writes(stack, namespace, snapshot_redis, topics_cleanup):
    settings = MaterializeSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace,
                                   redis_url=snapshot_redis.url, redis_key_prefix=namespace, metrics_port=0,
                                   partitions=1, batch_timeout_s=0.05, retry_max_backoff_s=0.5)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    first, lost, after = (make_stream("BTC-USD", count=150, seed=31),
                          make_stream("ETH-USD", count=100, price=3000.0, seed=32),
                          make_stream("SOL-USD", count=80, price=150.0, seed=33))
    client = redis.Redis.from_url(snapshot_redis.url)
    rewinds_before = REGISTRY.get_sample_value("stockstream_materialize_rewinds_total") or 0.0
    with materializing(settings):
        produce_stream(stack.kafka_bootstrap, registry, first)
        wait_until(lambda: client.zcard(f"{namespace}ind:BTC-USD@test:tick") == 150, timeout_s=60, message="first views")
        client.save()  # the last snapshot: what a restarted Redis will come back with
        produce_stream(stack.kafka_bootstrap, registry, lost)
        wait_until(lambda: client.zcard(f"{namespace}ind:ETH-USD@test:tick") == 100
                   and committed_everything(stack.kafka_bootstrap, settings.group_id, settings.input_topics().names),
                   timeout_s=60, message="second views written and their offsets committed")

        snapshot_redis.kill()
        snapshot_redis.start()
        client = redis.Redis.from_url(snapshot_redis.url)
        assert client.zcard(f"{namespace}ind:ETH-USD@test:tick") == 0  # acknowledged and committed, now lost
        assert client.zcard(f"{namespace}ind:BTC-USD@test:tick") == 150

        produce_stream(stack.kafka_bootstrap, registry, after)
        wait_until(lambda: client.zcard(f"{namespace}ind:SOL-USD@test:tick") == 80
                   and client.zcard(f"{namespace}ind:ETH-USD@test:tick") == 100
                   and committed_everything(stack.kafka_bootstrap, settings.group_id, settings.input_topics().names),
                   timeout_s=120, message="the lost views re-read, the new ones written, every record consumed")
    assert (REGISTRY.get_sample_value("stockstream_materialize_rewinds_total") or 0.0) > rewinds_before

    # Key for key, value for value: the same as a clean rebuild of the whole log.
    clean = f"{namespace}clean."
    Rebuilder(settings).run(into=clean)
    live, rebuilt = snapshot(client, namespace), snapshot(client, clean)
    assert set(live) == set(rebuilt)
    assert {key for key in live if live[key] != rebuilt[key]} == set()
    assert len(live) > 20
    client.close()
