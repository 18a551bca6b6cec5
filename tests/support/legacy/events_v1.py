"""The events of the log as of schema version 1 (frozen copy of the release before instruments; do not edit).

Time fields:
- ``ts_event``: when it happened at the source (a tick's trade time) or, for a
  derived event, the event time of the input that caused it.
- ``ts_init``: when stockstream created the fact. For ticks that is ingest time.
  Derived events (candles, indicators, signals, aggregates) carry the ``ts_init``
  of the tick that caused them, so replaying the log yields byte-identical events;
  when a derived record was written is its Kafka record timestamp.

Producers serialize with :func:`encode` and consumers parse with
``Model.model_validate_json``; a payload that does not parse goes to a DLQ.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

NORMALIZED_SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9\-._]{0,31}$"
TIMEFRAME_PATTERN = r"^(tick|[1-9][0-9]{0,3}[smhd])$"


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+05:00 parses but has no UTC datetime. pydantic turns only ValueError into a
        # validation error: an OverflowError would escape model_validate_json and stop the consumer.
        raise ValueError("date-time has no UTC equivalent (out of range)") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Symbol = Annotated[str, Field(pattern=NORMALIZED_SYMBOL_PATTERN, max_length=32)]
Timeframe = Annotated[str, Field(pattern=TIMEFRAME_PATTERN)]
Side = Literal["BUY", "SELL"]


def _encodable(value: str) -> str:
    # A lone surrogate (a JSON "\ud800" escape, a surrogate-escaped file name) cannot be written as UTF-8,
    # so a dead letter holding one would fail to serialize: keep it visible as a backslash escape instead.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


EncodableText = Annotated[str, AfterValidator(_encodable)]
# Strict floats checked inside pydantic-core (no Python validator on the hot path): booleans and
# strings are refused (lax mode would turn True into 1.0 and "1e3" into 1000.0), ints are
# accepted, NaN and ±inf are refused. Outside data is converted to floats deliberately at the
# boundary (processors/ingest/validation.py) before a Tick is built.
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
PositivePrice = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]


class Event(BaseModel):
    """Base of every event: immutable, no unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Lineage(Event):
    """Where the input that caused a derived event sits in the log."""

    topic: str
    partition: int
    offset: int


class Tick(Event):
    """One validated price observation; the log of record (topic ``ticks``, key = symbol)."""

    schema_version: Literal[1] = 1
    symbol: Symbol
    price: PositivePrice
    volume: NonNegative | None = None
    bid: PositivePrice | None = None
    ask: PositivePrice | None = None
    ts_event: UtcDatetime
    ts_init: UtcDatetime
    source: Annotated[str, Field(min_length=1, max_length=64)]
    source_id: Annotated[str, Field(min_length=1, max_length=128)]


class DeadLetter(Event):
    """A record we refused, with the reason; nothing is dropped silently.

    ``reason`` is a short stable code (``price_not_positive``, ``late``, …) fit for a
    metric label; ``detail`` is the human explanation; ``raw`` the payload as text
    (undecodable bytes are backslash-escaped).
    """

    schema_version: Literal[1] = 1
    source: EncodableText
    reason: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    detail: EncodableText
    raw: EncodableText
    ts_init: UtcDatetime
    origin: Lineage | None = None


class Candle(Event):
    """OHLCV over one event-time window ``[ts_open, ts_close)`` (topic ``candles.<tf>``)."""

    schema_version: Literal[1] = 1
    symbol: Symbol
    timeframe: Timeframe
    ts_open: UtcDatetime
    ts_close: UtcDatetime
    open: PositivePrice
    high: PositivePrice
    low: PositivePrice
    close: PositivePrice
    volume: NonNegative
    trade_count: Annotated[int, Field(ge=1)]
    ts_event: UtcDatetime
    ts_init: UtcDatetime
    lineage: Lineage


class IndicatorSnapshot(Event):
    """Indicator values after one price of a symbol and timeframe (topic ``indicators``).

    ``values`` holds every configured indicator by name (``sma_20``, ``rsi_14``,
    ``macd``, ``bb_upper``, ``vwap`` …); ``None`` where it is not defined yet.
    """

    schema_version: Literal[1] = 1
    symbol: Symbol
    timeframe: Timeframe
    price: PositivePrice
    values: dict[str, FiniteFloat | None]
    ts_event: UtcDatetime
    ts_init: UtcDatetime
    lineage: Lineage


class Signal(Event):
    """A BUY/SELL recommendation fired by a rule on a transition (topic ``signals``)."""

    schema_version: Literal[1] = 1
    signal_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    symbol: Symbol
    timeframe: Timeframe
    rule: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    side: Side
    price: PositivePrice
    indicators: dict[str, FiniteFloat | None]
    ts_event: UtcDatetime
    ts_init: UtcDatetime
    lineage: Lineage


class DailySummary(Event):
    """The running (then final) summary of one symbol for one UTC day (topic ``aggregates.daily``)."""

    schema_version: Literal[1] = 1
    symbol: Symbol
    date: date
    open: PositivePrice
    high: PositivePrice
    low: PositivePrice
    close: PositivePrice
    mean_price: PositivePrice
    vwap: PositivePrice | None
    volume: NonNegative
    tick_count: Annotated[int, Field(ge=1)]
    buy_count: Annotated[int, Field(ge=0)]
    sell_count: Annotated[int, Field(ge=0)]
    final: bool
    ts_event: UtcDatetime
    ts_init: UtcDatetime
    lineage: Lineage

    @field_validator("date", mode="before")
    @classmethod
    def _date_not_datetime(cls, value: object) -> object:
        if isinstance(value, datetime):
            raise ValueError("date must be a calendar date, not a datetime")
        return value


def make_signal_id(
    symbol: str, timeframe: str, rule: str, side: str, ts_event: datetime, partition: int, offset: int
) -> str:
    """Deterministic signal id: the same log position and rule always give the same id.

    The topic name is left out on purpose so a namespaced or mirrored copy of the
    log yields the same ids.
    """
    key = f"{symbol}|{timeframe}|{rule}|{side}|{ts_event.isoformat()}|{partition}|{offset}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def encode(event: Event) -> bytes:
    """Serialize an event for Kafka (compact JSON, floats round-trip exactly)."""
    return event.model_dump_json().encode()
