"""Value checks: amounts, timestamps, symbols, the tick builder and wire-error mapping."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from processors.ingest import reasons
from processors.ingest.reasons import ALL_REASONS, RecordRejected
from processors.ingest.validation import (
    TimeBounds,
    build_tick,
    parse_amount,
    parse_epoch,
    parse_file_timestamp,
    parse_iso_timestamp,
    parse_symbol,
    parse_venue,
    rejection_from_validation_error,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    ("10347.92", 10347.92), ("10347.92000000", 10347.92), (" 42 ", 42.0), ("1e3", 1000.0), (".5", 0.5),
    (65000, 65000.0), (0.01, 0.01), ("+3.5", 3.5),
])
def test_price_accepts_decimal_strings_and_numbers(value, expected):
    assert parse_amount(value, "price", required=True) == expected


@pytest.mark.parametrize(("value", "reason"), [
    (None, "price_missing"), ("", "price_missing"), ("   ", "price_missing"),
    ("NaN", "price_not_finite"), ("nan", "price_not_finite"), ("inf", "price_not_finite"),
    ("-Infinity", "price_not_finite"), (math.nan, "price_not_finite"), (math.inf, "price_not_finite"),
    ("1e400", "price_not_finite"), (10**400, "price_not_finite"),
    ("abc", "price_not_number"), ("1_000", "price_not_number"), ("0x10", "price_not_number"),
    ("1,5", "price_not_number"), ("$5", "price_not_number"), (True, "price_not_number"),
    (False, "price_not_number"), ([1], "price_not_number"), ({"v": 1}, "price_not_number"),
    ("0", "price_not_positive"), ("-1.5", "price_not_positive"), (0, "price_not_positive"),
])
def test_price_rejections_have_precise_reasons(value, reason):
    with pytest.raises(RecordRejected) as caught:
        parse_amount(value, "price", required=True)
    assert caught.value.reason == reason


def test_volume_may_be_zero_or_absent_but_not_negative():
    assert parse_amount("0", "volume", required=False) == 0.0
    assert parse_amount(None, "volume", required=False) is None
    assert parse_amount("", "volume", required=False) is None
    for value, reason in [("-0.1", "volume_negative"), ("NaN", "volume_not_finite"), (True, "volume_not_number")]:
        with pytest.raises(RecordRejected) as caught:
            parse_amount(value, "volume", required=False)
        assert caught.value.reason == reason


@given(st.floats(min_value=1e-12, max_value=1e15, allow_nan=False, allow_infinity=False))
def test_any_positive_finite_float_round_trips_through_its_text(value):
    assert parse_amount(repr(value), "price", required=True) == value


@given(st.text(max_size=20))
def test_arbitrary_text_is_a_number_or_a_known_rejection(text):
    try:
        number = parse_amount(text, "price", required=True)
    except RecordRejected as rejected:
        assert rejected.reason in ALL_REASONS
    else:
        assert number is not None and math.isfinite(number) and number > 0


@pytest.mark.parametrize(("text", "expected"), [
    ("2022-10-19T23:28:22.061769Z", datetime(2022, 10, 19, 23, 28, 22, 61769, tzinfo=UTC)),
    ("2023-09-25T07:49:37.708706789Z", datetime(2023, 9, 25, 7, 49, 37, 708706, tzinfo=UTC)),
    ("2024-01-01T02:00:00+02:00", datetime(2024, 1, 1, 0, 0, tzinfo=UTC)),
])
def test_iso_timestamps_become_utc(text, expected):
    parsed = parse_iso_timestamp(text)
    assert parsed == expected and parsed.tzinfo is UTC


def test_naive_iso_is_rejected_unless_the_format_says_utc():
    with pytest.raises(RecordRejected) as caught:
        parse_iso_timestamp("2024-01-01 00:00:00")
    assert caught.value.reason == reasons.TIMESTAMP_INVALID
    assert parse_iso_timestamp("2024-01-01 00:00:00", naive_as_utc=True) == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    (1_714_564_800, datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("1714564800", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    (1_714_564_800_000, datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("1714564800500", datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)),
    (1_714_564_800_000_000, datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01 12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
])
def test_file_timestamps_accept_epoch_units_and_iso(value, expected):
    assert parse_file_timestamp(value) == expected


@pytest.mark.parametrize(("value", "reason"), [
    (None, "timestamp_missing"), ("", "timestamp_missing"), ("yesterday", "timestamp_invalid"),
    ("2024-13-01T00:00:00Z", "timestamp_invalid"), (True, "timestamp_invalid"), (-5, "timestamp_invalid"),
    (1e300, "timestamp_invalid"), ([2024], "timestamp_invalid"),
])
def test_bad_file_timestamps(value, reason):
    with pytest.raises(RecordRejected) as caught:
        parse_file_timestamp(value)
    assert caught.value.reason == reason


def test_binance_milliseconds_are_explicit():
    assert parse_epoch(1_714_564_800_123, unit="ms") == datetime(2024, 5, 1, 12, 0, 0, 123_000, tzinfo=UTC)


def test_time_bounds_reject_absurd_times():
    bounds = TimeBounds(earliest=datetime(2009, 1, 3, tzinfo=UTC), max_future=timedelta(seconds=60))
    assert bounds.check(NOW + timedelta(seconds=59), NOW)
    for when, reason in [(datetime(1970, 1, 1, tzinfo=UTC), "timestamp_too_old"),
                         (NOW + timedelta(seconds=61), "timestamp_in_future")]:
        with pytest.raises(RecordRejected) as caught:
            bounds.check(when, NOW)
        assert caught.value.reason == reason


@pytest.mark.parametrize(("raw", "expected"), [("btc/usd", "BTC-USD"), (" BTC-USD ", "BTC-USD"), ("BRK.B", "BRK.B")])
def test_symbols_are_normalized(raw, expected):
    assert parse_symbol(raw) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    (None, "symbol_missing"), ("", "symbol_missing"), ("BTC USD", "symbol_invalid"), ("-BTC", "symbol_invalid"),
    ("X" * 40, "symbol_invalid"), (42, "symbol_invalid"), ("BTC-€", "symbol_invalid"),
])
def test_bad_symbols(raw, reason):
    with pytest.raises(RecordRejected) as caught:
        parse_symbol(raw)
    assert caught.value.reason == reason


def test_symbol_outside_the_configured_set_is_unexpected():
    with pytest.raises(RecordRejected) as caught:
        parse_symbol("ETH-USD", frozenset({"BTC-USD"}))
    assert caught.value.reason == reasons.SYMBOL_UNEXPECTED


def test_build_tick_checks_bounds_and_stamps_ingest_time():
    tick = build_tick(source="file", venue="file", source_id="f:1", symbol="BTC-USD", price=1.5, volume=None,
                      ts_event=NOW - timedelta(seconds=1), ts_init=NOW, bounds=TimeBounds())
    assert tick.ts_init == NOW and tick.price == 1.5
    with pytest.raises(RecordRejected) as caught:
        build_tick(source="file", venue="file", source_id="f:1", symbol="BTC-USD", price=1.5, ts_event=NOW + timedelta(days=1),
                   ts_init=NOW, bounds=TimeBounds())
    assert caught.value.reason == reasons.TIMESTAMP_IN_FUTURE
    assert tick.venue == "file"
    with pytest.raises(RecordRejected) as caught:
        build_tick(source="file", venue="index", source_id="f:1", symbol="BTC-USD", price=1.5,
                   ts_event=NOW, ts_init=NOW, bounds=TimeBounds())
    assert caught.value.reason == reasons.VENUE_INVALID


@pytest.mark.parametrize(("value", "venue"), [(None, "file"), ("", "file"), ("  ", "file"), ("Kraken", "kraken"),
                                              (" my-replay ", "my-replay")])
def test_parse_venue_defaults_and_lower_cases(value, venue):
    assert parse_venue(value, "file") == venue


@pytest.mark.parametrize("value", ["coin base", "index", "a@b", "x" * 33, 5])
def test_parse_venue_refuses_what_is_no_venue_name(value):
    with pytest.raises(RecordRejected) as caught:
        parse_venue(value, "file")
    assert caught.value.reason == reasons.VENUE_INVALID


class _Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    p: str | None = None
    t: int | None = None
    s: str
    other: int | None = None


@pytest.mark.parametrize(("payload", "reason"), [
    ({"s": "X", "p": True}, "price_not_number"), ({"s": "X", "p": 12.5}, "price_not_number"),
    ({"p": "1"}, "symbol_missing"), ({"s": 5}, "symbol_invalid"), ({"s": "X", "t": "12"}, "trade_id_invalid"),
    ({"s": "X", "other": "y"}, "field_invalid"), ({"s": "X", "zzz": 1}, "field_unexpected"),
])
def test_wire_shape_errors_map_to_reason_codes(payload, reason):
    with pytest.raises(ValidationError) as caught:
        _Wire.model_validate(payload)
    mapped = rejection_from_validation_error(caught.value, {"p": "price", "t": "trade_id", "s": "symbol"})
    assert mapped.reason == reason


def test_reason_codes_form_a_closed_set():
    with pytest.raises(ValueError, match="unknown reason"):
        RecordRejected("made_up", "x")
    assert all(code.replace("_", "").isalnum() and code.islower() for code in ALL_REASONS)
