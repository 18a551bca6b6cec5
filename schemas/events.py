"""The events of the log. Every one is a frozen fact with a ``schema_version``.

Time fields:
- ``ts_event``: when it happened at the source (a tick's trade time) or, for a
  derived event, the event time of the input that caused it.
- ``ts_init``: when stockstream created the fact. For ticks that is ingest time.
  Derived events (candles, indicators, signals, aggregates) carry the ``ts_init``
  of the tick that caused them, so replaying the log yields byte-identical events;
  when a derived record was written is its Kafka record timestamp.

Every per-instrument event carries ``symbol`` and ``venue`` (the instrument, see
:mod:`schemas.instruments`) and its Kafka key is the instrument ``SYMBOL@venue``.

Producers serialize with :func:`encode`. Consumers never parse with ``model_validate_json``:
they decode through :mod:`schemas.upcasters` (``decode_tick(bytes)`` …), which upgrades a
record written by any earlier release (the log is kept forever) and refuses a version from the
future; a payload that does not decode goes to a DLQ. Changing a model here means bumping its
``schema_version`` and adding one step to its upcaster chain (docs/schemas.md).
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

from schemas.instruments import VENUE_PATTERN
from schemas.symbols import NORMALIZED_SYMBOL_PATTERN
from schemas.timeframes import TIMEFRAME_PATTERN


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+05:00 parses but has no UTC datetime. pydantic turns only ValueError into a
        # validation error: an OverflowError would escape model_validate_json and stop the consumer.
        raise ValueError("date-time has no UTC equivalent (out of range)") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Symbol = Annotated[str, Field(pattern=NORMALIZED_SYMBOL_PATTERN, max_length=32)]
Venue = Annotated[str, Field(pattern=VENUE_PATTERN, max_length=32)]
Timeframe = Annotated[str, Field(pattern=TIMEFRAME_PATTERN)]
Side = Literal["BUY", "SELL"]
StrategyName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
"""A strategy's name as a strategy file spells it (``trend_pullback``, ``Breakout-1h``)."""
StrategyVersion = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
"""16 hex digits of SHA-256 over the strategy's normalized definition (docs/core.md, "Versions")."""
MAX_CONDITION_LENGTH = 2_000
Horizon = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,8}(ms|s|m|h|d)$")]


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
    """One validated price observation of one instrument; the log of record (topic ``ticks``, key = ``SYMBOL@venue``).

    Version 2 added ``venue`` (a v1 tick upcasts to venue = its ``source``).
    """

    schema_version: Literal[2] = 2
    symbol: Symbol
    venue: Venue
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
    """OHLCV over one event-time window ``[ts_open, ts_close)`` (topic ``candles.<tf>``).

    ``final`` is False for a *forming* candle: the window's running OHLCV while it is still open,
    sent at most once per ``LIVE_UPDATE_INTERVAL`` of stream time (docs/core.md, "Live candles and
    quiet feeds"); True for the one closed candle of the window, which supersedes every forming one.
    Indicators and strategies only ever see final candles. Version 3 added ``final`` (a v2 candle
    was always closed: it upcasts to ``final=True``).
    """

    schema_version: Literal[3] = 3
    symbol: Symbol
    venue: Venue
    timeframe: Timeframe
    ts_open: UtcDatetime
    ts_close: UtcDatetime
    open: PositivePrice
    high: PositivePrice
    low: PositivePrice
    close: PositivePrice
    volume: NonNegative
    trade_count: Annotated[int, Field(ge=1)]
    final: bool
    ts_event: UtcDatetime
    ts_init: UtcDatetime
    lineage: Lineage


class IndicatorSnapshot(Event):
    """Indicator values after one price of a symbol and timeframe (topic ``indicators``).

    ``values`` holds every configured indicator by name (``sma_20``, ``rsi_14``,
    ``macd``, ``bb_upper``, ``vwap`` …); ``None`` where it is not defined yet.
    """

    schema_version: Literal[2] = 2
    symbol: Symbol
    venue: Venue
    timeframe: Timeframe
    price: PositivePrice
    values: dict[str, FiniteFloat | None]
    ts_event: UtcDatetime
    ts_init: UtcDatetime
    lineage: Lineage


class Signal(Event):
    """A BUY/SELL recommendation fired by a strategy on a transition (topic ``signals``).

    ``strategy`` and ``timeframe`` identify the strategy that fired (a strategy file may define one
    name on several timeframes), ``strategy_version`` its normalized definition and ``condition``
    the rule that fired, as written in its file. ``rule`` is the strategy's name too: it is the
    field version 2 named the rule by, kept so readers of v2 signals go on working.

    Version 3 added ``strategy``, ``strategy_version`` and ``condition``; a v2 signal (one of the
    four fixed rules) upcasts to ``strategy`` = its rule and no version or condition (None: the
    release that wrote it did not record them).
    """

    schema_version: Literal[3] = 3
    signal_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    symbol: Symbol
    venue: Venue
    timeframe: Timeframe
    rule: StrategyName
    strategy: StrategyName
    strategy_version: StrategyVersion | None
    condition: Annotated[str, Field(max_length=MAX_CONDITION_LENGTH)] | None
    side: Side
    price: PositivePrice
    indicators: dict[str, FiniteFloat | None]
    ts_event: UtcDatetime
    ts_init: UtcDatetime
    lineage: Lineage


class DailySummary(Event):
    """The running (then final) summary of one symbol for one UTC day (topic ``aggregates.daily``)."""

    schema_version: Literal[2] = 2
    symbol: Symbol
    venue: Venue
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


class SignalOutcome(Event):
    """What happened after a signal, at one horizon (topic ``signals.outcomes``, key = the instrument).

    Definition (docs/core.md, "Scorecards"): ``price`` is the price of the first accepted tick of the
    instrument, processed after the signal, whose event time is ≥ ``signal_ts + horizon``;
    ``ts_event``, ``ts_init`` and ``lineage`` are that tick's. ``return_gross`` = side · (price /
    signal_price − 1) with side +1 for BUY and −1 for SELL; ``return_net`` = ``return_gross`` −
    ``fee`` (the round-trip cost as a fraction, ``SCORECARD_FEE``). ``outcome_id`` is
    deterministic: the signal id and the horizon.
    """

    schema_version: Literal[1] = 1
    outcome_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    signal_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    symbol: Symbol
    venue: Venue
    strategy: StrategyName
    strategy_version: StrategyVersion | None
    timeframe: Timeframe
    side: Side
    horizon: Horizon
    signal_price: PositivePrice
    signal_ts: UtcDatetime
    price: PositivePrice
    return_gross: FiniteFloat
    return_net: FiniteFloat
    fee: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, lt=1)]
    ts_event: UtcDatetime
    ts_init: UtcDatetime
    lineage: Lineage


def make_outcome_id(signal_id: str, horizon: str) -> str:
    """Deterministic outcome id: one per signal and horizon."""
    return hashlib.sha256(f"{signal_id}|{horizon}".encode()).hexdigest()[:32]


def make_signal_id(
    symbol: str, venue: str, timeframe: str, rule: str, side: str, ts_event: datetime, partition: int, offset: int
) -> str:
    """Deterministic signal id: the same instrument, log position and rule always give the same id.

    The topic name is left out on purpose so a namespaced or mirrored copy of the
    log yields the same ids. The instrument is in: one input tick can move two instruments
    (its venue's and the composite index), and their signals must not share an id.
    """
    return signal_id_of(f"{symbol}@{venue}", timeframe, rule, side, ts_event.isoformat(), partition, offset)


def signal_id_of(instrument: str, timeframe: str, rule: str, side: str, ts_event_iso: str, partition: int,
                 offset: int) -> str:
    """:func:`make_signal_id` from the instrument's text (``SYMBOL@venue``) and ``ts_event.isoformat()``.

    For the pipeline step, which labels several signals of one instant and formats that instant once.
    """
    key = f"{instrument}|{timeframe}|{rule}|{side}|{ts_event_iso}|{partition}|{offset}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def encode(event: Event) -> bytes:
    """Serialize an event for Kafka (compact JSON, floats round-trip exactly)."""
    return event.model_dump_json().encode()
