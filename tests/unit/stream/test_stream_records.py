"""decode_tick (processors/stream/records.py) parses exactly as ``Tick.model_validate_json``.

It calls the model's validator directly (no Python wrapper); the Tick it returns, or the
validation error it turns into a dead letter, must be the wrapper's, for valid ticks with any
optional fields present or absent and for mutated or garbage payloads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from processors.stream.records import MAX_FUTURE_S, _describe, decode_tick
from schemas.events import DeadLetter, Lineage, Tick, encode
from tests.fuzz.strategies import json_values, mostly_ascii_bytes, mutated

LINEAGE = Lineage(topic="ticks", partition=0, offset=7)
TEMPLATE = json.loads(encode(Tick(symbol="BTC-USD", price=64000.5, volume=0.25, bid=64000.0, ask=64001.0,
                                  ts_event=datetime(2024, 5, 1, tzinfo=UTC), ts_init=datetime(2024, 5, 1, tzinfo=UTC),
                                  source="test", source_id="1")))
OFFSETS = st.sampled_from(["Z", "+00:00", "+05:30", "-08:00"])


@st.composite
def valid_payloads(draw: st.DrawFn) -> bytes:
    fields = dict(TEMPLATE)
    for optional in ("schema_version", "volume", "bid", "ask"):
        if draw(st.booleans()):
            fields.pop(optional)
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))  # noqa: DTZ001
    fields["ts_event"] = moment.isoformat() + draw(OFFSETS)
    fields["ts_init"] = (moment + timedelta(microseconds=draw(st.integers(0, 10**7)))).isoformat() + draw(OFFSETS)
    fields["price"] = draw(st.one_of(st.floats(min_value=0, exclude_min=True, allow_infinity=False),
                                     st.integers(1, 10**6)))
    return json.dumps(fields).encode()


@settings(max_examples=300, deadline=None)
@given(payload=st.one_of(valid_payloads(), mutated(TEMPLATE).map(lambda v: json.dumps(v, default=str).encode()),
                         json_values().map(lambda v: json.dumps(v, default=str).encode()), mostly_ascii_bytes(120)))
def test_decode_tick_is_model_validate_json(payload: bytes) -> None:
    decoded = decode_tick(payload, b"BTC-USD", 1_714_521_600_000, LINEAGE)
    try:
        reference = Tick.model_validate_json(payload)
    except ValidationError as error:
        assert isinstance(decoded, DeadLetter)
        if decoded.reason == "tick_invalid":
            assert decoded.detail == _describe(error)
        return
    if isinstance(decoded, DeadLetter):  # a valid tick dated beyond the record + bound, or of another symbol
        beyond = reference.ts_event > datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=MAX_FUTURE_S)
        if beyond:
            assert decoded.reason == "timestamp_in_future", decoded
        else:
            assert decoded.reason == "key_mismatch" and reference.symbol != "BTC-USD"
        return
    assert reference.ts_event <= datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=MAX_FUTURE_S)
    event("valid tick")
    assert decoded == reference
    assert decoded.model_fields_set == reference.model_fields_set
    assert encode(decoded) == encode(reference)
    assert decoded.ts_event.tzinfo is reference.ts_event.tzinfo is UTC


def test_far_future_event_time_is_refused_against_the_record_timestamp_not_the_clock() -> None:
    record_ms = 1_714_521_600_000  # 2024-05-01T00:00:00Z
    def tick_at(moment: datetime) -> bytes:
        return encode(Tick(symbol="BTC-USD", price=1.0, ts_event=moment, ts_init=moment, source="s", source_id="1"))

    edge = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=MAX_FUTURE_S)
    assert isinstance(decode_tick(tick_at(edge), b"BTC-USD", record_ms, LINEAGE), Tick)
    refused = decode_tick(tick_at(edge + timedelta(seconds=1)), b"BTC-USD", record_ms, LINEAGE)
    assert isinstance(refused, DeadLetter) and refused.reason == "timestamp_in_future"
    year_9999 = decode_tick(tick_at(datetime(9999, 12, 31, tzinfo=UTC)), b"BTC-USD", record_ms, LINEAGE)
    assert isinstance(year_9999, DeadLetter) and year_9999.reason == "timestamp_in_future"
    assert year_9999.origin == LINEAGE and year_9999.source == "s"
    # the same verdict whenever it is decided (replay, backfill): only the log's own timestamps count
    assert decode_tick(tick_at(edge + timedelta(seconds=1)), b"BTC-USD", record_ms, LINEAGE) == refused
