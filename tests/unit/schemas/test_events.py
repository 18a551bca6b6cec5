"""Every event round-trips through JSON unchanged, is frozen, rejects unknown fields and bad values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.events import (
    Candle,
    DailySummary,
    DeadLetter,
    IndicatorSnapshot,
    Lineage,
    Signal,
    Tick,
    encode,
    make_signal_id,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LINEAGE = Lineage(topic="ticks", partition=1, offset=42)

prices = st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False)
volumes = st.none() | st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
# hypothesis wants naive bounds and attaches the zone itself
times = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001
symbols = st.from_regex(r"[A-Z0-9][A-Z0-9\-._]{0,31}", fullmatch=True)


def examples() -> list:
    signal_id = make_signal_id("BTC-USD", "coinbase", "tick", "ema_cross", "BUY", T0, 1, 42)
    return [
        Tick(symbol="BTC-USD", venue="coinbase", price=10347.92, volume=0.5, bid=10347.91, ask=10348.63, ts_event=T0,
             ts_init=T0 + timedelta(milliseconds=3), source="coinbase", source_id="123"),
        DeadLetter(source="file", reason="price_not_positive", detail="price -1 is not > 0",
                   raw='{"price": -1}', ts_init=T0, origin=LINEAGE),
        Candle(symbol="BTC-USD", venue="kraken", timeframe="1m", ts_open=T0, ts_close=T0 + timedelta(minutes=1), open=1.0,
               high=2.0, low=0.5, close=1.5, volume=3.0, trade_count=4, final=True, ts_event=T0 + timedelta(minutes=1),
               ts_init=T0, lineage=LINEAGE),
        IndicatorSnapshot(symbol="ETH-USD", venue="index", timeframe="tick", price=3000.5,
                          values={"sma_20": 2999.25, "rsi_14": None}, ts_event=T0, ts_init=T0, lineage=LINEAGE),
        Signal(signal_id=signal_id, symbol="BTC-USD", venue="coinbase", timeframe="tick", rule="ema_cross",
               strategy="ema_cross", strategy_version="0123456789abcdef",
               condition="crosses_above(ema(fast), ema(slow))", side="BUY",
               price=10347.92, indicators={"ema_12": 1.0, "ema_26": 0.5}, ts_event=T0, ts_init=T0,
               lineage=LINEAGE),
        DailySummary(symbol="BTC-USD", venue="file", date=date(2026, 11, 27), open=1, high=2, low=0.5, close=1.5,
                     mean_price=1.2, vwap=None, volume=0, tick_count=10, buy_count=1, sell_count=0,
                     final=False, ts_event=T0, ts_init=T0, lineage=LINEAGE),
    ]


@pytest.mark.parametrize("event", examples(), ids=lambda e: type(e).__name__)
def test_every_event_round_trips_through_json_and_is_frozen(event):
    decoded = type(event).model_validate_json(encode(event))
    assert decoded == event
    assert encode(decoded) == encode(event)
    with pytest.raises(ValidationError):
        event.model_copy().__setattr__("schema_version", 3)


@pytest.mark.parametrize("event", examples(), ids=lambda e: type(e).__name__)
def test_unknown_fields_are_rejected(event):
    payload = event.model_dump(mode="json") | {"surprise": 1}
    with pytest.raises(ValidationError, match="surprise"):
        type(event).model_validate(payload)


@given(symbol=symbols, price=prices, volume=volumes, ts_event=times, ts_init=times)
def test_ticks_round_trip_exactly_for_any_valid_values(symbol, price, volume, ts_event, ts_init):
    tick = Tick(symbol=symbol, venue="simulator", price=price, volume=volume, ts_event=ts_event, ts_init=ts_init,
                source="simulator", source_id="1")
    assert Tick.model_validate_json(encode(tick)) == tick


@pytest.mark.parametrize("price", [0, -1, float("nan"), float("inf"), "", "NaN", True, None])
def test_tick_rejects_prices_that_are_not_finite_positive_numbers(price):
    with pytest.raises(ValidationError):
        Tick(symbol="BTC-USD", venue="coinbase", price=price, ts_event=T0, ts_init=T0, source="s", source_id="1")


def test_naive_datetimes_are_rejected_and_offsets_become_utc():
    with pytest.raises(ValidationError, match="timezone"):
        Tick(symbol="BTC-USD", venue="coinbase", price=1, ts_event=datetime(2026, 1, 1), ts_init=T0, source="s", source_id="1")  # noqa: DTZ001
    plus_two = timezone(timedelta(hours=2))
    tick = Tick(symbol="BTC-USD", venue="coinbase", price=1, ts_event=datetime(2026, 1, 1, 14, tzinfo=plus_two), ts_init=T0,
                source="s", source_id="1")
    assert tick.ts_event == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert tick.ts_event.utcoffset() == timedelta(0)


@pytest.mark.parametrize("symbol", ["btc-usd", "", "BTC USD", "B" * 33, "-BTC", "BTC/USD"])
def test_tick_symbol_must_be_normalized(symbol):
    with pytest.raises(ValidationError):
        Tick(symbol=symbol, venue="simulator", price=1, ts_event=T0, ts_init=T0, source="s", source_id="1")


def test_signal_ids_are_deterministic_and_distinct():
    first = make_signal_id("BTC-USD", "coinbase", "tick", "ema_cross", "BUY", T0, 0, 7)
    assert first == make_signal_id("BTC-USD", "coinbase", "tick", "ema_cross", "BUY", T0, 0, 7)
    assert first != make_signal_id("BTC-USD", "coinbase", "tick", "ema_cross", "SELL", T0, 0, 7)
    assert first != make_signal_id("BTC-USD", "coinbase", "tick", "ema_cross", "BUY", T0, 0, 8)
    assert len(first) == 32 and int(first, 16) >= 0
    # One input tick moves its venue's instrument and the composite: their signals differ.
    assert first != make_signal_id("BTC-USD", "index", "tick", "ema_cross", "BUY", T0, 0, 7)


@pytest.mark.parametrize("venue", ["", "Coinbase", "coin base", "a@b", "x" * 33, None])
def test_tick_venue_must_be_a_venue_name(venue):
    with pytest.raises(ValidationError):
        Tick(symbol="BTC-USD", venue=venue, price=1, ts_event=T0, ts_init=T0, source="s", source_id="1")
