"""The Redis store on the real Redis: compare-and-set on log offsets makes at-least-once delivery exactly-once."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputRecord, InputTopics
from processors.materialize.rebuild import snapshot
from processors.materialize.store import ViewStore
from schemas.events import encode
from schemas.topics import TopicRegistry
from tests.integration.views.conftest import drop_prefix
from tests.integration.views.streams import make_stream

pytestmark = pytest.mark.integration

REGISTRY = TopicRegistry(prefix="x.")
TOPICS = InputTopics.from_registry(REGISTRY)
NOW = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)


def log_of(stream, forming: bool = False) -> list[InputRecord]:
    """The stream as the log would hold it: per topic, offsets 0.. in produce order (one partition).

    ``forming``: each closed candle preceded by two forming ones of its window, as the processor writes them.
    """
    candles = stream.candles
    if forming:
        candles = [c.model_copy(update=update) for c in stream.candles
                   for update in ({"final": False, "close": c.open, "trade_count": 1}, {"final": False}, {})]
    records = []
    for topic, events in ((REGISTRY.ticks.name, stream.ticks), (REGISTRY.indicators.name, stream.indicators),
                          (REGISTRY.candles("1m").name, candles), (REGISTRY.signals.name, stream.signals),
                          (REGISTRY.aggregates_daily.name, stream.daily)):
        records += [InputRecord(topic, 0, offset, f"{e.symbol}@{e.venue}".encode(), encode(e)) for offset, e in enumerate(events)]
    return records


def store_for(client, prefix: str, caps: Caps | None = None) -> tuple[BatchPlanner, ViewStore]:
    keys = ViewKeys(prefix)
    return BatchPlanner(keys, TOPICS, caps or Caps(), lambda: NOW), ViewStore(client, keys, publish=False)


STREAM = make_stream(count=260)  # 4 closed 1m candles: more than the cap of 3 below
STREAM.extend(make_stream("ETH-USD", count=90, price=3000.0, seed=11))
LOG = log_of(STREAM)
LIVE_LOG = log_of(STREAM, forming=True)


def test_applying_the_same_batch_twice_changes_nothing_the_second_time(redis_client, views_prefix):
    planner, store = store_for(redis_client, views_prefix)
    first = store.apply(planner.plan(LOG))
    before = snapshot(redis_client, views_prefix)
    second = store.apply(planner.plan(LOG))
    assert first.written > 0 and first.stale == 0
    assert second.written == 0 and second.stale == first.written
    assert snapshot(redis_client, views_prefix) == before


def test_an_older_offset_never_moves_a_view_backwards(redis_client, views_prefix):
    planner, store = store_for(redis_client, views_prefix)
    ticks = [r for r in LOG if r.topic == REGISTRY.ticks.name and r.key == b"BTC-USD@test"]
    store.apply(planner.plan([ticks[-1]]))
    result = store.apply(planner.plan(ticks[:-1]))  # the whole older history arrives late
    assert result.written == 0
    stored = json.loads(redis_client.hget(f"{views_prefix}latest:BTC-USD@test", "tick"))
    assert stored["source_id"] == json.loads(ticks[-1].value)["source_id"]
    assert int(redis_client.hget(f"{views_prefix}latest:BTC-USD@test:pos", "tick")) == ticks[-1].offset


def test_views_hold_what_the_log_says(redis_client, views_prefix):
    planner, store = store_for(redis_client, views_prefix, Caps(candles=3, signals=4, indicator_history=10))
    store.apply(planner.plan(LOG))
    btc = [t for t in STREAM.ticks if t.symbol == "BTC-USD"]
    assert redis_client.smembers(f"{views_prefix}instruments") == {b"BTC-USD@test", b"ETH-USD@test"}
    assert json.loads(redis_client.hget(f"{views_prefix}latest:BTC-USD@test", "tick"))["price"] == btc[-1].price
    # capped and time-ordered
    candles = [c for c in STREAM.candles if c.symbol == "BTC-USD"]
    members = redis_client.zrange(f"{views_prefix}candles:BTC-USD@test:1m", 0, -1)
    assert [int(m) for m in members] == [int(c.ts_open.timestamp() * 1000) for c in candles[-3:]]
    assert redis_client.hlen(f"{views_prefix}candles:BTC-USD@test:1m:data") == 3
    assert redis_client.hlen(f"{views_prefix}candles:BTC-USD@test:1m:data:pos") == 3
    newest = [json.loads(m)["signal_id"] for m in redis_client.zrevrange(f"{views_prefix}signals:BTC-USD@test", 0, -1)]
    expected = sorted((s for s in STREAM.signals if s.symbol == "BTC-USD"), key=lambda s: s.ts_event, reverse=True)
    assert newest == [s.signal_id for s in expected[:4]]
    assert redis_client.zcard(f"{views_prefix}ind:BTC-USD@test:tick") == 10


def test_a_forming_candle_never_replaces_the_closed_one_which_always_replaces_a_forming_one(redis_client,
                                                                                         views_prefix):
    planner, store = store_for(redis_client, views_prefix)
    topic, key = REGISTRY.candles("1m").name, b"BTC-USD@test"
    data, index = f"{views_prefix}candles:BTC-USD@test:1m:data", f"{views_prefix}candles:BTC-USD@test:1m"
    closed, older = STREAM.candles[1], STREAM.candles[0]
    forming = closed.model_copy(update={"final": False, "close": closed.open, "trade_count": 1})
    member = str(int(closed.ts_open.timestamp() * 1000))

    def apply(offset: int, candle) -> int:  # noqa: ANN001
        return store.apply(planner.plan([InputRecord(topic, 0, offset, key, encode(candle))])).written

    def stored() -> dict:
        return json.loads(redis_client.hget(data, member))

    assert apply(5, forming) == 1 and stored()["final"] is False
    assert apply(6, forming.model_copy(update={"trade_count": 2})) == 1 and stored()["trade_count"] == 2
    assert apply(4, closed) == 1 and stored() == json.loads(encode(closed))  # a lower offset, and still it wins
    assert apply(9, forming) == 0 and stored() == json.loads(encode(closed))  # a late forming one (replay, run)
    assert apply(4, closed) == 0  # idempotent
    assert redis_client.hkeys(f"{data}:pos") == [member.encode()]  # no forming mark left
    # A window stored before candles had ``final`` (no mark) counts as closed.
    old_member = str(int(older.ts_open.timestamp() * 1000))
    redis_client.zadd(index, {old_member: int(old_member)})
    redis_client.hset(data, old_member, b"a v2 candle")
    redis_client.hset(f"{data}:pos", old_member, 3)
    assert apply(10, older.model_copy(update={"final": False})) == 0
    assert redis_client.hget(data, old_member) == b"a v2 candle"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), duplicates=st.floats(0, 1), batch_size=st.integers(1, 400))
def test_any_order_with_any_duplicates_gives_the_views_of_one_ordered_pass(redis_client, views_prefix, seed,
                                                                           duplicates, batch_size):
    """At-least-once, rewinds and even cross-partition interleaving: the result equals applying the log once
    (forming candles included: whatever arrives when, each window ends as its closed candle)."""
    rng = random.Random(seed)
    caps = Caps(candles=2, signals=3, indicator_history=7)
    once, messy = f"{views_prefix}{uuid.uuid4().hex[:6]}a:", f"{views_prefix}{uuid.uuid4().hex[:6]}b:"
    try:
        planner, store = store_for(redis_client, once, caps)
        store.apply(planner.plan(LIVE_LOG))
        delivered = LIVE_LOG + rng.sample(LIVE_LOG, int(len(LIVE_LOG) * duplicates))
        rng.shuffle(delivered)
        planner, store = store_for(redis_client, messy, caps)
        for start in range(0, len(delivered), batch_size):
            store.apply(planner.plan(delivered[start:start + batch_size]))
        assert snapshot(redis_client, messy) == snapshot(redis_client, once)
    finally:
        drop_prefix(redis_client, once)
        drop_prefix(redis_client, messy)


def test_live_updates_are_published_only_for_writes_that_changed_a_view(redis_client, views_prefix):
    keys = ViewKeys(views_prefix)
    planner = BatchPlanner(keys, TOPICS, Caps(), lambda: NOW)
    store = ViewStore(redis_client, keys)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.live_updates)
    pubsub.get_message(timeout=1)
    some = [r for r in LOG if r.key == b"BTC-USD@test"][:40]
    first = store.apply(planner.plan(some))
    again = store.apply(planner.plan(some))
    messages = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        messages.append(json.loads(message["data"]))
    pubsub.close()
    assert first.published > 0 and again.published == 0
    updates = [u for m in messages for u in m["updates"]]
    assert len(updates) == first.published
    assert {u["type"] for u in updates} <= {"tick", "indicators", "candle", "signal", "recommendation", "daily"}
    assert all(u["data"]["symbol"] == "BTC-USD" for u in updates)
