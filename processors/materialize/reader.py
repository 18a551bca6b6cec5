"""Reads the views back as pydantic models: the one definition used by the API and ``stockstream query``.

Callers pass already-validated input (symbol pattern, timeframe pattern, limits); the key
builders in :mod:`processors.materialize.keys` check the patterns once more and raise rather
than build a key from anything else. Reads only: this module never writes to Redis.

A stored document that does not parse (it can only come from a foreign writer under our
prefix) is skipped, logged and counted in ``stockstream_views_corrupt_documents_total``; a
read never fails because of one bad entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import TypeVar, cast

import redis
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from processors.materialize.documents import (
    CandleSeries,
    DailyList,
    IndicatorSeries,
    Latest,
    Recommendation,
    RecommendationSource,
    SignalList,
)
from processors.materialize.keys import ViewKeys
from schemas.events import Candle, DailySummary, IndicatorSnapshot, Signal, Tick

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
            return model.model_validate_json(raw)
        except ValidationError as error:
            CORRUPT.labels(view).inc()
            log.warning("skipping a %s document that does not parse: %s", view, error.errors()[:1])
            return None

    def _parse_all(self, model: type[Model], raws: Iterable[bytes | str], view: str) -> list[Model]:
        parsed = (self._parse(model, raw, view) for raw in raws)
        return [item for item in parsed if item is not None]

    def symbols(self) -> list[str]:
        return sorted(_text(member) for member in self.client.smembers(self.keys.symbols))

    def known(self, symbol: str) -> bool:
        return bool(self.client.sismember(self.keys.symbols, symbol))

    def latest(self, symbol: str) -> Latest:
        fields = {_text(name): value for name, value in self.client.hgetall(self.keys.latest(symbol)).items()}
        tick = self._parse(Tick, fields.pop("tick", None), "latest")
        indicators: dict[str, IndicatorSnapshot] = {}
        for name, raw in sorted(fields.items()):
            if name.startswith("ind:"):
                snapshot = self._parse(IndicatorSnapshot, raw, "latest")
                if snapshot is not None:
                    indicators[snapshot.timeframe] = snapshot
        return Latest(symbol=symbol, tick=tick, indicators=indicators)

    def recommendation(self, symbol: str, timeframe: str | None = None) -> Recommendation:
        raw = self.client.hget(self.keys.recommendation(symbol), self.keys.recommendation_field(timeframe))
        source = self._parse(RecommendationSource, raw, "recommendation")
        now = self.now()
        if source is None:
            return Recommendation(symbol=symbol, timeframe=timeframe, side="HOLD", state="none", set_by=None,
                                  as_of=now)
        if now >= source.expires_at:
            return Recommendation(symbol=symbol, timeframe=timeframe, side="HOLD", state="decayed",
                                  set_by=source, as_of=now)
        return Recommendation(symbol=symbol, timeframe=timeframe, side=source.side, state="active",
                              set_by=source, as_of=now)

    def candles(self, symbol: str, timeframe: str, limit: int) -> CandleSeries:
        members = cast(list[bytes], self.client.zrange(self.keys.candles(symbol, timeframe), -limit, -1))
        raws = self.client.hmget(self.keys.candles_data(symbol, timeframe), members) if members else []
        candles = self._parse_all(Candle, (raw for raw in raws if raw is not None), "candles")
        return CandleSeries(symbol=symbol, timeframe=timeframe, candles=candles)

    def indicators(self, symbol: str, timeframe: str, limit: int) -> IndicatorSeries:
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.keys.latest(symbol), self.keys.latest_indicator_field(timeframe))
        if limit:
            pipe.zrange(self.keys.indicator_history(symbol, timeframe), -limit, -1)
        results = pipe.execute()
        latest = self._parse(IndicatorSnapshot, results[0], "latest")
        history = self._parse_all(IndicatorSnapshot, results[1] if limit else [], "indicators")
        return IndicatorSeries(symbol=symbol, timeframe=timeframe, latest=latest, history=history)

    def signals(self, symbol: str, limit: int, rule: str | None = None, side: str | None = None) -> SignalList:
        key = self.keys.signals(symbol, rule)
        if side is None:
            raws = cast(list[bytes], self.client.zrevrange(key, 0, limit - 1))
            return SignalList(symbol=symbol, signals=self._parse_all(Signal, raws, "signals"))
        # The side filter reads the whole capped list (a few hundred entries at most).
        every = self._parse_all(Signal, cast(list[bytes], self.client.zrevrange(key, 0, -1)), "signals")
        return SignalList(symbol=symbol, signals=[signal for signal in every if signal.side == side][:limit])

    def daily(self, symbol: str, start: date | None = None, end: date | None = None) -> DailyList:
        fields = self.client.hgetall(self.keys.daily(symbol))
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
        return DailyList(symbol=symbol, days=self._parse_all(DailySummary, (raw for _, raw in wanted), "daily"))
