"""Instrument text ``SYMBOL@venue``: format and parse are inverse, bad parts are refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.instruments import (
    COMPOSITE_VENUE,
    Instrument,
    InvalidInstrumentError,
    format_instrument,
    instrument_key,
    parse_instrument,
)

symbols = st.from_regex(r"[A-Z0-9][A-Z0-9\-._]{0,31}", fullmatch=True)
venues = st.from_regex(r"[a-z0-9][a-z0-9_\-]{0,31}", fullmatch=True)


@given(symbol=symbols, venue=venues)
def test_parse_inverts_format(symbol, venue):
    text = format_instrument(symbol, venue)
    assert parse_instrument(text) == Instrument(symbol, venue) == Instrument.of(symbol, venue)
    assert parse_instrument(text).text == text and parse_instrument(text).key == instrument_key(symbol, venue)


def test_the_composite_venue_is_index():
    assert parse_instrument("BTC-USD@index").is_composite and COMPOSITE_VENUE == "index"
    assert not parse_instrument("BTC-USD@coinbase").is_composite


@pytest.mark.parametrize("text", ["BTC-USD", "BTC-USD@", "@coinbase", "btc-usd@coinbase", "BTC-USD@Coinbase",
                                  "BTC-USD@coin base", "BTC-USD@a@b", "BTC-USD@" + "x" * 33, ""])
def test_malformed_instruments_are_refused(text):
    with pytest.raises(InvalidInstrumentError):
        parse_instrument(text)
