"""Instruments: a venue's symbol (``BTC-USD@coinbase``), the unit of state, ordering and keys.

A tick belongs to an instrument = (symbol, venue). Two venues quoting the same symbol are two
price series: every Kafka key of a per-instrument topic (``ticks``, ``candles.<tf>``,
``indicators``, ``signals``, ``aggregates.daily``), every processor state and every Redis view
is the instrument's text form ``SYMBOL@venue``. This module is the one place that spells it:
:func:`format_instrument` / :func:`parse_instrument` (and :class:`Instrument`) are used by every
producer and consumer, so a key written by ingest is a key the processor, the materializer and
the API agree on.

Venues are lower-case names (``coinbase``, ``binance``, ``kraken``, ``alphavantage``,
``simulator``, ``file``, or a name given to a file replay). ``index`` is reserved for the
composite index (the median over a symbol's venues, processors/core/composite.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.symbols import NORMALIZED_SYMBOL_PATTERN

VENUE_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,31}$"
VENUE_MAX_LENGTH = 32
SEPARATOR = "@"
COMPOSITE_VENUE = "index"
"""The venue of a composite instrument (``BTC-USD@index``); no feed may publish under it."""
UNKNOWN_VENUE = "unknown"
"""The venue of a version-1 derived event (candle, snapshot, signal, summary): v1 did not record it."""

_VENUE = re.compile(VENUE_PATTERN)
_SYMBOL = re.compile(NORMALIZED_SYMBOL_PATTERN)
_NOT_VENUE_CHARACTER = re.compile(r"[^a-z0-9_\-]+")


class InvalidInstrumentError(ValueError):
    """An instrument text, symbol or venue that does not match its pattern; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class Instrument:
    """A venue's symbol. Build it with :meth:`of` (checked) or :func:`parse_instrument`."""

    symbol: str
    venue: str

    @classmethod
    def of(cls, symbol: str, venue: str) -> Instrument:
        """The instrument of ``symbol`` on ``venue``; raises :class:`InvalidInstrumentError` for a bad part."""
        check_symbol(symbol)
        check_venue(venue)
        return cls(symbol, venue)

    @property
    def text(self) -> str:
        """``SYMBOL@venue``: the record key, state key and view key of the instrument."""
        return f"{self.symbol}{SEPARATOR}{self.venue}"

    @property
    def key(self) -> bytes:
        """:attr:`text` as the Kafka record key."""
        return self.text.encode()

    @property
    def is_composite(self) -> bool:
        return self.venue == COMPOSITE_VENUE

    def __str__(self) -> str:
        return self.text


def check_venue(venue: object) -> str:
    """``venue`` unchanged when it is a valid venue name, else :class:`InvalidInstrumentError`."""
    if not isinstance(venue, str) or not _VENUE.fullmatch(venue):
        raise InvalidInstrumentError(
            f"venue {venue!r} must be 1-{VENUE_MAX_LENGTH} lower-case letters, digits, '-' or '_'")
    return venue


def check_symbol(symbol: object) -> str:
    """``symbol`` unchanged when it is a normalized symbol, else :class:`InvalidInstrumentError`."""
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise InvalidInstrumentError(f"symbol {symbol!r} is not a normalized symbol like BTC-USD")
    return symbol


def format_instrument(symbol: str, venue: str) -> str:
    """``BTC-USD``, ``coinbase`` → ``BTC-USD@coinbase`` (unchecked: for parts taken from a valid event)."""
    return f"{symbol}{SEPARATOR}{venue}"


def instrument_key(symbol: str, venue: str) -> bytes:
    """The Kafka record key of an instrument (unchecked, like :func:`format_instrument`)."""
    return f"{symbol}{SEPARATOR}{venue}".encode()


def parse_instrument(text: str) -> Instrument:
    """``BTC-USD@coinbase`` → ``Instrument("BTC-USD", "coinbase")``; :class:`InvalidInstrumentError` otherwise."""
    if not isinstance(text, str):
        raise InvalidInstrumentError(f"instrument must be a string, got {type(text).__name__}")
    symbol, separator, venue = text.rpartition(SEPARATOR)
    if not separator:
        raise InvalidInstrumentError(f"instrument {text!r} is not SYMBOL@venue")
    return Instrument.of(symbol, venue)


def venue_from_source(source: str) -> str:
    """The venue a version-1 tick's ``source`` stands for (the v1 → v2 upcaster: venue = source).

    Sources of the v1 release were already venue names (``coinbase``, ``simulator``, ``file``…);
    anything else (a custom simulator name with capitals or dots) is lower-cased and every run of
    other characters becomes ``-``, cut to 32 characters; ``unknown`` when nothing is left.
    """
    if _VENUE.fullmatch(source):
        return source
    cleaned = _NOT_VENUE_CHARACTER.sub("-", source.lower()).strip("-_")[:VENUE_MAX_LENGTH].strip("-_")
    return cleaned if cleaned and _VENUE.fullmatch(cleaned) else UNKNOWN_VENUE
