"""The intermediate representation (IR) of the rule language: typed, resolved, frozen.

This is the contract between the language front end (:mod:`.parser`, :mod:`.resolve`,
:mod:`.file`) and every backend that evaluates strategies: the O(1) streaming compiler
(:mod:`.compiler`, :mod:`.engine`) and a vectorized kernel for history. A backend never
sees text, parameter names or defaults — only these values:

- every parameter name is replaced by its number (``ema(ema_fast)`` → ``Indicator("ema", (9,), …)``);
- every leaf carries its **own** timeframe (``close > sma(50)@1h`` on a 5m strategy gives
  ``PriceField("close", "5m")`` and ``Indicator("sma", (50,), None, "1h")``);
- ``price`` is spelled ``close`` (they are the same series on every timeframe);
- periods are whole numbers within the bounds of :mod:`.catalog`, history offsets within
  :data:`MAX_HISTORY`, members are present exactly where an indicator has several lines.

Semantics every backend must implement (docs/core.md, "Strategies"):

- An expression is evaluated once per **evaluation** of its strategy: every tick of the
  symbol (timeframe ``tick``) or every closed candle of the strategy's timeframe.
- A leaf on the strategy's own timeframe is that evaluation's value; a leaf on another
  timeframe (``@1h``) is the value at that timeframe's latest candle closed at or before the
  evaluation (never a candle still forming: no look-ahead).
- Any undefined operand (an indicator still warming up, ``x[k]`` before k evaluations, a
  division by zero) makes the **whole condition** undefined: it neither fires nor counts
  as false. There is no short-circuit: ``false and undefined`` is undefined.
- ``Past(x, k)`` is x at the k-th previous evaluation of the strategy (of its timeframe,
  even when x reads another timeframe). ``Cross("above", a, b)`` is
  ``a[1] <= b[1] and a > b``; ``Cross("below", a, b)`` is ``a[1] >= b[1] and a < b``.
  ``Trend("rising", x, n)`` is ``x > x[i]`` for every i in 1..n (TradingView's ``ta.rising``);
  ``"falling"`` is ``x < x[i]`` for every i.
- A side fires when its condition is true at this evaluation, was **false** (defined) at the
  evaluation before the current run of trues, and the run has reached ``confirm``
  evaluations; ``cooldown_ms`` then suppresses a new signal of the same strategy, symbol and
  side until that much event time has passed since the last one.

Everything here is immutable and hashable, so backends can use nodes as dictionary keys
to share work (two strategies using ``ema(12)`` on the same timeframe share one state).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

LANGUAGE_VERSION = 1
"""Bumped whenever the meaning of a definition changes (it is part of every strategy version)."""

MAX_HISTORY = 1_000
"""The largest ``x[k]`` offset and ``rising``/``falling`` length: history is bounded."""

TICK = "tick"
PRICE_FIELDS = ("open", "high", "low", "close", "volume")
ArithmeticOperator = Literal["+", "-", "*", "/"]
CompareOperator = Literal["<", "<=", ">", ">=", "==", "!="]
LogicOperator = Literal["and", "or"]


@dataclass(frozen=True, slots=True)
class Number:
    """A constant (parameters are substituted before the IR is built)."""

    value: float


@dataclass(frozen=True, slots=True)
class PriceField:
    """``open``/``high``/``low``/``close``/``volume`` of a timeframe's evaluation.

    On ``tick`` open = high = low = close = the tick's price and volume = its volume (0 when
    unknown); on a candle timeframe, the closed candle's OHLCV.
    """

    name: str
    timeframe: str


@dataclass(frozen=True, slots=True)
class Indicator:
    """One line of an indicator on a timeframe, e.g. ``macd(12, 26, 9).signal@1h``.

    ``name`` is a catalog name (:data:`processors.core.strategies.catalog.CATALOG`), ``params``
    its numbers in call order (whole numbers are ``int``), ``member`` the line of a
    multi-line indicator (``None`` for single-line ones). ``source`` is the series of
    ``highest``/``lowest`` (a price field or another indicator on the same timeframe) and
    ``None`` for every other indicator, which reads the timeframe's prices itself.
    """

    name: str
    params: tuple[int | float, ...]
    member: str | None
    timeframe: str
    source: PriceField | Indicator | None = None


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Numeric


@dataclass(frozen=True, slots=True)
class Arithmetic:
    """``left op right``; a division by zero is undefined."""

    op: ArithmeticOperator
    left: Numeric
    right: Numeric


@dataclass(frozen=True, slots=True)
class Past:
    """``operand[offset]``: the operand at the offset-th previous evaluation (1 ≤ offset ≤ MAX_HISTORY).

    The operand is numeric or a condition; the result has the operand's type.
    """

    operand: Expression
    offset: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOperator
    left: Numeric
    right: Numeric


@dataclass(frozen=True, slots=True)
class Logic:
    """``left and right`` / ``left or right``, strict: undefined if either side is."""

    op: LogicOperator
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition


@dataclass(frozen=True, slots=True)
class Cross:
    """``crosses_above(left, right)`` / ``crosses_below(left, right)``."""

    direction: Literal["above", "below"]
    left: Numeric
    right: Numeric


@dataclass(frozen=True, slots=True)
class Trend:
    """``rising(operand, length)`` / ``falling(operand, length)``."""

    direction: Literal["rising", "falling"]
    operand: Numeric
    length: int


Numeric = Number | PriceField | Indicator | Negate | Arithmetic | Past
Condition = Compare | Logic | Not | Cross | Trend | Past
Expression = Numeric | Condition


def is_condition(expression: Expression) -> bool:
    """Whether ``expression`` is true/false (rather than a number)."""
    if isinstance(expression, Past):
        return is_condition(expression.operand)
    return isinstance(expression, Compare | Logic | Not | Cross | Trend)


@dataclass(frozen=True, slots=True)
class StrategyDefinition:
    """One resolved strategy: what every backend compiles.

    ``buy``/``sell`` are conditions (at least one is present). ``symbols`` is ``None`` for
    every symbol, else the normalized symbols it applies to. ``params`` are the values the
    rules were resolved with (for display and sweeps; already substituted in the IR).
    ``buy_source``/``sell_source`` keep the rule text as written (for people).
    """

    name: str
    timeframe: str
    buy: Condition | None
    sell: Condition | None
    confirm: int = 1
    cooldown_ms: int = 0
    symbols: tuple[str, ...] | None = None
    params: tuple[tuple[str, int | float], ...] = ()
    description: str = ""
    buy_source: str = ""
    sell_source: str = ""

    @property
    def buy_text(self) -> str | None:
        """The buy condition in canonical form (see :func:`to_text`)."""
        return None if self.buy is None else to_text(self.buy, self.timeframe)

    @property
    def sell_text(self) -> str | None:
        return None if self.sell is None else to_text(self.sell, self.timeframe)

    def normalized(self) -> dict[str, object]:
        """Everything that decides this strategy's signals, as plain values (the name aside)."""
        return {
            "language": LANGUAGE_VERSION,
            "timeframe": self.timeframe,
            "buy": self.buy_text,
            "sell": self.sell_text,
            "confirm": self.confirm,
            "cooldown_ms": self.cooldown_ms,
            "symbols": None if self.symbols is None else sorted(self.symbols),
        }

    @property
    def version(self) -> str:
        """16 hex digits of SHA-256 over :meth:`normalized`: equal definitions, equal versions.

        Renaming a strategy, renaming a parameter or reformatting a rule keeps the version;
        changing a number, an operator, the timeframe, confirm, cooldown or symbols changes it.
        """
        text = json.dumps(self.normalized(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# -- canonical text ---------------------------------------------------------------------------

_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "compare": 4, "+": 5, "-": 5, "*": 6, "/": 6, "negate": 7, "postfix": 8}


def format_number(value: int | float) -> str:
    """Whole numbers without a decimal point, others by ``repr`` (round-trips exactly)."""
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return repr(value)


def series_text(series: PriceField | Indicator, timeframe: str | None) -> str:
    """A leaf as written, ``@timeframe`` added when it differs from ``timeframe``."""
    if isinstance(series, PriceField):
        text = series.name
    else:
        arguments = [format_number(p) for p in series.params]
        if series.source is not None:
            arguments.insert(0, series_text(series.source, series.timeframe))
        text = f"{series.name}({', '.join(arguments)})"
        if series.member is not None:
            text += f".{series.member}"
    if series.timeframe != timeframe:
        text += f"@{series.timeframe}"
    return text


def to_text(expression: Expression, timeframe: str | None = None) -> str:
    """The canonical text of an expression, which parses back to the same IR.

    Minimal parentheses, single spaces around binary operators, ``@tf`` only on leaves whose
    timeframe differs from ``timeframe`` (the strategy's). Used for versions and messages.
    """
    return _text(expression, timeframe, 0)


def _text(expression: Expression, timeframe: str | None, outer: int) -> str:
    if isinstance(expression, Number):
        text = format_number(expression.value)
        return f"({text})" if expression.value < 0 and outer >= _PRECEDENCE["negate"] else text
    if isinstance(expression, PriceField | Indicator):
        return series_text(expression, timeframe)
    if isinstance(expression, Past):
        return f"{_text(expression.operand, timeframe, _PRECEDENCE['postfix'])}[{expression.offset}]"
    if isinstance(expression, Cross):
        return (f"crosses_{expression.direction}({_text(expression.left, timeframe, 0)},"
                f" {_text(expression.right, timeframe, 0)})")
    if isinstance(expression, Trend):
        return f"{expression.direction}({_text(expression.operand, timeframe, 0)}, {expression.length})"
    if isinstance(expression, Negate):
        inner = _PRECEDENCE["negate"]
        text = "-" + _text(expression.operand, timeframe, inner)
    elif isinstance(expression, Not):
        inner = _PRECEDENCE["not"]
        text = "not " + _text(expression.operand, timeframe, inner)
    elif isinstance(expression, Compare):
        inner = _PRECEDENCE["compare"]
        # Comparisons do not chain: both operands bind tighter.
        text = (f"{_text(expression.left, timeframe, inner + 1)} {expression.op}"
                f" {_text(expression.right, timeframe, inner + 1)}")
    elif isinstance(expression, Logic):
        inner = _PRECEDENCE[expression.op]
        text = (f"{_text(expression.left, timeframe, inner)} {expression.op}"
                f" {_text(expression.right, timeframe, inner + 1)}")
    else:
        inner = _PRECEDENCE[expression.op]
        text = (f"{_text(expression.left, timeframe, inner)} {expression.op}"
                f" {_text(expression.right, timeframe, inner + 1)}")
    return f"({text})" if inner < outer else text


def leaves(expression: Expression) -> list[PriceField | Indicator]:
    """Every price field and indicator an expression reads, depth first, with repeats."""
    found: list[PriceField | Indicator] = []
    _collect(expression, found)
    return found


def _collect(expression: Expression, found: list[PriceField | Indicator]) -> None:
    if isinstance(expression, PriceField | Indicator):
        found.append(expression)
    elif isinstance(expression, Negate | Not):
        _collect(expression.operand, found)
    elif isinstance(expression, Past | Trend):
        _collect(expression.operand, found)
    elif isinstance(expression, Arithmetic | Compare | Logic | Cross):
        _collect(expression.left, found)
        _collect(expression.right, found)
