"""The upcaster chains (schemas/upcasters.py): every step, every event's round trip, the future refused.

Each step is tested on its own (v1 record in, v2 record out), then through the decoders on the
bytes the v1 release really wrote (tests/fixtures/events_v1.jsonl), and every current event
decodes to itself (the JSON round trip of every event type).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import upcasters
from schemas.events import (
    Candle,
    DailySummary,
    DeadLetter,
    Event,
    IndicatorSnapshot,
    Lineage,
    Signal,
    SignalOutcome,
    Tick,
    encode,
    make_outcome_id,
    make_signal_id,
)
from schemas.instruments import UNKNOWN_VENUE
from schemas.runs import Namespace, Run, RunRange, StrategyRef
from schemas.upcasters import (
    CHAINS,
    SCHEMA_VERSION_UNSUPPORTED,
    UnsupportedSchemaVersionError,
    UpcasterChain,
    candle_v2_to_v3,
    decode,
    decode_tick,
    decode_versioned,
    derived_v1_to_v2,
    record_key,
    signal_v2_to_v3,
    tick_v1_to_v2,
)
from tests.support.legacy import events_v1

FIXTURE = Path(__file__).parents[2] / "fixtures" / "events_v1.jsonl"
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LINEAGE = Lineage(topic="ticks", partition=1, offset=42)


def current_examples() -> list[Event]:
    return [
        Tick(symbol="BTC-USD", venue="coinbase", price=10347.92, volume=0.5, bid=10347.91, ask=10348.63,
             ts_event=T0, ts_init=T0 + timedelta(milliseconds=3), source="coinbase", source_id="123"),
        DeadLetter(source="file", reason="price_not_positive", detail="price -1 is not > 0",
                   raw='{"price": -1}', ts_init=T0, origin=LINEAGE),
        Candle(symbol="BTC-USD", venue="kraken", timeframe="1m", ts_open=T0, ts_close=T0 + timedelta(minutes=1),
               open=1.0, high=2.0, low=0.5, close=1.5, volume=3.0, trade_count=4, final=True,
               ts_event=T0 + timedelta(minutes=1), ts_init=T0, lineage=LINEAGE),
        IndicatorSnapshot(symbol="ETH-USD", venue="index", timeframe="tick", price=3000.5,
                          values={"sma_20": 2999.25, "rsi_14": None}, ts_event=T0, ts_init=T0, lineage=LINEAGE),
        Signal(signal_id=make_signal_id("BTC-USD", "binance", "tick", "ema_cross", "BUY", T0, 1, 42),
               symbol="BTC-USD", venue="binance", timeframe="tick", rule="ema_cross", strategy="ema_cross",
               strategy_version="0123456789abcdef", condition="crosses_above(ema(fast), ema(slow))", side="BUY",
               price=10347.92,
               indicators={"ema_12": 1.0, "ema_26": 0.5}, ts_event=T0, ts_init=T0, lineage=LINEAGE),
        DailySummary(symbol="BTC-USD", venue="file", date=date(2026, 11, 27), open=1, high=2, low=0.5, close=1.5,
                     mean_price=1.2, vwap=None, volume=0, tick_count=10, buy_count=1, sell_count=0,
                     final=False, ts_event=T0, ts_init=T0, lineage=LINEAGE),
        SignalOutcome(outcome_id=make_outcome_id("1" * 32, "5m"), signal_id="1" * 32, symbol="BTC-USD",
                      venue="binance", strategy="trend_pullback", strategy_version="0123456789abcdef",
                      timeframe="5m", side="SELL", horizon="5m", signal_price=100.0, signal_ts=T0, price=99.0,
                      return_gross=0.01, return_net=0.009, fee=0.001, ts_event=T0 + timedelta(minutes=5, seconds=1),
                      ts_init=T0, lineage=LINEAGE),
        Run(run_id="r1", kind="replay", state="done", range=RunRange(topic="ticks", start={0: 0}, end={0: 10}),
            strategy=StrategyRef(version="0123456789abcdef", timeframes=("1m",)), code_version="0.1.0",
            namespace=Namespace(topic_prefix="runs.r1.", redis_prefix="ss:run:r1:"), ts_event=T0, ts_init=T0),
    ]


def v1_lines() -> list[tuple[str, bytes]]:
    return [(entry["type"], entry["json"].encode()) for entry in map(json.loads, FIXTURE.read_text().splitlines())]


# -- the registry -----------------------------------------------------------------------------------

def test_every_event_type_has_one_chain_ending_at_its_model_version():
    assert set(CHAINS) == {Tick, Candle, IndicatorSnapshot, Signal, DailySummary, DeadLetter, SignalOutcome, Run}
    for model, chain in CHAINS.items():
        assert chain.model is model
        assert chain.latest == model.model_fields["schema_version"].default


def test_a_chain_that_does_not_reach_its_model_version_is_refused_at_import():
    with pytest.raises(TypeError, match="ends at version 1"):
        UpcasterChain(Tick, ())


# -- each step on its own ---------------------------------------------------------------------------

def test_tick_v1_to_v2_takes_the_venue_from_the_source_and_leaves_the_input_alone():
    record = {"schema_version": 1, "symbol": "BTC-USD", "price": 1.0, "source": "kraken", "source_id": "x"}
    upgraded = tick_v1_to_v2(record)
    assert upgraded == record | {"schema_version": 2, "venue": "kraken"}
    assert record["schema_version"] == 1 and "venue" not in record


@pytest.mark.parametrize(("source", "venue"), [
    ("coinbase", "coinbase"), ("file", "file"), ("My Sim.2", "my-sim-2"), ("!!!", UNKNOWN_VENUE),
    ("x" * 64, "x" * 32),
])
def test_tick_v1_to_v2_turns_any_v1_source_into_a_valid_venue(source, venue):
    assert tick_v1_to_v2({"source": source})["venue"] == venue


def test_a_v1_record_carrying_a_venue_was_invalid_in_v1_and_stays_invalid():
    with pytest.raises(ValueError, match="no venue"):
        tick_v1_to_v2({"source": "kraken", "venue": "kraken"})
    with pytest.raises(ValueError, match="no venue"):
        derived_v1_to_v2({"venue": "kraken"})
    record = json.loads(dict(v1_lines())["Tick"]) | {"venue": "kraken"}
    with pytest.raises(ValidationError, match="schema_version"):
        decode_tick(json.dumps(record))


def test_derived_v1_to_v2_marks_the_venue_unknown():
    record = {"schema_version": 1, "symbol": "BTC-USD", "timeframe": "tick"}
    assert derived_v1_to_v2(record) == record | {"schema_version": 2, "venue": UNKNOWN_VENUE}


def test_signal_v2_to_v3_names_the_rule_as_the_strategy_without_version_or_condition():
    record = {"schema_version": 2, "signal_id": "0" * 32, "rule": "ema_cross", "side": "BUY"}
    upgraded = signal_v2_to_v3(record)
    assert upgraded == record | {"schema_version": 3, "strategy": "ema_cross", "strategy_version": None,
                                 "condition": None}
    assert record["schema_version"] == 2 and "strategy" not in record
    with pytest.raises(ValueError, match="no strategy"):
        signal_v2_to_v3(record | {"strategy": "ema_cross"})


def test_a_v2_signal_as_the_previous_release_wrote_it_decodes_and_reencodes_as_v3():
    current = next(e for e in current_examples() if type(e) is Signal)
    v2 = {k: v for k, v in json.loads(encode(current)).items() if k not in ("strategy", "strategy_version", "condition")}
    decoded = decode_versioned(Signal, json.dumps(v2 | {"schema_version": 2}))
    assert decoded.written_version == 2
    assert decoded.event == current.model_copy(update={"strategy_version": None, "condition": None})
    assert json.loads(encode(decoded.event))["schema_version"] == 3


def test_candle_v2_to_v3_marks_the_candle_final():
    record = {"schema_version": 2, "symbol": "BTC-USD", "trade_count": 3, "ts_event": "x"}
    upgraded = candle_v2_to_v3(record)
    assert upgraded == record | {"schema_version": 3, "final": True}
    assert list(upgraded) == ["schema_version", "symbol", "trade_count", "final", "ts_event"]
    assert record["schema_version"] == 2 and "final" not in record
    with pytest.raises(ValueError, match="no final"):
        candle_v2_to_v3(record | {"final": False})


def test_a_v2_candle_as_the_previous_release_wrote_it_decodes_as_a_final_v3_candle():
    current = next(e for e in current_examples() if type(e) is Candle)
    v2 = {k: v for k, v in json.loads(encode(current)).items() if k != "final"}
    decoded = decode_versioned(Candle, json.dumps(v2 | {"schema_version": 2}))
    assert decoded.written_version == 2
    assert decoded.event == current and decoded.event.final is True
    assert encode(decoded.event) == encode(current)  # upcast field order: byte-equal to a v3 record
    with pytest.raises(ValidationError):  # a v2 record claiming final=False is refused, not guessed at
        decode_versioned(Candle, json.dumps(v2 | {"schema_version": 2, "final": False}))


# -- decoding ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("event", current_examples(), ids=lambda e: type(e).__name__)
def test_every_current_event_decodes_to_itself(event):
    decoded = decode_versioned(type(event), encode(event))
    assert decoded.event == event and decoded.written_version == event.schema_version
    assert encode(decoded.event) == encode(event)
    assert decode(type(event), encode(event).decode()) == event  # str as well as bytes


@pytest.mark.parametrize(("name", "text"), v1_lines(), ids=[name for name, _ in v1_lines()])
def test_every_v1_record_of_the_v1_release_decodes_to_the_current_version(name, text):
    model = {chain.model.__name__: chain.model for chain in CHAINS.values()}[name]
    decoded = decode_versioned(model, text)
    event = decoded.event
    assert decoded.written_version == 1
    assert event.schema_version == model.model_fields["schema_version"].default
    v1 = getattr(events_v1, name).model_validate_json(text)
    expected = v1.model_dump() | {"schema_version": event.schema_version}
    if hasattr(event, "venue"):
        expected["venue"] = v1.source if name == "Tick" else UNKNOWN_VENUE
    if name == "Signal":  # version 3: one of the four fixed rules, its version and condition not recorded
        expected |= {"strategy": v1.rule, "strategy_version": None, "condition": None}
    if name == "Candle":  # version 3: v1 wrote closed candles only
        expected["final"] = True
    assert event.model_dump() == expected


def test_a_v1_tick_without_a_schema_version_field_is_version_1():
    record = json.loads(dict(v1_lines())["Tick"])
    del record["schema_version"]
    tick = decode_tick(json.dumps(record))
    assert tick.venue == record["source"] and tick.schema_version == 2


def test_a_v1_tick_decodes_to_the_same_tick_as_its_v2_twin():
    v1 = events_v1.Tick(symbol="ETH-USD", price=3.5, volume=None, ts_event=T0, ts_init=T0, source="simulator",
                        source_id="ETH-USD:1")
    v2 = Tick(symbol="ETH-USD", venue="simulator", price=3.5, volume=None, ts_event=T0, ts_init=T0,
              source="simulator", source_id="ETH-USD:1")
    assert decode_tick(events_v1.encode(v1)) == decode_tick(encode(v2)) == v2


@pytest.mark.parametrize("model", list(CHAINS))
def test_a_record_from_a_future_release_is_refused_with_its_own_reason(model):
    event = next(e for e in current_examples() if type(e) is model)
    future = json.loads(encode(event)) | {"schema_version": model.model_fields["schema_version"].default + 1,
                                          "new_field": [1, 2]}
    with pytest.raises(UnsupportedSchemaVersionError) as raised:
        decode(model, json.dumps(future))
    assert raised.value.reason == SCHEMA_VERSION_UNSUPPORTED == "schema_version_unsupported"
    assert raised.value.version == future["schema_version"]


@pytest.mark.parametrize("payload", [b"", b"not json", b"[1]", b'{"schema_version": "1"}', b'{"schema_version": 0}',
                                     b'{"schema_version": true}', b'{"schema_version": 1, "symbol": "BTC-USD"}',
                                     b'{"schema_version": 2, "symbol": "BTC-USD"}', b"\xff\xfe"])
def test_a_record_that_is_no_valid_tick_of_any_version_is_a_validation_error(payload):
    with pytest.raises(ValidationError):
        decode_tick(payload)


def test_an_invalid_v1_tick_stays_invalid_after_upcasting():
    record = json.loads(dict(v1_lines())["Tick"]) | {"price": -1}
    with pytest.raises(ValidationError, match="price"):
        decode_tick(json.dumps(record))


def test_record_key_is_the_symbol_for_v1_and_the_instrument_after():
    tick = current_examples()[0]
    assert record_key(tick, 1) == b"BTC-USD"
    assert record_key(tick, 2) == b"BTC-USD@coinbase"
    assert record_key(current_examples()[1], 1) is None  # a dead letter has no instrument
    outcome = next(event for event in current_examples() if isinstance(event, SignalOutcome))
    assert record_key(outcome, 1) == b"BTC-USD@" + outcome.venue.encode()  # version 1 already had venues


@given(symbol=st.from_regex(r"[A-Z0-9][A-Z0-9\-._]{0,31}", fullmatch=True),
       source=st.text(min_size=1, max_size=64),
       price=st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_any_valid_v1_tick_decodes_with_its_fields_kept(symbol, source, price):
    v1 = events_v1.Tick(symbol=symbol, price=price, ts_event=T0, ts_init=T0, source=source, source_id="1")
    tick = upcasters.decode_tick(events_v1.encode(v1))
    assert (tick.symbol, tick.price, tick.source, tick.ts_event) == (symbol, price, source, T0)
