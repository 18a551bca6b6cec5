"""``stockstream query latest|recommendation|indicators|signals|candles|daily SYMBOL[@venue] [--json]``.

(``stockstream query scorecard`` reads the log itself: stockstream/commands/scorecard.py.)

Reads the Redis views through the same :class:`ViewReader` as the API, so ``--json`` prints
exactly the API's response body; without it, rich tables. The argument names an instrument
(``BTC-USD@kraken``) or a symbol, which must then trade on exactly one venue (as the API's
``/symbols/{symbol}``). Exit 1 for an unknown or ambiguous symbol or when Redis is unreachable,
2 for invalid input.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stockstream.console import console

if TYPE_CHECKING:
    from stockstream.history.pages import PageRequest

query_app = typer.Typer(help="Print the materialized views (tables, or the API's JSON with --json).",
                        no_args_is_help=True)

Symbol = Annotated[str, typer.Argument(
    help="Instrument SYMBOL@venue (BTC-USD@kraken), or a symbol that trades on one venue (btc/usd is normalized).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]
Timeframe = Annotated[str, typer.Option("--timeframe", "-t", help="tick or a candle timeframe such as 1m.")]
Limit = Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many entries at most.")]
From = Annotated[str | None, typer.Option("--from", help="Range start (inclusive): an ISO time, a date or a duration"
                                                         " ago (2h). Older than the views hold: the Parquet history.")]
To = Annotated[str | None, typer.Option("--to", help="Range end (exclusive): an ISO time, a date or a duration ago.")]
Cursor = Annotated[str | None, typer.Option("--cursor", help="Continue with the older page (the cursor a page"
                                                             " printed).")]


def _page(limit: int, start: str | None, end: str | None, cursor: str | None) -> PageRequest:
    """The page asked for on the command line; exit 2 for a bad time or cursor."""
    from stockstream.history.cursor import InvalidCursorError, decode_cursor
    from stockstream.history.pages import PageRequest
    from stockstream.ranges import parse_moment

    now = datetime.now(UTC)
    try:
        low = parse_moment(start, now) if start else None
        high = parse_moment(end, now) if end else None
        key = decode_cursor(cursor) if cursor else None
    except (ValueError, InvalidCursorError) as error:
        console(stderr=True).print(f"[red]{escape(str(error))}[/]")
        raise typer.Exit(2) from None
    return PageRequest(limit=limit, low=low, high=high, cursor=key)


def _footer(view: BaseModel, count: int) -> None:
    """Where a page came from and how to get the older one."""
    source = "the Redis views" if getattr(view, "source", "views") == "views" else "the Parquet history"
    line = f"{count} entries from {source}"
    next_cursor = getattr(view, "next_cursor", None)
    if next_cursor:
        line += f"; older: --cursor {next_cursor}"
    console().print(line, markup=False, highlight=False)


def _fmt(value: object) -> Text:
    """A table cell as plain text: values from the system are never interpreted as rich markup."""
    if value is None:
        return Text("-")
    if isinstance(value, float):
        return Text(f"{value:,.6g}" if abs(value) < 1 else f"{value:,.2f}")
    if isinstance(value, datetime):
        return Text(value.isoformat().replace("+00:00", "Z"))
    return Text(str(value))


def _run(symbol: str, as_json: bool, read: Callable[..., BaseModel], render: Callable[[BaseModel], None]) -> None:
    import redis

    from processors.materialize.keys import ViewKeys
    from processors.materialize.reader import ViewReader
    from processors.materialize.settings import redis_client
    from processors.runtime.masking import unreachable
    from schemas.instruments import Instrument, InvalidInstrumentError, check_venue
    from schemas.symbols import InvalidSymbolError, normalize_symbol
    from stockstream.api.settings import ApiSettings

    wanted, _, venue = symbol.partition("@")
    try:
        symbol = normalize_symbol(wanted)
        if venue:
            check_venue(venue)
    except (InvalidSymbolError, InvalidInstrumentError) as error:
        console(stderr=True).print(f"[red]invalid instrument:[/] {error}")
        raise typer.Exit(2) from None
    from stockstream.history.pages import Pager
    from stockstream.history.parquet import HistoryStore

    settings = ApiSettings()
    settings.register_secrets()
    client = redis_client(settings, settings.redis_socket_timeout_s)
    reader = ViewReader(client, ViewKeys(settings.redis_key_prefix), lambda: datetime.now(UTC))
    pager = Pager(reader, HistoryStore(settings.history_path, settings.topics().ticks.name))
    try:
        venues = [Instrument(symbol, venue)] if venue else reader.venues_of(symbol)
        known = ", ".join(instrument.text for instrument in reader.instruments()) or "none yet"
        if not venues or not reader.known(venues[0]):
            what = f"instrument {symbol}@{venue}" if venue else f"symbol {symbol}"
            console(stderr=True).print(f"[red]unknown {what}[/]; known: {known}", highlight=False)
            raise typer.Exit(1)
        if len(venues) > 1:
            console(stderr=True).print(f"{symbol} trades on several venues; name one: "
                      f"{', '.join(instrument.text for instrument in venues)}", markup=False)
            raise typer.Exit(1)
        result = read(reader, venues[0], pager)
    except redis.RedisError as error:
        console(stderr=True).print(unreachable("Redis", settings.redis_url, error, setting="REDIS_URL"),
                                   markup=False, style="red")
        raise typer.Exit(1) from None
    finally:
        client.close()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        render(result)


def _check_timeframe(timeframe: str) -> str:
    from schemas.timeframes import InvalidTimeframeError, validate_timeframe

    try:
        return validate_timeframe(timeframe)
    except InvalidTimeframeError as error:
        console(stderr=True).print(f"[red]{error}[/]")
        raise typer.Exit(2) from None


@query_app.command()
def latest(symbol: Symbol, as_json: AsJson = False) -> None:
    """Latest tick and the latest indicator snapshot of every timeframe."""

    def render(view: BaseModel) -> None:
        table = Table(title=f"{view.symbol}@{view.venue} latest")  # type: ignore[attr-defined]
        table.add_column("what")
        table.add_column("value", justify="right")
        tick = view.tick  # type: ignore[attr-defined]
        if tick is not None:
            table.add_row("price", _fmt(tick.price))
            table.add_row("volume", _fmt(tick.volume))
            table.add_row("time", _fmt(tick.ts_event))
            table.add_row("price source", _fmt(tick.source))
        for timeframe, snapshot in view.indicators.items():  # type: ignore[attr-defined]
            for name, value in sorted(snapshot.values.items()):
                table.add_row(_fmt(f"{timeframe} {name}"), _fmt(value))
        console().print(table)

    _run(symbol, as_json, lambda reader, s, _pager: reader.latest(s), render)


@query_app.command()
def recommendation(symbol: Symbol, as_json: AsJson = False,
                   timeframe: Annotated[str | None, typer.Option("--timeframe", "-t")] = None,
                   strategy: Annotated[str | None, typer.Option(
                       "--strategy", help="Only this strategy's signals.",
                       show_default="RECOMMENDATION_STRATEGY, else any")] = None) -> None:
    """The current BUY/SELL/HOLD recommendation and the signal that set it."""
    import re

    from processors.materialize.keys import RULE_PATTERN
    from stockstream.api.settings import ApiSettings

    if timeframe is not None:
        _check_timeframe(timeframe)
    if strategy is None:
        strategy = ApiSettings().recommendation_strategy
    elif not re.match(RULE_PATTERN, strategy):
        raise typer.BadParameter("a strategy name is a letter, then letters, digits, _ or -", param_hint="--strategy")

    def render(view: BaseModel) -> None:
        source = view.set_by  # type: ignore[attr-defined]
        side = view.side  # type: ignore[attr-defined]
        color = {"BUY": "green", "SELL": "red"}.get(side, "yellow")
        console().print(f"{view.symbol}@{view.venue}: [bold {color}]{side}[/] ({view.state})")  # type: ignore[attr-defined]
        if source is not None:
            console().print(f"  set by {source.rule} {source.side} on {source.timeframe} at {_fmt(source.price)}"
                      f" ({_fmt(source.ts_event)}); decays at {_fmt(source.expires_at)}", markup=False)

    _run(symbol, as_json, lambda reader, s, _pager: reader.recommendation(s, timeframe, strategy), render)


@query_app.command()
def indicators(symbol: Symbol, as_json: AsJson = False, timeframe: Timeframe = "tick", limit: Limit = 20,
               start: From = None, end: To = None, cursor: Cursor = None) -> None:
    """Recent indicator snapshots of one timeframe."""
    _check_timeframe(timeframe)

    def render(view: BaseModel) -> None:
        history = view.history  # type: ignore[attr-defined]
        names = sorted({name for snapshot in history for name in snapshot.values})
        table = Table(title=f"{symbol} indicators ({timeframe})")
        for column in ("time", "price", *names):
            table.add_column(Text(column), justify="right")
        for snapshot in history:
            table.add_row(_fmt(snapshot.ts_event), _fmt(snapshot.price),
                          *(_fmt(snapshot.values.get(name)) for name in names))
        console().print(table)
        _footer(view, len(history))  # type: ignore[attr-defined]

    request = _page(limit, start, end, cursor)
    _run(symbol, as_json, lambda _reader, s, pager: pager.indicators(s, timeframe, request), render)


@query_app.command()
def signals(symbol: Symbol, as_json: AsJson = False, limit: Limit = 20,
            rule: Annotated[str | None, typer.Option("--rule", help="Only this rule.")] = None,
            side: Annotated[Literal["BUY", "SELL"] | None, typer.Option("--side", help="BUY or SELL.")] = None,
            start: From = None, end: To = None, cursor: Cursor = None) -> None:
    """Recent signals, newest first."""
    import re

    if rule is not None and not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", rule):
        console(stderr=True).print("[red]--rule must be a rule name like rsi_reversal[/]")
        raise typer.Exit(2)

    def render(view: BaseModel) -> None:
        table = Table(title=f"{symbol} signals")
        for column in ("time", "timeframe", "rule", "side", "price", "id"):
            table.add_column(column)
        for signal in view.signals:  # type: ignore[attr-defined]
            table.add_row(_fmt(signal.ts_event), _fmt(signal.timeframe), _fmt(signal.rule), _fmt(signal.side),
                          _fmt(signal.price), _fmt(signal.signal_id[:12]))
        console().print(table)
        _footer(view, len(view.signals))  # type: ignore[attr-defined]

    request = _page(limit, start, end, cursor)
    _run(symbol, as_json, lambda _reader, s, pager: pager.signals(s, request, rule, side), render)


@query_app.command()
def candles(symbol: Symbol, as_json: AsJson = False, timeframe: Timeframe = "1m", limit: Limit = 20,
            start: From = None, end: To = None, cursor: Cursor = None) -> None:
    """Recent candles of one timeframe, oldest first."""
    _check_timeframe(timeframe)

    def render(view: BaseModel) -> None:
        table = Table(title=f"{symbol} candles ({timeframe})")
        for column in ("open time", "open", "high", "low", "close", "volume", "trades", "state"):
            table.add_column(column, justify="right")
        for candle in view.candles:  # type: ignore[attr-defined]
            table.add_row(_fmt(candle.ts_open), _fmt(candle.open), _fmt(candle.high), _fmt(candle.low),
                          _fmt(candle.close), _fmt(candle.volume), _fmt(candle.trade_count),
                          "closed" if candle.final else "forming")
        console().print(table)
        _footer(view, len(view.candles))  # type: ignore[attr-defined]

    request = _page(limit, start, end, cursor)
    _run(symbol, as_json, lambda _reader, s, pager: pager.candles(s, timeframe, request), render)


@query_app.command()
def daily(symbol: Symbol, as_json: AsJson = False,
          start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
          end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")] = None) -> None:
    """Daily summaries, oldest first."""
    try:
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
    except ValueError as error:
        console(stderr=True).print(f"[red]dates are YYYY-MM-DD:[/] {error}")
        raise typer.Exit(2) from None
    if first and last and first > last:
        console(stderr=True).print(f"[red]--to ({last}) is before --from ({first})[/]")
        raise typer.Exit(2)

    def render(view: BaseModel) -> None:
        table = Table(title=f"{symbol} daily")
        for column in ("date", "open", "high", "low", "close", "mean", "vwap", "volume", "ticks", "buys", "sells",
                       "final"):
            table.add_column(column, justify="right")
        for day in view.days:  # type: ignore[attr-defined]
            table.add_row(_fmt(day.date), _fmt(day.open), _fmt(day.high), _fmt(day.low), _fmt(day.close),
                          _fmt(day.mean_price), _fmt(day.vwap), _fmt(day.volume), _fmt(day.tick_count),
                          _fmt(day.buy_count), _fmt(day.sell_count), _fmt("yes" if day.final else "no"))
        console().print(table)

    _run(symbol, as_json, lambda reader, s, _pager: reader.daily(s, first, last), render)


def register(app: typer.Typer) -> None:
    from stockstream.commands.scorecard import scorecard

    query_app.command("scorecard")(scorecard)
    app.add_typer(query_app, name="query")
