"""Reads the views back as pydantic models: the one definition used by the API and ``stockstream query``.

Views are per instrument (``SYMBOL@venue``, :mod:`schemas.instruments`); a reader method takes an
:class:`~schemas.instruments.Instrument`. Callers pass already-validated input (instrument, timeframe
pattern, limits); the key
builders in :mod:`processors.materialize.keys` check the patterns once more and raise rather
than build a key from anything else. Reads only: this module never writes to Redis.

A stored document that does not parse (it can only come from a foreign writer under our
prefix) is skipped, logged and counted in ``stockstream_views_corrupt_documents_total``; a
read never fails because of one bad entry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import TypeVar, cast

import redis
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from processors.core.scorecard import Scorecards
from processors.materialize.documents import (
    CandleSeries,
    DailyList,
    IndicatorSeries,
    InstrumentSummary,
    Latest,
    Recommendation,
    RecommendationSource,
    ScorecardList,
    ScorecardRow,
    SignalList,
)
from processors.materialize.keys import ViewKeys
from schemas.events import Candle, DailySummary, Event, IndicatorSnapshot, Signal, SignalOutcome, Tick
from schemas.instruments import Instrument, InvalidInstrumentError, parse_instrument
from schemas.upcasters import CHAINS, UnsupportedSchemaVersionError

log = logging.getLogger(__name__)
CORRUPT = Counter("stockstream_views_corrupt_documents_total",
                  "Stored view documents that did not parse and were skipped by a reader", ["view"])

Model = TypeVar("Model", bound=BaseModel)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ViewReader:
    """Synchronous reads of one key prefix; ``now`` is injected for the recommendation's decay."""

    def __init__(self, client: redis.Redis, keys: ViewKeys, now: Callable[[], datetime]) -> None:
        self.client = client
        self.keys = keys
        self.now = now

    def _parse(self, model: type[Model], raw: bytes | str | None, view: str) -> Model | None:
        if raw is None:
            return None
        try:
            if issubclass(model, Event):  # events go through their upcaster chain, like every consumer
                return CHAINS[model].decode(raw)  # type: ignore[no-any-return]
            return model.model_validate_json(raw)
        except ValidationError as error:
            CORRUPT.labels(view).inc()
            log.warning("skipping a %s document that does not parse: %s", view, error.errors()[:1])
            return None
        except UnsupportedSchemaVersionError as error:
            CORRUPT.labels(view).inc()
            log.warning("skipping a %s document: %s", view, error)
            return None

    def _parse_all(self, model: type[Model], raws: Iterable[bytes | str], view: str) -> list[Model]:
        parsed = (self._parse(model, raw, view) for raw in raws)
        return [item for item in parsed if item is not None]

    def instruments(self) -> list[Instrument]:
        """Every instrument with views, sorted by symbol then venue (a foreign member is skipped)."""
        found = []
        for member in self.client.smembers(self.keys.instruments):
            try:
                found.append(parse_instrument(_text(member)))
            except InvalidInstrumentError:
                CORRUPT.labels("instruments").inc()
        return sorted(found, key=lambda instrument: (instrument.symbol, instrument.venue))

    def symbols(self) -> list[str]:
        """Every symbol of any venue."""
        return sorted({instrument.symbol for instrument in self.instruments()})

    def venues_of(self, symbol: str) -> list[Instrument]:
        """The instruments of ``symbol`` (one per venue), sorted by venue."""
        return [instrument for instrument in self.instruments() if instrument.symbol == symbol]

    def known(self, instrument: Instrument) -> bool:
        return bool(self.client.sismember(self.keys.instruments, instrument.text))

    def summaries(self, stale_after_s: float) -> list[InstrumentSummary]:
        """Every instrument with its latest tick's times and a health verdict against ``now``."""
        instruments = self.instruments()
        pipe = self.client.pipeline(transaction=False)
        for instrument in instruments:
            pipe.hget(self.keys.latest(instrument.text), "tick")
        now = self.now()
        result = []
        for instrument, raw in zip(instruments, pipe.execute() if instruments else [], strict=True):
            tick = self._parse(Tick, raw, "latest")
            health = "none" if tick is None else (
                "fresh" if (now - tick.ts_init).total_seconds() < stale_after_s else "stale")
            result.append(InstrumentSummary(
                instrument=instrument.text, symbol=instrument.symbol, venue=instrument.venue,
                last_tick_at=None if tick is None else tick.ts_event,
                last_ingest_at=None if tick is None else tick.ts_init, health=health))
        return result

    def latest(self, instrument: Instrument) -> Latest:
        fields = {_text(name): value
                  for name, value in self.client.hgetall(self.keys.latest(instrument.text)).items()}
        tick = self._parse(Tick, fields.pop("tick", None), "latest")
        indicators: dict[str, IndicatorSnapshot] = {}
        for name, raw in sorted(fields.items()):
            if name.startswith("ind:"):
                snapshot = self._parse(IndicatorSnapshot, raw, "latest")
                if snapshot is not None:
                    indicators[snapshot.timeframe] = snapshot
        return Latest(symbol=instrument.symbol, venue=instrument.venue, tick=tick, indicators=indicators)

    def recommendation(self, instrument: Instrument, timeframe: str | None = None,
                       strategy: str | None = None) -> Recommendation:
        """The latest signal of the instrument (of ``timeframe`` and ``strategy`` when given), decayed to HOLD."""
        raw = self.client.hget(self.keys.recommendation(instrument.text),
                               self.keys.recommendation_field(timeframe, strategy))
        source = self._parse(RecommendationSource, raw, "recommendation")
        now = self.now()
        common = {"symbol": instrument.symbol, "venue": instrument.venue, "timeframe": timeframe, "strategy": strategy}
        if source is None:
            return Recommendation(**common, side="HOLD", state="none", set_by=None, as_of=now)
        if now >= source.expires_at:
            return Recommendation(**common, side="HOLD", state="decayed", set_by=source, as_of=now)
        return Recommendation(**common, side=source.side, state="active", set_by=source, as_of=now)

    def candles(self, instrument: Instrument, timeframe: str, limit: int) -> CandleSeries:
        members = cast(list[bytes], self.client.zrange(self.keys.candles(instrument.text, timeframe), -limit, -1))
        raws = self.client.hmget(self.keys.candles_data(instrument.text, timeframe), members) if members else []
        candles = self._parse_all(Candle, (raw for raw in raws if raw is not None), "candles")
        return CandleSeries(symbol=instrument.symbol, venue=instrument.venue, timeframe=timeframe, candles=candles)

    def indicators(self, instrument: Instrument, timeframe: str, limit: int) -> IndicatorSeries:
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.keys.latest(instrument.text), self.keys.latest_indicator_field(timeframe))
        if limit:
            pipe.zrange(self.keys.indicator_history(instrument.text, timeframe), -limit, -1)
        results = pipe.execute()
        latest = self._parse(IndicatorSnapshot, results[0], "latest")
        history = self._parse_all(IndicatorSnapshot, results[1] if limit else [], "indicators")
        return IndicatorSeries(symbol=instrument.symbol, venue=instrument.venue, timeframe=timeframe, latest=latest,
                               history=history)

    def signals(self, instrument: Instrument, limit: int, rule: str | None = None,
                side: str | None = None) -> SignalList:
        key = self.keys.signals(instrument.text, rule)
        if side is None:
            raws = cast(list[bytes], self.client.zrevrange(key, 0, limit - 1))
            return SignalList(symbol=instrument.symbol, venue=instrument.venue,
                              signals=self._parse_all(Signal, raws, "signals"))
        # The side filter reads the whole capped list (a few hundred entries at most).
        every = self._parse_all(Signal, cast(list[bytes], self.client.zrevrange(key, 0, -1)), "signals")
        return SignalList(symbol=instrument.symbol, venue=instrument.venue,
                          signals=[signal for signal in every if signal.side == side][:limit])

    # --- ranges (the API's from/to/cursor paging: stockstream/history) ---------------------------------
    # Scores are milliseconds (an event time rounded down): callers ask for a score range one
    # millisecond wider than the times they want and filter exactly on the parsed events.

    def candles_newest(self, instrument: Instrument, timeframe: str, low_ms: float, high_ms: float,
                       count: int) -> list[Candle]:
        """Up to ``count`` candles whose window opens within the score range, newest first."""
        key = self.keys.candles(instrument.text, timeframe)
        members = cast(list[bytes], self.client.zrevrangebyscore(key, high_ms, low_ms, start=0, num=count))
        raws = self.client.hmget(self.keys.candles_data(instrument.text, timeframe), members) if members else []
        return self._parse_all(Candle, (raw for raw in raws if raw is not None), "candles")

    def indicators_newest(self, instrument: Instrument, timeframe: str, low_ms: float, high_ms: float,
                          count: int) -> list[IndicatorSnapshot]:
        """Up to ``count`` snapshots of the history view with ``ts_event`` within the score range, newest first."""
        key = self.keys.indicator_history(instrument.text, timeframe)
        raws = cast(list[bytes], self.client.zrevrangebyscore(key, high_ms, low_ms, start=0, num=count))
        return self._parse_all(IndicatorSnapshot, raws, "indicators")

    def signals_newest(self, instrument: Instrument, rule: str | None, low_ms: float, high_ms: float,
                       count: int) -> list[Signal]:
        """Up to ``count`` signals (of ``rule``) with ``ts_event`` within the score range, newest first."""
        key = self.keys.signals(instrument.text, rule)
        raws = cast(list[bytes], self.client.zrevrangebyscore(key, high_ms, low_ms, start=0, num=count))
        return self._parse_all(Signal, raws, "signals")

    def oldest_ms(self, view: str, instrument: Instrument, timeframe: str | None = None,
                  rule: str | None = None) -> float | None:
        """The lowest score of a capped view (``candles``, ``indicators`` or ``signals``): where it starts."""
        if view == "candles":
            key = self.keys.candles(instrument.text, timeframe or "")
        elif view == "indicators":
            key = self.keys.indicator_history(instrument.text, timeframe or "")
        else:
            key = self.keys.signals(instrument.text, rule)
        first = self.client.zrange(key, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def scorecards(self, instruments: Iterable[Instrument], strategy: str | None = None,
                   timeframe: str | None = None, horizon: str | None = None) -> ScorecardList:
        """The scorecards of the outcomes kept for ``instruments`` (processors/core/scorecard.py), filtered."""
        chosen = list(instruments)
        pipe = self.client.pipeline(transaction=False)
        for instrument in chosen:
            pipe.zrange(self.keys.outcomes(instrument.text), 0, -1)
        cards = Scorecards()
        for raws in pipe.execute() if chosen else []:
            for outcome in self._parse_all(SignalOutcome, raws, "outcomes"):
                if ((strategy is None or outcome.strategy == strategy)
                        and (timeframe is None or outcome.timeframe == timeframe)
                        and (horizon is None or outcome.horizon == horizon)):
                    cards.add(outcome)
        rows = []
        for card in cards.cards():
            factor = card.profit_factor
            rows.append(ScorecardRow(
                strategy=card.key.strategy, timeframe=card.key.timeframe, symbol=card.key.symbol, venue=card.key.venue,
                horizon=card.key.horizon, outcomes=card.outcomes, hit_rate=card.hit_rate, mean_return=card.mean_return,
                median_return=card.median_return, mean_gross=card.mean_gross,
                profit_factor="inf" if factor is not None and math.isinf(factor) else factor,
                versions=list(card.versions)))
        return ScorecardList(scorecards=rows)

    def daily(self, instrument: Instrument, start: date | None = None, end: date | None = None) -> DailyList:
        fields = self.client.hgetall(self.keys.daily(instrument.text))
        wanted = []
        for name, raw in fields.items():
            try:
                day = date.fromisoformat(_text(name))
            except ValueError:
                CORRUPT.labels("daily").inc()
                continue
            if (start is None or day >= start) and (end is None or day <= end):
                wanted.append((day, raw))
        wanted.sort(key=lambda pair: pair[0])
        return DailyList(symbol=instrument.symbol, venue=instrument.venue,
                         days=self._parse_all(DailySummary, (raw for _, raw in wanted), "daily"))
