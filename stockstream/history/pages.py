"""One page of candles, indicator snapshots or signals: from the Redis views when they hold it, else from the
Parquet history; the same response models either way, ``source`` saying which, ``next_cursor`` continuing.

Called by the API routes (``/…/candles``, ``/…/indicators``, ``/…/signals``) and ``stockstream query``.
A request is a time range and a page size: ``low`` (``from``, inclusive), ``high`` (``to``,
exclusive), ``cursor`` (the key of the oldest entry of the previous page: this page lies strictly
before it) and ``limit``. The page is the newest ``limit`` entries of the range before the cursor.

Which source: the views are capped and hold the most recent entries without a gap, so they hold the
page when they have ``limit`` entries in it, or when the range starts at or after the oldest entry
they keep. Otherwise the page comes from the Parquet history (when there is one and it has entries
there). ``next_cursor`` is set when older entries may exist: more in the same source, or — on a
views page — a history that may hold what the views no longer do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from processors.materialize.documents import CandleSeries, IndicatorSeries, SignalList
from processors.materialize.reader import ViewReader
from schemas.events import Candle, IndicatorSnapshot, Signal
from schemas.instruments import Instrument
from stockstream.history.cursor import (
    Key,
    candle_key,
    encode_cursor,
    micros,
    signal_key,
    snapshot_key,
    time_bound,
)
from stockstream.history.parquet import HistoryStore

Entry = TypeVar("Entry", Candle, IndicatorSnapshot, Signal)
NO_BOUND: Key = (2**62, 0, 0, "")


@dataclass(frozen=True)
class PageRequest:
    """A page of a time range: ``low`` inclusive, ``high`` exclusive, strictly before ``cursor``."""

    limit: int
    low: datetime | None = None
    high: datetime | None = None
    cursor: Key | None = None

    def before(self) -> Key:
        bounds = [bound for bound in (time_bound(self.high) if self.high else None, self.cursor) if bound is not None]
        return min(bounds) if bounds else NO_BOUND

    def low_ms(self) -> float:
        return -math.inf if self.low is None else math.floor(micros(self.low) / 1000) - 1

    def high_ms(self) -> float:
        before = self.before()
        return math.inf if before == NO_BOUND else math.ceil(before[0] / 1000) + 1


@dataclass(frozen=True)
class Page:
    entries: list[Candle] | list[IndicatorSnapshot] | list[Signal]
    source: str
    next_cursor: str | None


class Pager:
    """Pages of one deployment's views (``reader``) and Parquet history (``history``)."""

    def __init__(self, reader: ViewReader, history: HistoryStore) -> None:
        self.reader = reader
        self.history = history

    def _page(self, request: PageRequest, newest: Callable[[int], Sequence[Entry]], oldest_ms: float | None,
              key_of: Callable[[Entry], Key], keep: Callable[[Entry], bool],
              from_history: Callable[[Key], list[Entry]]) -> Page:
        before, low = request.before(), micros(request.low) if request.low else None
        count = request.limit + 16
        while True:  # the views, newest first, until a full page survives the exact filters
            fetched = list(newest(count))
            full = len(fetched) >= count
            if full:  # the oldest millisecond fetched may go on beyond the fetch: leave it to a larger one
                edge = min(key_of(entry)[0] // 1000 for entry in fetched)
                fetched = [entry for entry in fetched if key_of(entry)[0] // 1000 > edge]
            # Oldest first by the full key: the views order entries of one millisecond by their bytes.
            candidates = sorted((entry for entry in fetched if key_of(entry) < before and keep(entry)
                                 and (low is None or key_of(entry)[0] >= low)), key=key_of)
            if len(candidates) > request.limit or not full:
                break
            count *= 4
        covered = len(candidates) >= request.limit or (
            request.low is not None and oldest_ms is not None and oldest_ms <= micros(request.low) / 1000)
        history = self.history.available()
        if not covered and history:
            older = from_history(before)
            if older:
                return Page(older, "history", encode_cursor(key_of(older[0])) if len(older) == request.limit else None)
        page = candidates[-request.limit:]
        more = len(candidates) > request.limit or (history and bool(page) and (low is None or key_of(page[0])[0] > low))
        return Page(page, "views", encode_cursor(key_of(page[0])) if page and more else None)

    def candles(self, instrument: Instrument, timeframe: str, request: PageRequest) -> CandleSeries:
        page = self._page(
            request,
            lambda count: self.reader.candles_newest(instrument, timeframe, request.low_ms(), request.high_ms(), count),
            self.reader.oldest_ms("candles", instrument, timeframe), candle_key, lambda _: True,
            lambda before: self.history.candles(instrument, timeframe, request.low, before, request.limit))
        return CandleSeries(symbol=instrument.symbol, venue=instrument.venue, timeframe=timeframe,
                            candles=page.entries, source=page.source, next_cursor=page.next_cursor)  # type: ignore[arg-type]

    def indicators(self, instrument: Instrument, timeframe: str, request: PageRequest) -> IndicatorSeries:
        latest = self.reader.indicators(instrument, timeframe, 0).latest
        if request.limit == 0:
            return IndicatorSeries(symbol=instrument.symbol, venue=instrument.venue, timeframe=timeframe,
                                   latest=latest, history=[])
        page = self._page(
            request,
            lambda count: self.reader.indicators_newest(instrument, timeframe, request.low_ms(), request.high_ms(),
                                                        count),
            self.reader.oldest_ms("indicators", instrument, timeframe), snapshot_key, lambda _: True,
            lambda before: self.history.indicators(instrument, timeframe, request.low, before, request.limit))
        return IndicatorSeries(symbol=instrument.symbol, venue=instrument.venue, timeframe=timeframe, latest=latest,
                               history=page.entries, source=page.source, next_cursor=page.next_cursor)  # type: ignore[arg-type]

    def signals(self, instrument: Instrument, request: PageRequest, rule: str | None = None,
                side: str | None = None) -> SignalList:
        page = self._page(
            request,
            lambda count: self.reader.signals_newest(instrument, rule, request.low_ms(), request.high_ms(), count),
            self.reader.oldest_ms("signals", instrument, rule=rule), signal_key,
            lambda signal: side is None or signal.side == side,
            lambda before: self.history.signals(instrument, rule, side, request.low, before, request.limit))
        newest_first = list(reversed(page.entries))
        return SignalList(symbol=instrument.symbol, venue=instrument.venue, signals=newest_first,  # type: ignore[arg-type]
                          source=page.source, next_cursor=page.next_cursor)
