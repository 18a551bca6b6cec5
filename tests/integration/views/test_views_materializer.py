"""The materializer against the real broker and Redis: views, dead letters, committed offsets, replays."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import REGISTRY

from processors.materialize.rebuild import snapshot
from processors.materialize.service import Materializer
from processors.materialize.settings import MaterializeSettings
from processors.runtime.kafka_admin import ensure_topics
from schemas.events import DeadLetter
from schemas.topics import TopicSpec
from tests.integration.views.streams import make_stream, produce_stream
from tests.support.kafka_tools import committed_or_none, end_offsets, produce, read_topic, wait_until

pytestmark = pytest.mark.integration


@contextmanager
def running(settings: MaterializeSettings) -> Iterator[Materializer]:
    stop = threading.Event()
    materializer = Materializer(settings, stop=stop)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            materializer.run()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield materializer
    finally:
        stop.set()
        thread.join(30)
        assert not errors, errors


def settings_for(stack, namespace: str, **overrides) -> MaterializeSettings:
    return MaterializeSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace,
                               redis_url=stack.redis_url, redis_key_prefix=namespace, metrics_port=0,
                               partitions=2, batch_timeout_s=0.05, **overrides)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def caught_up(settings: MaterializeSettings, topic: str) -> bool:
    """The group's committed offsets equal the end offsets of every non-empty partition of ``topic``."""
    ends = {p: end for p, end in end_offsets(settings.bootstrap_servers, topic).items() if end > 0}
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": settings.group_id})
    try:
        done = committed_or_none(consumer, [TopicPartition(topic, p) for p in ends])
        return done is not None and {tp.partition: tp.offset for tp in done} == ends
    finally:
        consumer.close()


def test_materializes_every_view_refuses_bad_records_and_commits_after_writing(
        stack, namespace, views_prefix, redis_client, topics_cleanup):
    settings = settings_for(stack, namespace)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    stream = make_stream(count=200)
    stream.extend(make_stream("ETH-USD", count=100, price=3000.0, seed=5))
    produced = produce_stream(stack.kafka_bootstrap, registry, stream)
    produce(stack.kafka_bootstrap, registry.ticks.name, [(b"BTC-USD@test", b"{broken"), (b"BTC-USD@test", b'{"price": 0}')])
    events_before = metric("stockstream_materialize_events_total", topic="ticks")
    dead_before = metric("stockstream_materialize_dead_letters_total", reason="invalid_json")

    with running(settings):
        wait_until(lambda: redis_client.zcard(f"{namespace}ind:ETH-USD@test:tick") == 100
                   and redis_client.zcard(f"{namespace}ind:BTC-USD@test:tick") == 200
                   and redis_client.zcard(f"{namespace}signals:BTC-USD@test")
                   == sum(s.symbol == "BTC-USD" for s in stream.signals)
                   # every input topic committed (so written: the materializer commits after writing),
                   # not only ticks: under load the candle and daily partitions can come later
                   and all(caught_up(settings, name) for name in (
                       registry.ticks.name, registry.indicators.name, registry.signals.name,
                       registry.candles("1m").name, registry.aggregates_daily.name)),
                   timeout_s=180, message="views and committed offsets")

    last_btc = [t for t in stream.ticks if t.symbol == "BTC-USD"][-1]
    assert json.loads(redis_client.hget(f"{namespace}latest:BTC-USD@test", "tick"))["source_id"] == last_btc.source_id
    assert redis_client.smembers(f"{namespace}instruments") == {b"BTC-USD@test", b"ETH-USD@test"}
    assert redis_client.zcard(f"{namespace}candles:BTC-USD@test:1m") == sum(c.symbol == "BTC-USD" for c in stream.candles)
    last_day = [d for d in stream.daily if d.symbol == "BTC-USD"][-1]
    assert json.loads(redis_client.hget(f"{namespace}daily:BTC-USD@test", last_day.date.isoformat()))["tick_count"] == 200
    assert metric("stockstream_materialize_events_total", topic="ticks") - events_before == len(stream.ticks)
    assert metric("stockstream_materialize_dead_letters_total", reason="invalid_json") - dead_before == 1
    letters = [DeadLetter.model_validate_json(r.value) for r in
               read_topic(stack.kafka_bootstrap, settings.dead_letter_topic().name)]
    assert sorted(letter.reason for letter in letters) == ["invalid_json", "schema_invalid"]
    assert all(letter.origin and letter.origin.topic == registry.ticks.name for letter in letters)
    assert produced == stream.size


def test_a_replay_from_the_start_by_a_second_group_leaves_the_views_unchanged(
        stack, namespace, views_prefix, redis_client, topics_cleanup):
    settings = settings_for(stack, namespace)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    stream = make_stream(count=150, seed=3)
    produce_stream(stack.kafka_bootstrap, registry, stream)
    inputs = (registry.ticks.name, registry.indicators.name, registry.signals.name, registry.candles("1m").name,
              registry.aggregates_daily.name)
    with running(settings):
        # Every input committed, so written (the materializer commits after writing): the indicator and signal
        # views alone were not enough, the daily one came later under load (proof of 2026-12-07).
        wait_until(lambda: redis_client.zcard(f"{namespace}ind:BTC-USD@test:tick") == 150
                   and redis_client.zcard(f"{namespace}signals:BTC-USD@test") == len(stream.signals)
                   and all(caught_up(settings, name) for name in inputs),
                   timeout_s=120, message="first pass")
    first = snapshot(redis_client, namespace)
    stale_before = metric("stockstream_materialize_writes_total", outcome="stale")
    # A new group reads everything again: the at-least-once worst case.
    replay = settings_for(stack, namespace, consumer_group=f"replay-{uuid.uuid4().hex[:6]}")
    with running(replay) as materializer:
        wait_until(lambda: all(caught_up(replay, name) for name in inputs), timeout_s=120,
                   message="replay committed")
        assert materializer.batches >= 1
    assert snapshot(redis_client, namespace) == first
    assert metric("stockstream_materialize_writes_total", outcome="stale") > stale_before


def test_views_take_no_more_instruments_than_the_limit_and_keep_those_they_hold(
        stack, namespace, views_prefix, redis_client, topics_cleanup):
    """``MAX_INSTRUMENTS=2`` over 2 partitions: room for 2 instruments. The views already hold one (its
    place is kept, read from Redis at the first batch); of three new ones only the first gets views,
    the others' events go to ``views.dlq`` as ``instrument_limit``."""
    settings = settings_for(stack, namespace, max_instruments=2)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    redis_client.sadd(f"{namespace}instruments", "OLD-USD@test")
    first = make_stream("AAA-USD", count=20, seed=1)
    produce_stream(stack.kafka_bootstrap, registry, first)
    with running(settings):
        wait_until(lambda: redis_client.zcard(f"{namespace}ind:AAA-USD@test:tick") == 20,
                   timeout_s=60, message="the first instrument's views")
        late = make_stream("BBB-USD", count=10, seed=2)
        late.extend(make_stream("CCC-USD", count=10, seed=3))
        produce_stream(stack.kafka_bootstrap, registry, late)
        wait_until(lambda: all(caught_up(settings, name) for name in (
            registry.ticks.name, registry.indicators.name, registry.signals.name, registry.candles("1m").name,
            registry.aggregates_daily.name)), timeout_s=60, message="every later event")
    assert redis_client.smembers(f"{namespace}instruments") == {b"OLD-USD@test", b"AAA-USD@test"}
    assert not redis_client.exists(f"{namespace}latest:BBB-USD@test", f"{namespace}latest:CCC-USD@test")
    letters = [DeadLetter.model_validate_json(r.value) for r in
               read_topic(stack.kafka_bootstrap, settings.dead_letter_topic().name)]
    assert letters and {letter.reason for letter in letters} == {"instrument_limit"}
    assert len(letters) == late.size


def test_a_commit_the_broker_refused_is_made_again_while_idle(stack, namespace, topics_cleanup, caplog):
    """An asynchronous commit is not retried by the client; a lost last commit would leave the group short of
    the end for good (``runs start`` waits for it). Here the broker refuses one (its topic does not exist yet):
    the refusal is said, and once the topic exists the idle materializer's commit again lands."""
    settings = settings_for(stack, namespace)
    materializer = Materializer(settings)
    later = f"{namespace}later"
    try:
        with caplog.at_level("WARNING", logger="processors.materialize.service"):
            materializer._unconfirmed[(later, 0)] = 5
            materializer.consumer.commit(offsets=[TopicPartition(later, 0, 5)], asynchronous=True)
            wait_until(lambda: not materializer._consume(0.2) and "offset commit failed" in caplog.text,
                       timeout_s=60, message="the broker's refusal")
        assert materializer._unconfirmed == {(later, 0): 5}  # refused: still to commit
        ensure_topics(settings, [TopicSpec(later, "symbol", DeadLetter, 1)])

        def landed() -> bool:
            materializer._consume(0.2)  # serves the commit's answer
            if materializer._unconfirmed:
                materializer._commit_again()
                return False
            return True

        wait_until(landed, timeout_s=120, message="the commit made again to land")
        consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": settings.group_id})
        try:
            assert [tp.offset for tp in committed_or_none(consumer, [TopicPartition(later, 0)]) or []] == [5]
        finally:
            consumer.close()
    finally:
        materializer.consumer.close()
        materializer.redis.close()
