"""The views endpoints. Read-only; every input is validated before a Redis key is built from it.

Symbols must match the event schema's pattern (422 otherwise) and be known (404 otherwise);
timeframes are an enum of this deployment's timeframes; limits are bounded; ``from``/``to``
are ISO dates (``from > to`` is an empty range). Each handler is a plain ``def`` (run in the threadpool)
that calls :class:`processors.materialize.reader.ViewReader` — the same code as ``stockstream query``.
"""

# No ``from __future__ import annotations`` here: the timeframe enums are built per app at run
# time, and FastAPI must see the real types in the handlers' annotations.
import re
from datetime import date
from enum import Enum
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, BeforeValidator

from processors.materialize.documents import (
    CandleSeries,
    DailyList,
    IndicatorSeries,
    Latest,
    Recommendation,
    SignalList,
    SymbolList,
)
from processors.materialize.reader import ViewReader
from schemas.symbols import NORMALIZED_SYMBOL_PATTERN

MAX_LIMIT = 1000
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date_text(value: object) -> object:
    # pydantic's lax date parsing also takes numbers (0 → 1970-01-01); a query date must be YYYY-MM-DD.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("dates are YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "Unknown symbol"},
    503: {"model": Problem, "description": "Redis is unreachable"},
}

SymbolPath = Annotated[str, Path(pattern=NORMALIZED_SYMBOL_PATTERN, max_length=32,
                                 description="Normalized symbol, e.g. BTC-USD", examples=["BTC-USD"])]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many entries at most")]


def build_router(timeframes: list[str]) -> APIRouter:
    """The router for a deployment whose timeframes are ``timeframes`` (``tick`` first)."""
    timeframe_enum = Enum("Timeframe", {name: name for name in timeframes}, type=str)  # type: ignore[misc]
    candle_names = [name for name in timeframes if name != "tick"] or ["1m"]
    candle_enum = Enum("CandleTimeframe", {name: name for name in candle_names}, type=str)  # type: ignore[misc]
    router = APIRouter()

    def reader_for(request: Request) -> ViewReader:
        return request.app.state.reader  # type: ignore[no-any-return]

    def known(request: Request, symbol: str) -> ViewReader:
        reader = reader_for(request)
        if not reader.known(symbol):
            raise HTTPException(404, f"unknown symbol {symbol!r}; GET /symbols lists the known ones")
        return reader

    @router.get("/symbols", response_model=SymbolList, responses={503: ERRORS[503]}, tags=["views"],
                summary="Every symbol seen so far, and the timeframes of this deployment")
    def symbols(request: Request) -> SymbolList:
        return SymbolList(symbols=reader_for(request).symbols(), timeframes=timeframes)

    @router.get("/symbols/{symbol}/latest", response_model=Latest, responses=ERRORS, tags=["views"],
                summary="Latest tick and latest indicator snapshot per timeframe")
    def latest(request: Request, symbol: SymbolPath) -> Latest:
        return known(request, symbol).latest(symbol)

    @router.get("/symbols/{symbol}/recommendation", response_model=Recommendation, responses=ERRORS,
                tags=["views"], summary="Current BUY/SELL/HOLD recommendation (decays to HOLD)")
    def recommendation(
        request: Request, symbol: SymbolPath,
        timeframe: Annotated[timeframe_enum | None, Query(description="Only signals of this timeframe")] = None,
    ) -> Recommendation:
        return known(request, symbol).recommendation(symbol, timeframe.value if timeframe else None)

    @router.get("/symbols/{symbol}/candles", response_model=CandleSeries, responses=ERRORS, tags=["views"],
                summary="Recent candles of one timeframe, oldest first")
    def candles(
        request: Request, symbol: SymbolPath,
        timeframe: Annotated[candle_enum, Query(description="Candle timeframe")] = candle_names[0],  # type: ignore[assignment]
        limit: Limit = 200,
    ) -> CandleSeries:
        return known(request, symbol).candles(symbol, candle_enum(timeframe).value, limit)

    @router.get("/symbols/{symbol}/indicators", response_model=IndicatorSeries, responses=ERRORS, tags=["views"],
                summary="Latest indicator snapshot and recent history (oldest first) of one timeframe")
    def indicators(
        request: Request, symbol: SymbolPath,
        timeframe: Annotated[timeframe_enum, Query(description="tick or a candle timeframe")] = "tick",  # type: ignore[assignment]
        limit: Annotated[int, Query(ge=0, le=MAX_LIMIT, description="History entries (0: latest only)")] = 200,
    ) -> IndicatorSeries:
        return known(request, symbol).indicators(symbol, timeframe_enum(timeframe).value, limit)

    @router.get("/symbols/{symbol}/signals", response_model=SignalList, responses=ERRORS, tags=["views"],
                summary="Recent signals, newest first")
    def signals(
        request: Request, symbol: SymbolPath,
        limit: Limit = 50,
        rule: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="Only this rule")] = None,
        side: Annotated[Literal["BUY", "SELL"] | None, Query(description="Only this side")] = None,
    ) -> SignalList:
        return known(request, symbol).signals(symbol, limit, rule, side)

    @router.get("/symbols/{symbol}/daily", response_model=DailyList, responses=ERRORS, tags=["views"],
                summary="Daily summaries, oldest day first")
    def daily(
        request: Request, symbol: SymbolPath,
        start: Annotated[IsoDate | None, Query(alias="from", description="First day (UTC), inclusive")] = None,
        end: Annotated[IsoDate | None, Query(alias="to", description="Last day (UTC), inclusive")] = None,
    ) -> DailyList:
        # An inverted range (from > to) is an empty range, not an error: every YYYY-MM-DD pair the schema
        # allows is accepted (a malformed date is a 422).
        return known(request, symbol).daily(symbol, start, end)

    return router
