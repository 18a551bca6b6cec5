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
    Venue,
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
    venue: Venue
    timeframe: Timeframe
    rule: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    strategy_version: str | None = Field(None, pattern=r"^[0-9a-f]{16}$",
                                         description="the strategy's version (None: a version-2 signal)")
    side: Side
    price: float
    ts_event: UtcDatetime
    expires_at: UtcDatetime


class Recommendation(ViewModel):
    """The current recommendation of an instrument (for one timeframe, or across all when ``timeframe`` is null;
    for one strategy — its name, ``set_by.rule`` — or across all when ``strategy`` is null).

    ``state``: ``active`` — the last signal still holds; ``decayed`` — it is older than the
    decay time, so the recommendation is HOLD; ``none`` — no signal was ever seen.
    """

    symbol: Symbol
    venue: Venue
    timeframe: Timeframe | None
    strategy: str | None = None
    side: Literal["BUY", "SELL", "HOLD"]
    state: Literal["active", "decayed", "none"]
    set_by: RecommendationSource | None
    as_of: UtcDatetime


class SymbolList(ViewModel):
    symbols: list[str] = Field(description="Every symbol of any venue; /instruments lists each venue's")
    timeframes: list[str] = Field(description="Timeframes this deployment computes: 'tick' and its candle timeframes")


class InstrumentSummary(ViewModel):
    """One instrument (a venue's symbol), when it last ticked and whether its source looks alive.

    ``health``: ``fresh`` — the last tick was ingested less than ``stale_after_seconds`` ago;
    ``stale`` — longer ago (a stopped feed, or a polled venue between polls); ``none`` — no tick
    view yet (only derived events were materialized, e.g. after a v1 log's upcast).
    """

    instrument: str = Field(examples=["BTC-USD@coinbase"])
    symbol: Symbol
    venue: Venue
    last_tick_at: UtcDatetime | None = Field(description="ts_event of the latest tick")
    last_ingest_at: UtcDatetime | None = Field(description="ts_init (ingest time) of the latest tick")
    health: Literal["fresh", "stale", "none"]


class InstrumentList(ViewModel):
    instruments: list[InstrumentSummary]
    stale_after_seconds: float
    timeframes: list[str]


class AmbiguousSymbol(ViewModel):
    """409 body: the symbol trades on several venues; pick one of ``choices`` (``/instruments/{venue}/{symbol}``)."""

    detail: str
    symbol: Symbol
    choices: list[str] = Field(examples=[["BTC-USD@coinbase", "BTC-USD@kraken"]])


class Latest(ViewModel):
    """Latest tick and latest indicator snapshot per timeframe (keyed by timeframe)."""

    symbol: Symbol
    venue: Venue
    tick: Tick | None
    indicators: dict[str, IndicatorSnapshot]


HistorySource = Literal["views", "history"]
SOURCE_FIELD = Field("views", description="Where the entries come from: 'views' (the Redis views: recent, capped)"
                                          " or 'history' (the Parquet history written by `stockstream backfill`)")
CURSOR_FIELD = Field(None, description="Pass as `cursor` to get the page just before (older than) this one;"
                                       " null when there is none")


class CandleSeries(ViewModel):
    """Candles, oldest first: the most recent ones, or a page of a time range (``from``/``to``/``cursor``).

    A candle with ``final`` false is still forming (its window is open: it changes until it closes, at
    most once per ``LIVE_UPDATE_INTERVAL`` of event time); ``final`` true is the closed candle, never
    replaced by a forming one.
    """

    symbol: Symbol
    venue: Venue
    timeframe: Timeframe
    candles: list[Candle]
    source: HistorySource = SOURCE_FIELD
    next_cursor: str | None = CURSOR_FIELD


class IndicatorSeries(ViewModel):
    """The latest snapshot and a history (oldest first) of one timeframe: the most recent, or a page of a range."""

    symbol: Symbol
    venue: Venue
    timeframe: Timeframe
    latest: IndicatorSnapshot | None
    history: list[IndicatorSnapshot]
    source: HistorySource = SOURCE_FIELD
    next_cursor: str | None = CURSOR_FIELD


class SignalList(ViewModel):
    """Signals, newest first: the most recent, or a page of a range."""

    symbol: Symbol
    venue: Venue
    signals: list[Signal]
    source: HistorySource = SOURCE_FIELD
    next_cursor: str | None = CURSOR_FIELD


class DailyList(ViewModel):
    """Daily summaries, oldest day first."""

    symbol: Symbol
    venue: Venue
    days: list[DailySummary]


class ScorecardRow(ViewModel):
    """One scorecard: the outcomes of a (strategy, timeframe, instrument, horizon), docs/core.md "Scorecards"."""

    strategy: str
    timeframe: Timeframe
    symbol: Symbol
    venue: Venue
    horizon: str = Field(examples=["5m"])
    outcomes: int = Field(description="how many outcomes (signals that reached the horizon)")
    hit_rate: float = Field(description="share of outcomes with a net return > 0")
    mean_return: float = Field(description="mean net return (a fraction: 0.01 = 1 %)")
    median_return: float
    mean_gross: float = Field(description="mean return before the fee")
    profit_factor: float | Literal["inf"] | None = Field(
        description="Σ gains / |Σ losses| of the net returns; null when nothing lost, \"inf\" when the losses round to 0")
    versions: list[str] = Field(description="the strategy versions its outcomes came from ('-': unrecorded)")


class ScorecardList(ViewModel):
    """Scorecards sorted by strategy, timeframe, instrument and horizon.

    They sum up the outcomes the views keep: the newest ``VIEWS_OUTCOMES_MAX`` (2,000) of each
    instrument by signal time; ``stockstream query scorecard`` reads the whole log.
    """

    scorecards: list[ScorecardRow]
