"""The materializer's pure core: decoding (bad input → dead letter with a stable reason), planning, coalescing, keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.materialize.keys import INSTRUMENT_PATTERN, InvalidKeyPartError, ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputRecord, InputTopics, live_update
from schemas.events import DeadLetter, encode
from schemas.topics import TopicRegistry
from schemas.upcasters import decode_tick
from tests.integration.views.streams import make_stream
from tests.support.legacy import events_v1

NOW = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
REGISTRY = TopicRegistry(prefix="ns.", candle_timeframes=("1m", "5m"))
KEYS = ViewKeys("p:")


def planner(decay: timedelta = timedelta(minutes=15)) -> BatchPlanner:
    return BatchPlanner(KEYS, InputTopics.from_registry(REGISTRY), Caps(recommendation_decay=decay), lambda: NOW)


def record(topic: str, offset: int, value: bytes | None, key: bytes | None = b"BTC-USD@test", partition: int = 1
           ) -> InputRecord:
    return InputRecord(topic, partition, offset, key, value)


STREAM = make_stream(count=130)


def test_routes_cover_every_input_topic_with_unprefixed_metric_labels():
    topics = InputTopics.from_registry(REGISTRY)
    assert sorted(topics.names) == sorted(["ns.ticks", "ns.indicators", "ns.signals", "ns.aggregates.daily",
                                           "ns.candles.1m", "ns.candles.5m", "ns.signals.outcomes"])
    assert {route.label for route in topics.routes.values()} == {
        "ticks", "indicators", "signals", "aggregates.daily", "candles.1m", "candles.5m", "signals.outcomes"}
    assert topics.routes["ns.candles.5m"].timeframe == "5m"


@pytest.mark.parametrize(("topic", "value", "key", "reason"), [
    ("ns.ticks", b"", b"BTC-USD@test", "empty_value"),
    ("ns.ticks", None, b"BTC-USD@test", "empty_value"),
    ("ns.ticks", b"{not json", b"BTC-USD@test", "invalid_json"),
    ("ns.ticks", b"\xff\xfe\x00garbage", b"BTC-USD@test", "invalid_json"),
    ("ns.ticks", b'{"symbol": "BTC-USD", "price": -1}', b"BTC-USD@test", "schema_invalid"),
    ("ns.ticks", b"[1, 2, 3]", b"BTC-USD@test", "schema_invalid"),
    ("ns.ticks", encode(STREAM.ticks[0]), b"ETH-USD@test", "key_mismatch"),
    ("ns.ticks", encode(STREAM.ticks[0]), b"BTC-USD@kraken", "key_mismatch"),
    ("ns.ticks", encode(STREAM.ticks[0]), b"BTC-USD", "key_mismatch"),  # the v1 key of a v2 record
    ("ns.ticks", json.dumps(json.loads(encode(STREAM.ticks[0])) | {"schema_version": 9}).encode(), b"BTC-USD@test",
     "schema_version_unsupported"),
    ("ns.ticks", encode(STREAM.ticks[0]), None, "key_mismatch"),
    ("ns.signals", encode(STREAM.ticks[0]), b"BTC-USD@test", "schema_invalid"),
    ("ns.candles.5m", encode(STREAM.candles[0]), b"BTC-USD@test", "timeframe_mismatch"),
    ("ns.elsewhere", encode(STREAM.ticks[0]), b"BTC-USD@test", "unknown_topic"),
])
def test_bad_records_become_dead_letters_with_a_stable_reason(topic, value, key, reason):
    decoded = planner().decode(record(topic, 41, value, key))
    assert isinstance(decoded, DeadLetter)
    assert decoded.reason == reason
    assert decoded.source == "materialize"
    assert decoded.origin is not None and (decoded.origin.topic, decoded.origin.offset) == (topic, 41)
    assert decoded.ts_init == NOW
    if value:
        assert decoded.raw == value.decode("utf-8", errors="backslashreplace")


def test_a_batch_with_bad_records_keeps_the_good_ones_and_counts_by_topic():
    batch = planner().plan([
        record("ns.ticks", 0, encode(STREAM.ticks[0])),
        record("ns.ticks", 1, b"nope"),
        record("ns.indicators", 0, encode(STREAM.indicators[0])),
    ])
    assert batch.records == 3
    assert [letter.reason for letter in batch.dead_letters] == ["invalid_json"]
    assert dict(batch.events_by_topic) == {"ticks": 1, "indicators": 1}
    assert batch.instruments == {"BTC-USD@test"}


def test_latest_value_slots_keep_only_the_highest_offset_of_a_batch():
    ticks = STREAM.ticks[:5]
    # delivered out of order within the batch (e.g. a replay appended to a retried batch)
    order = [3, 0, 4, 1, 2]
    batch = planner().plan([record("ns.ticks", 100 + i, encode(ticks[i])) for i in order])
    assert list(batch.slots) == ["p:latest:BTC-USD@test"] and list(batch.slots["p:latest:BTC-USD@test"]) == ["tick"]
    slot = batch.slots["p:latest:BTC-USD@test"]["tick"]
    assert slot.offset == 104
    assert decode_tick(slot.value) == ticks[4]
    assert slot.live == "tick"
    assert json.loads(live_update(slot.live, slot.value)) == {"type": "tick", "data": json.loads(encode(ticks[4]))}


def test_indicators_update_latest_per_timeframe_and_the_capped_history():
    snapshots = [s for s in STREAM.indicators if s.timeframe == "1m"][:2] + STREAM.indicators[:3]
    batch = planner().plan([record("ns.indicators", i, encode(s)) for i, s in enumerate(snapshots)])
    assert set(batch.slots["p:latest:BTC-USD@test"]) == {"ind:1m", "ind:tick"}
    assert len(batch.series["p:ind:BTC-USD@test:tick"].adds) == 3
    assert {key: group.cap for key, group in batch.series.items()} == {"p:ind:BTC-USD@test:tick": 1000,
                                                                       "p:ind:BTC-USD@test:1m": 1000}
    assert all(add.live == "indicators" for group in batch.series.values() for add in group.adds)


def test_a_signal_sets_the_recommendation_with_rule_time_price_and_decay():
    signal = STREAM.signals[0]
    batch = planner(decay=timedelta(minutes=5)).plan([record("ns.signals", 7, encode(signal))])
    overall = json.loads(batch.slots["p:rec:BTC-USD@test"]["*"].value)
    per_timeframe = json.loads(batch.slots["p:rec:BTC-USD@test"][f"tf:{signal.timeframe}"].value)
    per_strategy = json.loads(batch.slots["p:rec:BTC-USD@test"][f"st:{signal.strategy}"].value)
    per_both = json.loads(batch.slots["p:rec:BTC-USD@test"][f"st:{signal.strategy}:tf:{signal.timeframe}"].value)
    assert overall == per_timeframe == per_strategy == per_both
    assert overall["strategy_version"] == signal.strategy_version
    assert overall["rule"] == signal.rule and overall["side"] == signal.side and overall["price"] == signal.price
    assert datetime.fromisoformat(overall["expires_at"]) == signal.ts_event + timedelta(minutes=5)
    assert list(batch.series) == ["p:signals:BTC-USD@test", f"p:signals:BTC-USD@test:rule:{signal.rule}"]
    assert batch.series["p:signals:BTC-USD@test"].adds[0].score == int(signal.ts_event.timestamp() * 1000)
    assert batch.series["p:signals:BTC-USD@test"].adds[0].member == encode(signal)


def test_candles_and_daily_are_keyed_by_window_and_date():
    candle = STREAM.candles[0]
    day = STREAM.daily[0]
    batch = planner().plan([record("ns.candles.1m", 3, encode(candle)), record("ns.candles.1m", 9, encode(candle)),
                            record("ns.aggregates.daily", 2, encode(day))])
    (write,) = batch.candles.values()
    assert (write.index_key, write.data_key, write.offset) == ("p:candles:BTC-USD@test:1m", "p:candles:BTC-USD@test:1m:data", 9)
    assert write.member == str(int(candle.ts_open.timestamp() * 1000))
    assert day.date.isoformat() in batch.slots["p:daily:BTC-USD@test"]


def test_a_batch_keeps_the_final_candle_of_a_window_over_forming_ones_whatever_their_offsets():
    final = STREAM.candles[0]
    forming = final.model_copy(update={"final": False, "close": final.open})
    for records, offset, is_final in (
        ([(3, forming), (5, final), (9, forming)], 5, True),  # a forming one arriving late never wins
        ([(3, forming), (4, forming)], 4, False),
        ([(8, forming), (5, final)], 5, True),  # the closed candle supersedes
        ([(5, final), (7, final)], 7, True),
    ):
        batch = planner().plan([record("ns.candles.1m", o, encode(c)) for o, c in records])
        (write,) = batch.candles.values()
        assert (write.offset, write.final) == (offset, is_final)
        assert (b'"final":true' in write.value) is is_final


@given(st.text(max_size=40))
def test_keys_are_never_built_from_text_outside_the_instrument_pattern(text):
    import re

    if re.fullmatch(INSTRUMENT_PATTERN, text):
        assert KEYS.latest(text) == f"p:latest:{text}"
    else:
        with pytest.raises(InvalidKeyPartError):
            KEYS.latest(text)


@pytest.mark.parametrize("bad", ["BTC-USD*", "BTC USD", "btc-usd", "A:B", "", "X\nY", "*", "A[1]", "BTC-USD",
                                 "BTC-USD@", "BTC-USD@Kraken", "BTC-USD@a:b", "BTC-USD@*"])
def test_every_key_builder_rejects_glob_and_separator_characters(bad):
    for build in (KEYS.latest, KEYS.recommendation, KEYS.daily, KEYS.signals,
                  lambda s: KEYS.candles(s, "1m"), lambda s: KEYS.indicator_history(s, "tick")):
        with pytest.raises(InvalidKeyPartError):
            build(bad)
    with pytest.raises(InvalidKeyPartError):
        KEYS.candles("BTC-USD@test", bad)
    if bad not in ("btc-usd", "BTC-USD"):  # valid strategy names (upper case and '-' allowed since Signal v3)
        with pytest.raises(InvalidKeyPartError):
            KEYS.signals("BTC-USD@test", rule=bad)
        with pytest.raises(InvalidKeyPartError):
            KEYS.recommendation_field(None, bad)


def test_records_of_the_v1_release_are_upcast_keyed_by_symbol_and_stored_as_the_current_version():
    legacy = {name: getattr(events_v1, name) for name in ("Tick", "IndicatorSnapshot", "Signal")}
    tick, snapshot, signal = STREAM.ticks[0], STREAM.indicators[0], STREAM.signals[0]

    def v1(event):  # the same event as the v1 release wrote it
        fields = event.model_dump(exclude={"venue", "schema_version", "strategy", "strategy_version", "condition"})
        if "signal_id" in fields:
            fields["signal_id"] = events_v1.make_signal_id(event.symbol, event.timeframe, event.rule, event.side,
                                                           event.ts_event, 0, event.lineage.offset)
        return events_v1.encode(legacy[type(event).__name__](**fields))

    batch = planner().plan([record("ns.ticks", 0, v1(tick), b"BTC-USD"),
                            record("ns.indicators", 0, v1(snapshot), b"BTC-USD"),
                            record("ns.signals", 0, v1(signal), b"BTC-USD"),
                            record("ns.ticks", 1, v1(tick), b"BTC-USD@test")])  # v1 never wrote this key
    assert [letter.reason for letter in batch.dead_letters] == ["key_mismatch"]
    # A v1 tick's venue is its source; v1 derived events belong to SYMBOL@unknown.
    assert batch.instruments == {"BTC-USD@test", "BTC-USD@unknown"}
    stored = batch.slots["p:latest:BTC-USD@test"]["tick"].value
    assert stored == encode(tick)  # re-encoded as the current version
    member = batch.series["p:signals:BTC-USD@unknown"].adds[0].member
    assert json.loads(member)["schema_version"] == 3 and json.loads(member)["venue"] == "unknown"
    assert json.loads(member)["strategy"] == signal.rule and json.loads(member)["strategy_version"] is None
