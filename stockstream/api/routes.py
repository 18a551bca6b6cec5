"""The views endpoints. Read-only; every input is validated before a Redis key is built from it.

Views are per instrument (a venue's symbol). Each view is served twice:
``/instruments/{venue}/{symbol}/…`` addresses one instrument; ``/symbols/{symbol}/…`` (the paths
of the release before venues) works while the symbol has exactly one venue and answers 409 with
the instruments to choose from otherwise. ``/instruments`` lists every instrument with its last
tick time and health.

Symbols and venues must match the event schema's patterns (422 otherwise) and be known (404 otherwise);
timeframes are an enum of this deployment's timeframes; limits are bounded; ``from``/``to``
are ISO dates on ``daily`` and ISO times (or dates: midnight UTC) on ``candles``, ``indicators`` and
``signals``, whose pages continue with ``cursor`` (``from > to`` is an empty range). Those three are
served from the Redis views when they hold the page, else from the Parquet history
(:mod:`stockstream.history`), ``source`` saying which. Each handler is a plain ``def`` (run in the threadpool)
that calls :class:`processors.materialize.reader.ViewReader` — the same code as ``stockstream query``.
"""

# No ``from __future__ import annotations`` here: the timeframe enums are built per app at run
# time, and FastAPI must see the real types in the handlers' annotations.
import re
from datetime import UTC, date, datetime
from enum import Enum
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator

from processors.materialize.documents import (
    AmbiguousSymbol,
    CandleSeries,
    DailyList,
    IndicatorSeries,
    InstrumentList,
    Latest,
    Recommendation,
    ScorecardList,
    SignalList,
    SymbolList,
)
from processors.materialize.keys import RULE_PATTERN, ViewKeys
from processors.materialize.reader import ViewReader
from schemas.instruments import VENUE_PATTERN, Instrument
from schemas.runs import LIVE_RUN_ID, RUN_ID_PATTERN, run_redis_prefix
from schemas.symbols import NORMALIZED_SYMBOL_PATTERN
from stockstream.history.cursor import CURSOR_PATTERN, decode_cursor
from stockstream.history.pages import Pager, PageRequest
from stockstream.history.parquet import HistoryStore

MAX_LIMIT = 1000
HORIZON_PATTERN = r"^[1-9][0-9]{0,8}(ms|s|m|h|d)$"  # schemas.events.Horizon
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date_text(value: object) -> object:
    # pydantic's lax date parsing also takes numbers (0 → 1970-01-01); a query date must be YYYY-MM-DD.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("dates are YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
def _iso_time(value: object) -> object:
    """An ISO 8601 time or date (a date is its midnight, a time without zone is UTC), as an aware datetime."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("times are ISO 8601, e.g. 2024-03-04T12:00:00Z or 2024-03-04")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("times are ISO 8601, e.g. 2024-03-04T12:00:00Z or 2024-03-04") from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # a zone that moves the time before the year 1 or after 9999
        raise ValueError("the time is out of range") from None


IsoTime = Annotated[datetime, BeforeValidator(_iso_time)]
FromTime = Annotated[IsoTime | None, Query(alias="from", description="Range start (inclusive): ISO 8601 time or date")]
ToTime = Annotated[IsoTime | None, Query(alias="to", description="Range end (exclusive): ISO 8601 time or date")]
CursorText = Annotated[str | None, Query(max_length=100, pattern=CURSOR_PATTERN,
                                         description="next_cursor of the previous page: the page just before it")]


def page_request(limit: int, start: datetime | None, end: datetime | None, cursor: str | None) -> PageRequest:
    """The page asked for (the cursor was checked by :data:`CursorText`)."""
    return PageRequest(limit=limit, low=start, high=end, cursor=decode_cursor(cursor) if cursor is not None else None)


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "Unknown instrument"},
    503: {"model": Problem, "description": "Redis is unreachable"},
}
SYMBOL_ERRORS: dict[int | str, dict[str, object]] = {
    **ERRORS,
    404: {"model": Problem, "description": "Unknown symbol"},
    409: {"model": AmbiguousSymbol, "description": "The symbol trades on several venues: use /instruments/{venue}/{symbol}"},
}


class AmbiguousSymbolError(Exception):
    """Raised by the ``/symbols/{symbol}`` resolver; answered 409 with :class:`AmbiguousSymbol`."""

    def __init__(self, body: AmbiguousSymbol) -> None:
        super().__init__(body.detail)
        self.body = body


async def ambiguous_symbol(_request: Request, error: Exception) -> JSONResponse:
    """The 409 answer (registered on the app by :func:`stockstream.api.app.create_app`)."""
    assert isinstance(error, AmbiguousSymbolError)  # noqa: S101 - registered for this type only
    return JSONResponse(error.body.model_dump(), status_code=409)

SymbolPath = Annotated[str, Path(pattern=NORMALIZED_SYMBOL_PATTERN, max_length=32,
                                 description="Normalized symbol, e.g. BTC-USD", examples=["BTC-USD"])]
VenuePath = Annotated[str, Path(pattern=VENUE_PATTERN, max_length=32,
                               description="Venue, e.g. coinbase, kraken, or index (the composite)",
                               examples=["coinbase"])]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many entries at most")]
RunQuery = Annotated[str | None, Query(pattern=RUN_ID_PATTERN,
                                       description="A run's views instead of live (stockstream runs list; live: default)")]


def build_router(timeframes: list[str], stale_after_s: float = 120.0, default_strategy: str | None = None) -> APIRouter:
    """The router for a deployment whose timeframes are ``timeframes`` (``tick`` first); ``/recommendation``
    without ``?strategy=`` answers for ``default_strategy`` (None: any strategy)."""
    timeframe_enum = Enum("Timeframe", {name: name for name in timeframes}, type=str)  # type: ignore[misc]
    candle_names = [name for name in timeframes if name != "tick"] or ["1m"]
    candle_enum = Enum("CandleTimeframe", {name: name for name in candle_names}, type=str)  # type: ignore[misc]
    router = APIRouter()

    def reader_for(request: Request, run: str | None = None) -> ViewReader:
        """The live views, or a run's (``?run=ID``, docs/runs.md: keys under ``<prefix>run:<id>:``)."""
        live: ViewReader = request.app.state.reader
        if run is None or run == LIVE_RUN_ID:
            return live
        return ViewReader(live.client, ViewKeys(run_redis_prefix(live.keys.prefix, run)), live.now)

    def by_instrument(request: Request, venue: VenuePath, symbol: SymbolPath,
                      run: RunQuery = None) -> tuple[ViewReader, Instrument]:
        reader = reader_for(request, run)
        instrument = Instrument(symbol, venue)
        if not reader.known(instrument):
            raise HTTPException(404, f"unknown instrument {instrument.text!r}; GET /instruments lists the known ones")
        return reader, instrument

    def by_symbol(request: Request, symbol: SymbolPath, run: RunQuery = None) -> tuple[ViewReader, Instrument]:
        reader = reader_for(request, run)
        venues = reader.venues_of(symbol)
        if not venues:
            raise HTTPException(404, f"unknown symbol {symbol!r}; GET /symbols lists the known ones")
        if len(venues) > 1:
            choices = [instrument.text for instrument in venues]
            raise AmbiguousSymbolError(AmbiguousSymbol(
                detail=f"{symbol} trades on {len(venues)} venues; ask /instruments/{{venue}}/{symbol}/… for one of"
                       f" {', '.join(choices)}", symbol=symbol, choices=choices))
        return reader, venues[0]

    @router.get("/symbols", response_model=SymbolList, responses={503: ERRORS[503]}, tags=["views"],
                summary="Every symbol seen so far (any venue), and the timeframes of this deployment")
    def symbols(request: Request, run: RunQuery = None) -> SymbolList:
        return SymbolList(symbols=reader_for(request, run).symbols(), timeframes=timeframes)

    @router.get("/instruments", response_model=InstrumentList, responses={503: ERRORS[503]}, tags=["views"],
                summary="Every instrument (venue + symbol) with its last tick time and source health")
    def instruments(request: Request, run: RunQuery = None) -> InstrumentList:
        return InstrumentList(instruments=reader_for(request, run).summaries(stale_after_s),
                              stale_after_seconds=stale_after_s, timeframes=timeframes)

    @router.get("/scorecards", response_model=ScorecardList, responses={503: ERRORS[503]}, tags=["views"],
                summary="Scorecards of the signals: count, hit rate, mean/median return, profit factor per"
                        " strategy, timeframe, instrument and horizon")
    def scorecards(
        request: Request,
        strategy: Annotated[str | None, Query(pattern=RULE_PATTERN, description="Only this strategy")] = None,
        symbol: Annotated[str | None, Query(pattern=NORMALIZED_SYMBOL_PATTERN, max_length=32,
                                            description="Only this symbol (every venue unless venue is given)")] = None,
        venue: Annotated[str | None, Query(pattern=VENUE_PATTERN, max_length=32, description="Only this venue")] = None,
        timeframe: Annotated[timeframe_enum | None, Query(description="Only signals of this timeframe")] = None,  # type: ignore[valid-type]
        horizon: Annotated[str | None, Query(pattern=HORIZON_PATTERN, max_length=12,
                                             description="Only this horizon (1m, 5m, 1h, 1d…)")] = None,
        run: RunQuery = None,
    ) -> ScorecardList:
        reader = reader_for(request, run)
        chosen = [instrument for instrument in reader.instruments()
                  if (symbol is None or instrument.symbol == symbol) and (venue is None or instrument.venue == venue)]
        return reader.scorecards(chosen, strategy, timeframe.value if timeframe else None, horizon)  # type: ignore[attr-defined]

    Target = tuple[ViewReader, Instrument]
    for prefix, resolve, errors in (("/instruments/{venue}/{symbol}", by_instrument, ERRORS),
                                    ("/symbols/{symbol}", by_symbol, SYMBOL_ERRORS)):
        _views(router, prefix, Annotated[Target, Depends(resolve)], errors, timeframe_enum, candle_enum,
               candle_names, default_strategy)
    return router


def _views(router: APIRouter, prefix: str, target_type: object, errors: dict[int | str, dict[str, object]],
           timeframe_enum: type[Enum], candle_enum: type[Enum], candle_names: list[str],
           default_strategy: str | None = None) -> None:
    """The six views of one instrument under ``prefix``, the instrument resolved by ``target_type``'s dependency."""
    Target = target_type  # noqa: N806 - a type alias used in the annotations below

    @router.get(f"{prefix}/latest", response_model=Latest, responses=errors, tags=["views"],
                summary="Latest tick and latest indicator snapshot per timeframe")
    def latest(target: Target) -> Latest:  # type: ignore[valid-type]
        reader, instrument = target
        return reader.latest(instrument)

    @router.get(f"{prefix}/recommendation", response_model=Recommendation, responses=errors,
                tags=["views"], summary="Current BUY/SELL/HOLD recommendation (decays to HOLD)")
    def recommendation(
        target: Target,  # type: ignore[valid-type]
        timeframe: Annotated[timeframe_enum | None, Query(description="Only signals of this timeframe")] = None,  # type: ignore[valid-type]
        strategy: Annotated[str | None, Query(pattern=RULE_PATTERN, description="Only signals of this strategy"
                                              " (default: RECOMMENDATION_STRATEGY, else any)")] = None,
    ) -> Recommendation:
        reader, instrument = target
        chosen = strategy if strategy is not None else default_strategy
        return reader.recommendation(instrument, timeframe.value if timeframe else None, chosen)  # type: ignore[attr-defined]

    def pager(request: Request, reader: ViewReader) -> Pager:
        """Pages of ``reader``'s views: the live pager (views, then the Parquet history), or for a run
        (``?run=ID``) its own views only — the backfill history is live's, never a run's."""
        live: Pager = request.app.state.pager
        if reader is live.reader:
            return live
        return Pager(reader, HistoryStore(None))

    @router.get(f"{prefix}/candles", response_model=CandleSeries, responses=errors, tags=["views"],
                summary="Candles of one timeframe, oldest first: the most recent, or a page of a time range")
    def candles(
        request: Request,
        target: Target,  # type: ignore[valid-type]
        timeframe: Annotated[candle_enum, Query(description="Candle timeframe")] = candle_names[0],  # type: ignore[assignment,valid-type]
        limit: Limit = 200,
        start: FromTime = None,
        end: ToTime = None,
        cursor: CursorText = None,
    ) -> CandleSeries:
        reader, instrument = target
        return pager(request, reader).candles(instrument, candle_enum(timeframe).value,
                                      page_request(limit, start, end, cursor))

    @router.get(f"{prefix}/indicators", response_model=IndicatorSeries, responses=errors, tags=["views"],
                summary="Latest indicator snapshot and a history (oldest first) of one timeframe: the most recent,"
                        " or a page of a time range")
    def indicators(
        request: Request,
        target: Target,  # type: ignore[valid-type]
        timeframe: Annotated[timeframe_enum, Query(description="tick or a candle timeframe")] = "tick",  # type: ignore[assignment,valid-type]
        limit: Annotated[int, Query(ge=0, le=MAX_LIMIT, description="History entries (0: latest only)")] = 200,
        start: FromTime = None,
        end: ToTime = None,
        cursor: CursorText = None,
    ) -> IndicatorSeries:
        reader, instrument = target
        return pager(request, reader).indicators(instrument, timeframe_enum(timeframe).value,
                                         page_request(limit, start, end, cursor))

    @router.get(f"{prefix}/signals", response_model=SignalList, responses=errors, tags=["views"],
                summary="Signals, newest first: the most recent, or a page of a time range")
    def signals(
        request: Request,
        target: Target,  # type: ignore[valid-type]
        limit: Limit = 50,
        rule: Annotated[str | None, Query(pattern=RULE_PATTERN, description="Only this rule (strategy)")] = None,
        side: Annotated[Literal["BUY", "SELL"] | None, Query(description="Only this side")] = None,
        start: FromTime = None,
        end: ToTime = None,
        cursor: CursorText = None,
    ) -> SignalList:
        reader, instrument = target
        return pager(request, reader).signals(instrument, page_request(limit, start, end, cursor), rule, side)

    @router.get(f"{prefix}/daily", response_model=DailyList, responses=errors, tags=["views"],
                summary="Daily summaries, oldest day first")
    def daily(
        target: Target,  # type: ignore[valid-type]
        start: Annotated[IsoDate | None, Query(alias="from", description="First day (UTC), inclusive")] = None,
        end: Annotated[IsoDate | None, Query(alias="to", description="Last day (UTC), inclusive")] = None,
    ) -> DailyList:
        # An inverted range (from > to) is an empty range, not an error: every YYYY-MM-DD pair the schema
        # allows is accepted (a malformed date is a 422).
        reader, instrument = target
        return reader.daily(instrument, start, end)
