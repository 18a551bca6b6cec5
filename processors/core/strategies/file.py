"""Strategy files: ``[strategies.NAME]`` tables of rules in TOML or YAML → :class:`~.ir.StrategyDefinition`.

::

    [strategies.trend_pullback]
    timeframe = "5m"                 # "tick" (the default) or a configured candle timeframe
    params = { fast = 9, slow = 21 }  # named numbers the rules may use
    buy  = "crosses_above(ema(fast), ema(slow)) and rsi(14) < 70 and close > sma(50)@1h"
    sell = "crosses_below(ema(fast), ema(slow)) or rsi(14) > 80"
    confirm = 1                      # evaluations the condition must hold (default 1)
    cooldown = "15m"                 # per symbol and side, in event time (default "0")
    symbols = ["BTC-USD", "ETH-USD"]  # optional; default every symbol
    description = "optional text"

Read once at start by a runner (:func:`load_strategies`), which passes the candle timeframes
it builds. Everything wrong is reported at once in one :class:`StrategyFileError` naming the
file, the strategy, the key and — for rules — the column and what was expected, with the
rule and a caret under the column. Sweeps re-resolve a file with other parameter values
through ``overrides`` (no text is edited).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from processors.core.config_errors import PathPart, Problem, problems_from_validation
from processors.core.config_file import ConfigDocument, ConfigFileError, load_document, parse_document
from processors.core.strategies import ir, parser
from processors.core.strategies.catalog import CATALOG
from processors.core.strategies.parser import KEYWORDS, ParseError
from processors.core.strategies.resolve import FUNCTIONS, PRICE_NAMES, Context, check_timeframe, resolve_rule
from schemas.symbols import InvalidSymbolError, normalize_symbol
from schemas.timeframes import InvalidTimeframeError, validate_timeframe

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
PARAMETER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
DURATION = re.compile(r"^([0-9]{1,9})(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_COOLDOWN_MS = 366 * 86_400_000


class StrategyFileError(ConfigFileError):
    """A strategy file cannot be used; the message lists every problem with its location."""


class _Table(BaseModel):
    """The shape of one ``[strategies.NAME]`` table (values are checked further by hand)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    timeframe: str = ir.TICK
    buy: str | None = None
    sell: str | None = None
    confirm: Annotated[int, Field(ge=1, le=ir.MAX_HISTORY)] = 1
    cooldown: str = "0"
    symbols: list[str] | None = None
    params: dict[str, int | float] = Field(default_factory=dict)
    description: str = ""


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    strategies: dict[str, dict[str, Any]] = Field(default_factory=dict)


def parse_duration(text: str) -> int:
    """Milliseconds of ``"0"``, ``"500ms"``, ``"90s"``, ``"15m"``, ``"4h"``, ``"1d"``; raises ``ValueError``."""
    if text == "0":
        return 0
    match = DURATION.match(text)
    if match is None:
        raise ValueError(f"expected a duration like 90s, 15m or 4h (or 0), got {text!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def _caret(text: str, column: int) -> str:
    """The rule and a caret under ``column`` (for people reading the error)."""
    return f"\n      {text}\n      {' ' * (column - 1)}^"


def define_strategy(name: str, table: Mapping[str, Any], *, candle_timeframes: Collection[str],
                    overrides: Mapping[str, int | float] | None = None,
                    where: str | None = None) -> tuple[ir.StrategyDefinition | None, list[Problem]]:
    """One strategy from its table: the definition, or None and every problem (path ``strategies.NAME.key``).

    ``overrides`` replace declared parameters (a sweep's values); naming an undeclared
    parameter is a problem. ``where`` names a table that is not in a file (a built-in): the
    problems' paths then start with it. Used by :func:`strategies_from_mapping` and for built-ins.
    """
    base: tuple[PathPart, ...] = () if where else ("strategies", name)
    problems: list[Problem] = []

    def problem(message: str, *key: PathPart, detail: str = "") -> None:
        problems.append(Problem((*base, *key), message, detail=detail, root=where))

    if not NAME.match(name):
        problem("a strategy name is a letter then letters, digits, _ or - (at most 64)")
    try:
        shape = _Table.model_validate(table)
    except ValidationError as error:
        # Report these, then go on checking the keys that are fine (every problem at once).
        problems += [Problem((*base, *found.path), found.message, root=where)
                     for found in problems_from_validation(error, table, _Table)]
        broken = {item["loc"][0] for item in error.errors() if item["loc"]}
        try:
            shape = _Table.model_validate({key: value for key, value in table.items() if key not in broken})
        except ValidationError:
            return None, problems

    params = dict(shape.params)
    for key, value in params.items():
        if not PARAMETER.match(key) or key in KEYWORDS or key in PRICE_NAMES or key in CATALOG or key in FUNCTIONS:
            problem("a parameter name is an identifier that is not a keyword, price field or function name",
                    "params", key)
        elif not math.isfinite(value):
            problem("must be a finite number", "params", key)
    for key, value in (overrides or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problem(f"an override must be a finite number, got {value!r}", "params", key)
        elif key not in params:
            problem(f"overridden but not declared (declared: {', '.join(params) or 'none'})", "params", key)
        else:
            params[key] = value

    timeframe_problem = check_timeframe(shape.timeframe, candle_timeframes)
    if timeframe_problem is not None:
        problem(timeframe_problem, "timeframe")
    try:
        cooldown_ms = parse_duration(shape.cooldown)
        if cooldown_ms > MAX_COOLDOWN_MS:
            problem("at most 366d", "cooldown")
    except ValueError as error:
        problem(str(error), "cooldown")
        cooldown_ms = 0
    symbols: tuple[str, ...] | None = None
    if shape.symbols is not None:
        found: list[str] = []
        if not shape.symbols:
            problem("empty: leave symbols out to run on every symbol", "symbols")
        for index, raw in enumerate(shape.symbols):
            try:
                symbol = normalize_symbol(raw)
            except InvalidSymbolError as error:
                problem(f"{raw!r}: {error}", "symbols", index)
                continue
            if symbol in found:
                problem(f"{symbol} is listed twice", "symbols", index)
            found.append(symbol)
        symbols = tuple(found)
    if shape.buy is None and shape.sell is None:
        problem("a strategy needs a buy rule, a sell rule or both")

    rules: dict[str, ir.Condition | None] = {}
    checked_on = shape.timeframe if timeframe_problem is None else ir.TICK  # still find the rules' own problems
    for side in ("buy", "sell"):
        text = getattr(shape, side)
        if text is None:
            rules[side] = None
            continue
        context = Context(checked_on, candle_timeframes, params)
        rules[side] = resolve_rule(text, context)
        for found_problem in context.problems:
            problem(f"column {found_problem.column}: {found_problem.message}", side,
                    detail=_caret(text, found_problem.column))
    if problems:
        return None, problems
    definition = ir.StrategyDefinition(
        name=name, timeframe=shape.timeframe, buy=rules["buy"], sell=rules["sell"], confirm=shape.confirm,
        cooldown_ms=cooldown_ms, symbols=symbols, params=tuple(params.items()), description=shape.description,
        buy_source=shape.buy or "", sell_source=shape.sell or "",
    )
    return definition, []


def strategies_from_mapping(raw: Mapping[str, Any], *, source: str, candle_timeframes: Collection[str],
                            overrides: Mapping[str, Mapping[str, int | float]] | None = None,
                            document: ConfigDocument | None = None,
                            ) -> tuple[ir.StrategyDefinition, ...]:
    """Every strategy of a parsed file, in file order; raises :class:`StrategyFileError` listing every problem
    (with its line when the ``document`` it was read from is given)."""
    document = document or ConfigDocument(source, "", "toml", dict(raw), "strategy file", StrategyFileError)
    try:
        shape = _File.model_validate(raw)
    except ValidationError as error:
        raise document.invalid(document.validation_problems(error, _File, data=raw)) from None
    problems: list[Problem] = []
    definitions: list[ir.StrategyDefinition] = []
    if not shape.strategies:
        problems.append(Problem(("strategies",), "the file defines no strategy ([strategies.NAME] tables)"))
    for name in (overrides or {}):
        if name not in shape.strategies:
            problems.append(Problem(("strategies", name), "overridden but not defined"))
    for name, table in shape.strategies.items():
        definition, found = define_strategy(name, table, candle_timeframes=candle_timeframes,
                                            overrides=(overrides or {}).get(name))
        problems += found
        if definition is not None:
            definitions.append(definition)
    if problems:
        raise document.invalid(problems)
    return tuple(definitions)


def parse_strategies(text: str, *, syntax: str, candle_timeframes: Collection[str], source: str = "<strategies>",
                     overrides: Mapping[str, Mapping[str, int | float]] | None = None,
                     ) -> tuple[ir.StrategyDefinition, ...]:
    """Strategies from TOML or YAML text (``syntax`` is ``toml`` or ``yaml``)."""
    document = parse_document(text, syntax, source, "strategy file", StrategyFileError)
    return strategies_from_mapping(document.data, source=source, candle_timeframes=candle_timeframes,
                                   overrides=overrides, document=document)


def load_strategies(path: str | Path, *, candle_timeframes: Collection[str],
                    overrides: Mapping[str, Mapping[str, int | float]] | None = None,
                    ) -> tuple[ir.StrategyDefinition, ...]:
    """Read a strategy file (.toml, .yaml, .yml); called once at start. Raises :class:`StrategyFileError`."""
    document = load_document(Path(path), "strategy file", StrategyFileError)
    return strategies_from_mapping(document.data, source=str(path), candle_timeframes=candle_timeframes,
                                   overrides=overrides, document=document)


def _read_timeframes(tree: parser.Syntax) -> list[str]:
    """The timeframes of the ``@tf`` suffixes in a rule's syntax tree, left to right."""
    if isinstance(tree, parser.At):
        return [*_read_timeframes(tree.operand), tree.timeframe]
    if isinstance(tree, parser.Binary):
        return [*_read_timeframes(tree.left), *_read_timeframes(tree.right)]
    if isinstance(tree, parser.Member | parser.Index | parser.Unary):
        return _read_timeframes(tree.operand)
    if isinstance(tree, parser.Call):
        return [found for argument in tree.arguments for found in _read_timeframes(argument)]
    return []


def candle_timeframes_named(tables: Mapping[str, Any]) -> tuple[str, ...]:
    """The candle timeframes ``[strategies.NAME]`` tables run on or read with ``@tf``, in order of first mention.

    For a runner that builds whatever candles its strategies need (the batch CLI) rather than a
    configured set (the processor). Only well-formed timeframes are listed; a table, rule or
    timeframe that is wrong is left for :func:`strategies_from_mapping` to report with its place.
    """
    found: dict[str, None] = {}
    for table in tables.values():
        if not isinstance(table, Mapping):
            continue
        named = [table.get("timeframe", ir.TICK)]
        for side in ("buy", "sell"):
            text = table.get(side)
            if isinstance(text, str):
                try:
                    named += _read_timeframes(parser.parse(text))
                except ParseError:
                    continue
        for timeframe in named:
            try:
                if isinstance(timeframe, str) and validate_timeframe(timeframe) != ir.TICK:
                    found[timeframe] = None
            except InvalidTimeframeError:
                continue
    return tuple(found)
