"""The view documents: what the materializer stores besides the events themselves, and what readers return.

Events (Tick, Candle, IndicatorSnapshot, Signal, DailySummary) are stored as their own
canonical JSON (``schemas.events.encode``). The only document of our own is the stored
recommendation; the rest are read-side envelopes (the API's response models and the
``stockstream query --json`` output), all frozen pydantic models so the OpenAPI schema is exact.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import (
    Candle,
    DailySummary,
    IndicatorSnapshot,
    Side,
    Signal,
    Symbol,
    Tick,
    Timeframe,
    UtcDatetime,
)


class ViewModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecommendationSource(ViewModel):
    """The signal that set a recommendation, and when that recommendation decays to HOLD.

    ``expires_at`` = the signal's ``ts_event`` + ``RECOMMENDATION_DECAY_SECONDS``; it is
    computed by the materializer from the event, so a rebuild stores the same document.
    """

    signal_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    symbol: Symbol
    timeframe: Timeframe
    rule: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    side: Side
    price: float
    ts_event: UtcDatetime
    expires_at: UtcDatetime


class Recommendation(ViewModel):
    """The current recommendation of a symbol (for one timeframe, or across all when ``timeframe`` is null).

    ``state``: ``active`` — the last signal still holds; ``decayed`` — it is older than the
    decay time, so the recommendation is HOLD; ``none`` — no signal was ever seen.
    """

    symbol: Symbol
    timeframe: Timeframe | None
    side: Literal["BUY", "SELL", "HOLD"]
    state: Literal["active", "decayed", "none"]
    set_by: RecommendationSource | None
    as_of: UtcDatetime


class SymbolList(ViewModel):
    symbols: list[str]
    timeframes: list[str] = Field(description="Timeframes this deployment computes: 'tick' and its candle timeframes")


class Latest(ViewModel):
    """Latest tick and latest indicator snapshot per timeframe (keyed by timeframe)."""

    symbol: Symbol
    tick: Tick | None
    indicators: dict[str, IndicatorSnapshot]


class CandleSeries(ViewModel):
    """Recent candles, oldest first."""

    symbol: Symbol
    timeframe: Timeframe
    candles: list[Candle]


class IndicatorSeries(ViewModel):
    """The latest snapshot and the recent history (oldest first) of one timeframe."""

    symbol: Symbol
    timeframe: Timeframe
    latest: IndicatorSnapshot | None
    history: list[IndicatorSnapshot]


class SignalList(ViewModel):
    """Recent signals, newest first."""

    symbol: Symbol
    signals: list[Signal]


class DailyList(ViewModel):
    """Daily summaries, oldest day first."""

    symbol: Symbol
    days: list[DailySummary]
