"""decode_tick (processors/stream/records.py) parses exactly as the tick's upcaster chain (schemas/upcasters.py).

It calls the current model's validator directly (no Python wrapper) and the chain only for what
that refuses; the Tick it returns, or the validation error it turns into a dead letter, must be
the chain's, for valid ticks of either version with any optional fields present or absent and
for mutated or garbage payloads. The record key must be the one the tick's release gave it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from processors.stream.records import MAX_FUTURE_S, _describe, decode_tick
from schemas.events import DeadLetter, Lineage, Tick, encode
from schemas.upcasters import TICK_CHAIN, UnsupportedSchemaVersionError, record_key
from tests.fuzz.strategies import json_values, mostly_ascii_bytes, mutated
from tests.support.legacy import events_v1

LINEAGE = Lineage(topic="ticks", partition=0, offset=7)
TEMPLATE = json.loads(encode(Tick(symbol="BTC-USD", venue="test", price=64000.5, volume=0.25, bid=64000.0, ask=64001.0,
                                  ts_event=datetime(2024, 5, 1, tzinfo=UTC), ts_init=datetime(2024, 5, 1, tzinfo=UTC),
                                  source="test", source_id="1")))
OFFSETS = st.sampled_from(["Z", "+00:00", "+05:30", "-08:00"])


@st.composite
def valid_payloads(draw: st.DrawFn) -> bytes:
    fields = dict(TEMPLATE)
    for optional in ("schema_version", "volume", "bid", "ask"):
        if draw(st.booleans()):
            fields.pop(optional)
    if draw(st.booleans()):  # a v1 tick: no venue (the upcaster takes the source)
        fields.pop("venue")
        fields["schema_version"] = 1
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))  # noqa: DTZ001
    fields["ts_event"] = moment.isoformat() + draw(OFFSETS)
    fields["ts_init"] = (moment + timedelta(microseconds=draw(st.integers(0, 10**7)))).isoformat() + draw(OFFSETS)
    fields["price"] = draw(st.one_of(st.floats(min_value=0, exclude_min=True, allow_infinity=False),
                                     st.integers(1, 10**6)))
    return json.dumps(fields).encode()


@settings(max_examples=300, deadline=None)
@given(payload=st.one_of(valid_payloads(), mutated(TEMPLATE).map(lambda v: json.dumps(v, default=str).encode()),
                         json_values().map(lambda v: json.dumps(v, default=str).encode()), mostly_ascii_bytes(120)))
def test_decode_tick_is_the_upcaster_chain(payload: bytes) -> None:
    decoded = decode_tick(payload, b"BTC-USD@test", 1_714_521_600_000, LINEAGE)
    try:
        reference, version = TICK_CHAIN.decode_versioned(payload)
    except ValidationError as error:
        assert isinstance(decoded, DeadLetter)
        if decoded.reason == "tick_invalid":
            assert decoded.detail == _describe(error)
        return
    except UnsupportedSchemaVersionError:
        assert isinstance(decoded, DeadLetter) and decoded.reason == "schema_version_unsupported"
        return
    if isinstance(decoded, DeadLetter):  # a valid tick dated beyond the record + bound, or of another instrument
        beyond = reference.ts_event > datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=MAX_FUTURE_S)
        if beyond:
            assert decoded.reason == "timestamp_in_future", decoded
        else:
            assert decoded.reason == "key_mismatch" and record_key(reference, version) != b"BTC-USD@test"
        return
    assert reference.ts_event <= datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=MAX_FUTURE_S)
    event("valid tick")
    assert decoded == reference
    assert decoded.model_fields_set == reference.model_fields_set
    assert encode(decoded) == encode(reference)
    assert decoded.ts_event.tzinfo is reference.ts_event.tzinfo is UTC


T = datetime(2024, 5, 1, tzinfo=UTC)


def test_a_v1_tick_keyed_by_its_symbol_decodes_to_venue_equals_source() -> None:
    v1 = events_v1.encode(events_v1.Tick(symbol="BTC-USD", price=1.5, ts_event=T, ts_init=T, source="kraken",
                                         source_id="k1"))
    tick = decode_tick(v1, b"BTC-USD", 0, LINEAGE)
    assert isinstance(tick, Tick) and (tick.venue, tick.schema_version) == ("kraken", 2)
    mismatch = decode_tick(v1, b"BTC-USD@kraken", 0, LINEAGE)  # v1 wrote the symbol as the key
    assert isinstance(mismatch, DeadLetter) and mismatch.reason == "key_mismatch"
    current = encode(Tick(symbol="BTC-USD", venue="kraken", price=1.5, ts_event=T, ts_init=T, source="kraken",
                          source_id="k1"))
    assert decode_tick(current, b"BTC-USD@kraken", 0, LINEAGE) == tick
    legacy_key = decode_tick(current, b"BTC-USD", 0, LINEAGE)  # a v2 tick must carry the instrument key
    assert isinstance(legacy_key, DeadLetter) and legacy_key.reason == "key_mismatch"
    assert "BTC-USD@kraken" in legacy_key.detail


def test_a_tick_from_a_future_release_is_a_dead_letter_not_a_crash() -> None:
    future = dict(TEMPLATE) | {"schema_version": 3, "exchange_fee": 0.1}
    letter = decode_tick(json.dumps(future).encode(), b"BTC-USD@test", 0, LINEAGE)
    assert isinstance(letter, DeadLetter)
    assert (letter.reason, letter.source, letter.origin) == ("schema_version_unsupported", "test", LINEAGE)
    assert "schema_version 3" in letter.detail


def test_far_future_event_time_is_refused_against_the_record_timestamp_not_the_clock() -> None:
    record_ms = 1_714_521_600_000  # 2024-05-01T00:00:00Z
    def tick_at(moment: datetime) -> bytes:
        return encode(Tick(symbol="BTC-USD", venue="test", price=1.0, ts_event=moment, ts_init=moment, source="s", source_id="1"))

    edge = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=MAX_FUTURE_S)
    assert isinstance(decode_tick(tick_at(edge), b"BTC-USD@test", record_ms, LINEAGE), Tick)
    refused = decode_tick(tick_at(edge + timedelta(seconds=1)), b"BTC-USD@test", record_ms, LINEAGE)
    assert isinstance(refused, DeadLetter) and refused.reason == "timestamp_in_future"
    year_9999 = decode_tick(tick_at(datetime(9999, 12, 31, tzinfo=UTC)), b"BTC-USD@test", record_ms, LINEAGE)
    assert isinstance(year_9999, DeadLetter) and year_9999.reason == "timestamp_in_future"
    assert year_9999.origin == LINEAGE and year_9999.source == "s"
    # the same verdict whenever it is decided (replay, backfill): only the log's own timestamps count
    assert decode_tick(tick_at(edge + timedelta(seconds=1)), b"BTC-USD@test", record_ms, LINEAGE) == refused
