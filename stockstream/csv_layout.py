"""What the columns of a CSV mean, for ``stockstream indicators``: the files people actually have.

:func:`read_layout` looks at the first rows of a file and returns a :class:`Layout`, or raises
:class:`InputFormatError` with the header that is expected. Two kinds of file are understood:

- **ticks** — ``timestamp,symbol,price[,volume]`` (the default when the file has no header);
- **OHLCV bars** — ``Date,Open,High,Low,Close[,Volume]`` as a market-data download writes them
  (yfinance, exchanges' kline exports): each row is a finished candle.

A header is recognised by its shape: a first row in which no cell is a number is a header (a data
row always has a price). Names are compared ignoring case, spaces, ``_`` and ``-``, and the common
aliases are accepted (:data:`ALIASES`): ``time``/``date``/``datetime`` for the timestamp,
``ticker`` for the symbol, ``last``/``close`` for a tick's price, ``qty``/``size``/``quantity``/
``amount`` for the volume. Columns a download carries but the engine does not use (``Adj Close``,
``Dividends``, ``Stock Splits``…, :data:`IGNORED`) are skipped; any other column is refused, so a
misspelt name is never silently read as something else. yfinance's three-row header (``Price,…`` /
``Ticker,BTC-USD,…`` / ``Date,,…``) is understood, its ticker row giving the symbol.

A file without a symbol column needs one symbol for all its rows: ``--symbol``, the yfinance ticker
row, or the file's name when it is a symbol (``BTC-USD.csv``), in that order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.symbols import InvalidSymbolError, normalize_symbol

#: The meaning of a column → the names it may have in a header (compared by :func:`_key`).
ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "date", "datetime", "ts", "opentime", "timeutc", "dateutc"),
    "symbol": ("symbol", "ticker", "pair", "instrument", "productid"),
    "price": ("price", "last", "lastprice", "tradeprice"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close", "closeprice"),
    "volume": ("volume", "vol", "qty", "quantity", "size", "amount", "lastsize"),
    "venue": ("venue", "exchange"),
}
OPTIONAL_LAST = ("volume", "venue")  # a row may end before these when they are the last column
#: Columns of market-data downloads that the engine does not use: read past, never refused.
IGNORED = ("adjclose", "dividends", "stocksplits", "capitalgains", "trades", "numberoftrades", "tradecount",
           "vwap", "closetime", "quoteassetvolume", "quotevolume", "takerbuybaseassetvolume",
           "takerbuyquoteassetvolume", "ignore", "repaired?")
TICK_COLUMNS = ("timestamp", "symbol", "price", "volume", "venue")
BAR_COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")
EXPECTED = ("expected a header naming the columns — ticks: timestamp (or time, date, datetime), symbol (or ticker),"
            " price (or last, close) and optionally volume (or qty, size, quantity) and venue (or exchange); OHLCV"
            " bars: Date,Open,High,Low,Close and optionally Volume (a download from yfinance or an exchange) — or,"
            " without a header, rows of timestamp,symbol,price[,volume]")
_ROLE_OF = {alias: role for role, names in ALIASES.items() for alias in names}


class InputFormatError(Exception):
    """The input as a whole is unusable (its header or its shape); nothing was processed."""


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().strip('"').lstrip("\ufeff").lower())


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def looks_like_header(cells: Sequence[str]) -> bool:
    """A row with no number in it: a header (every data row has at least its price)."""
    return any(cell.strip() for cell in cells) and not any(_is_number(cell.strip()) for cell in cells)


@dataclass(frozen=True)
class Layout:
    """Which cell of a data row holds what, and how to write the row back.

    ``columns`` maps a meaning (``timestamp``, ``symbol``, ``price``, ``open`` … ``volume``,
    ``venue``) to its cell index; ``width`` is the number of cells a row has; ``header`` is the
    output's leading columns as the input named them, then ``symbol`` and ``venue`` when the input
    had none; ``header_rows`` is how many rows the header took (0 without a header).
    """

    kind: str  # "ticks" or "bars"
    columns: dict[str, int]
    width: int
    header: tuple[str, ...]
    header_rows: int
    symbol: str | None = None  # every row's symbol when the file has no symbol column
    symbol_origin: str = ""  # where that symbol came from, for a note to the user

    @property
    def price_column(self) -> int:
        return self.columns["close" if self.kind == "bars" else "price"]


def _default_layout(first: Sequence[str]) -> Layout:
    """No header: ``timestamp,symbol,price[,volume]`` (a venue needs a header); another width is refused."""
    names = TICK_COLUMNS[:4]
    if len(first) not in (3, 4):
        raise InputFormatError(f"the first row has {len(first)} fields and no header names them: {EXPECTED}")
    return Layout("ticks", {name: index for index, name in enumerate(names)}, len(names), (*names, "venue"), 0)


def _yfinance(rows: Sequence[Sequence[str]]) -> tuple[list[str], str | None]:
    """yfinance's multi-row header → one row of names and the ticker (when there is one)."""
    names = [cell.strip() for cell in rows[0]]
    ticker: str | None = None
    for row in rows[1:]:
        first = _key(row[0]) if row else ""
        rest = sorted({cell.strip() for cell in row[1:] if cell.strip()})
        if first in ("ticker", "symbol") and len(rest) == 1:
            ticker = rest[0]
        elif _ROLE_OF.get(first) == "timestamp" and not rest:
            names[0] = row[0].strip()
    if _key(names[0]) == "price":  # yfinance labels its index column "Price"
        names[0] = "Date"
    return names, ticker


def _symbol_from(name: str, origin: str) -> tuple[str, str] | None:
    try:
        return normalize_symbol(name), origin
    except InvalidSymbolError:
        return None


def read_layout(header_rows: Sequence[Sequence[str]], *, symbol: str | None = None,
                file_stem: str | None = None) -> Layout:
    """The layout from the header rows at the top of a file (empty: no header, ``header_rows[0]``
    absent) — see the module docstring. ``symbol`` is ``--symbol``; ``file_stem`` the input's name.

    Raises :class:`InputFormatError` saying which header is expected.
    """
    if len(header_rows) > 1:
        names, ticker = _yfinance(header_rows)
    else:
        names, ticker = [cell.strip() for cell in header_rows[0]], None
    written = ",".join(names)
    columns: dict[str, int] = {}
    unknown: list[str] = []
    for index, name in enumerate(names):
        key = _key(name)
        role = _ROLE_OF.get(key)
        if role is None:
            if key and key not in IGNORED:
                unknown.append(name)
            continue
        if role in columns:
            raise InputFormatError(f"header {written!r}: {names[columns[role]]!r} and {name!r} both name the"
                                   f" {role}; keep one ({EXPECTED})")
        columns[role] = index
    if unknown:
        raise InputFormatError(f"header {written!r}: unknown column{'s' if len(unknown) > 1 else ''}"
                               f" {', '.join(repr(name) for name in unknown)}; {EXPECTED}")
    bar_parts = [role for role in ("open", "high", "low") if role in columns]
    if bar_parts:
        missing = [role for role in ("open", "high", "low", "close") if role not in columns]
        if missing or "price" in columns:
            problem = f"bars need {', '.join(missing)}" if missing else "a price column beside open/high/low/close"
            raise InputFormatError(f"header {written!r}: {problem}; {EXPECTED}")
        kind = "bars"
    else:
        if "close" in columns and "price" in columns:
            raise InputFormatError(f"header {written!r}: both a price and a close column; {EXPECTED}")
        if "close" in columns:
            columns["price"] = columns.pop("close")
        kind = "ticks"
    missing = [role for role in ("timestamp", "price" if kind == "ticks" else "close") if role not in columns]
    if missing:
        raise InputFormatError(f"header {written!r}: no {' or '.join(missing)} column; {EXPECTED}")
    header = tuple(names)
    chosen: tuple[str, str] | None = None
    if "symbol" not in columns:
        chosen = (_symbol_from(symbol, "--symbol") if symbol else None) or (
            _symbol_from(ticker, "the ticker row of the header") if ticker else None) or (
            _symbol_from(file_stem, "the file name") if file_stem else None)
        if chosen is None:
            raise InputFormatError(f"header {written!r}: no symbol column (symbol or ticker): add one, or give"
                                   " --symbol, e.g. --symbol BTC-USD")
        header = (*header, "symbol")
    if "venue" not in columns:
        header = (*header, "venue")
    return Layout(kind, columns, len(names), header, len(header_rows),
                  chosen[0] if chosen else None, chosen[1] if chosen else "")


def layout_of(first_rows: Sequence[Sequence[str]], *, symbol: str | None = None,
              file_stem: str | None = None) -> Layout:
    """The layout from the first non-blank rows of a file (up to 3): a header by its shape, else the default."""
    if not first_rows or not looks_like_header(first_rows[0]):
        return _default_layout(first_rows[0] if first_rows else TICK_COLUMNS)
    header_rows = [first_rows[0]]
    if _key(first_rows[0][0]) == "price":  # yfinance: "Price,…" then "Ticker,…" and "Date,,…" rows
        header_rows += [row for row in first_rows[1:3] if looks_like_header(row) and len(row) == len(first_rows[0])]
    return read_layout(header_rows, symbol=symbol, file_stem=file_stem)
