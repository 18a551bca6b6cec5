"""From a rule's syntax tree to the IR: names, parameters, types, timeframes and bounds checked.

Called by :mod:`.file` once per rule at load. Every problem found in a rule is collected
(:class:`RuleProblem`: 1-based column + what was expected), not just the first one; a rule
with problems yields ``None``. What is refused here:

- unknown names, functions, indicator lines, and calls with the wrong number or kind of
  arguments (``ema(12, 26)``, ``macd(12, 26, 9)`` without ``.line``/``.signal``/``.hist``);
- a number where a condition is needed (``rsi(14) and …``) and the other way round;
- timeframes that are not timeframes, ``@tick``, and timeframes the runner does not build
  candles for (``configured``);
- unbounded history: periods above 10 000, ``x[k]`` and ``rising``/``falling`` lengths above
  :data:`~processors.core.strategies.ir.MAX_HISTORY`; non-finite numbers.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from processors.core.strategies import ir, parser
from processors.core.strategies.catalog import CATALOG, indicator_problems
from schemas.timeframes import InvalidTimeframeError, validate_timeframe

PRICE_NAMES = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume", "price": "close"}
FUNCTIONS = ("crosses_above", "crosses_below", "rising", "falling")


@dataclass(frozen=True, slots=True)
class RuleProblem:
    column: int
    message: str


@dataclass(slots=True)
class Context:
    """What a rule is resolved against: its strategy's timeframe, the runner's timeframes, the parameters."""

    timeframe: str
    configured: Collection[str]  # candle timeframes the runner builds (``tick`` is always there)
    params: Mapping[str, int | float]
    problems: list[RuleProblem] = field(default_factory=list)

    def problem(self, column: int, message: str) -> None:
        self.problems.append(RuleProblem(column, message))


def resolve_rule(text: str, context: Context) -> ir.Condition | None:
    """The IR of one rule (a condition), or None with ``context.problems`` saying why."""
    try:
        tree = parser.parse(text)
        result = _Resolver(context).expression(tree)
    except parser.ParseError as error:
        context.problem(error.column, error.message)
        return None
    except RecursionError:
        context.problems.clear()
        context.problem(1, "the rule is nested too deeply")
        return None
    if result is not None and not ir.is_condition(result):
        context.problem(1, f"expected a condition (true or false), like {ir.to_text(result, context.timeframe)}"
                        " > 0, but the rule is a number")
        return None
    return result if not context.problems else None  # type: ignore[return-value]


def check_timeframe(timeframe: str, configured: Collection[str]) -> str | None:
    """Why a strategy cannot run on ``timeframe``, or None."""
    try:
        validate_timeframe(timeframe)
    except InvalidTimeframeError as error:
        return str(error)
    if timeframe != ir.TICK and timeframe not in configured:
        listed = ", ".join([ir.TICK, *configured])
        return (f"timeframe {timeframe} is not configured (configured: {listed}):"
                " add it to the runner's candle timeframes")
    return None


def start(tree: parser.Syntax) -> int:
    """The column where a syntax node's text begins."""
    while isinstance(tree, parser.Binary | parser.Member | parser.At | parser.Index):
        tree = tree.left if isinstance(tree, parser.Binary) else tree.operand
    return tree.column


def _suggest(name: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


class _Resolver:
    def __init__(self, context: Context) -> None:
        self.context = context

    def fail(self, tree: parser.Syntax, message: str) -> None:
        self.context.problem(start(tree), message)

    # -- typed entry points --------------------------------------------------------------------

    def number(self, tree: parser.Syntax, where: str) -> ir.Numeric | None:
        result = self.expression(tree)
        if result is not None and ir.is_condition(result):
            self.fail(tree, f"expected a number {where}, found the condition {ir.to_text(result, self.context.timeframe)}")
            return None
        return result  # type: ignore[return-value]

    def condition(self, tree: parser.Syntax, where: str) -> ir.Condition | None:
        result = self.expression(tree)
        if result is not None and not ir.is_condition(result):
            self.fail(tree, f"expected a condition {where}, found the number"
                      f" {ir.to_text(result, self.context.timeframe)} (compare it: … > 0)")
            return None
        return result  # type: ignore[return-value]

    def constant(self, tree: parser.Syntax, what: str) -> int | float | None:
        """A literal number or a parameter (what periods, offsets and lengths must be)."""
        if isinstance(tree, parser.Number):
            value: int | float = tree.value
        elif isinstance(tree, parser.Name) and tree.name in self.context.params:
            value = self.context.params[tree.name]
        else:
            self.fail(tree, f"expected a number or a parameter for {what}")
            return None
        if not math.isfinite(value):
            self.fail(tree, f"{what} must be a finite number")
            return None
        return value

    def count(self, tree: parser.Syntax, what: str, most: int) -> int | None:
        value = self.constant(tree, what)
        if value is None:
            return None
        if not float(value).is_integer() or not 1 <= value <= most:
            self.fail(tree, f"{what} must be a whole number from 1 to {most} (history is bounded),"
                      f" got {ir.format_number(value)}")
            return None
        return int(value)

    # -- the tree --------------------------------------------------------------------------------

    def expression(self, tree: parser.Syntax) -> ir.Expression | None:
        if isinstance(tree, parser.Number):
            if not math.isfinite(tree.value):
                self.fail(tree, "numbers must be finite")
                return None
            return ir.Number(float(tree.value))
        if isinstance(tree, parser.Name):
            return self.name(tree)
        if isinstance(tree, parser.Call | parser.Member | parser.At):
            return self.series(tree, self.context.timeframe)
        if isinstance(tree, parser.Index):
            operand = self.expression(tree.operand)
            offset = self.count(parser.Number(tree.offset, tree.column), "an offset in [ ]", ir.MAX_HISTORY)
            return None if operand is None or offset is None else ir.Past(operand, offset)
        if isinstance(tree, parser.Unary):
            if tree.op == "not":
                inner = self.condition(tree.operand, "after 'not'")
                return None if inner is None else ir.Not(inner)
            value = self.number(tree.operand, "after '-'")
            return None if value is None else ir.Negate(value)
        return self.binary(tree)

    def binary(self, tree: parser.Binary) -> ir.Expression | None:
        op = tree.op
        if op in ("and", "or"):
            left_condition = self.condition(tree.left, f"on the left of '{op}'")
            right_condition = self.condition(tree.right, f"on the right of '{op}'")
            if left_condition is None or right_condition is None:
                return None
            return ir.Logic(op, left_condition, right_condition)  # type: ignore[arg-type]
        left = self.number(tree.left, f"on the left of '{op}'")
        right = self.number(tree.right, f"on the right of '{op}'")
        if left is None or right is None:
            return None
        if op in ("+", "-", "*", "/"):
            return ir.Arithmetic(op, left, right)  # type: ignore[arg-type]
        return ir.Compare(op, left, right)  # type: ignore[arg-type]

    def name(self, tree: parser.Name) -> ir.Expression | None:
        name = tree.name
        if name in PRICE_NAMES:
            return ir.PriceField(PRICE_NAMES[name], self.context.timeframe)
        if name in self.context.params:
            value = self.constant(tree, f"parameter {name}")
            return None if value is None else ir.Number(float(value))
        if name in CATALOG or name in FUNCTIONS:
            self.fail(tree, f"{name} is a function: call it, like {self.signature(name)}")
            return None
        known = [*PRICE_NAMES, *self.context.params]
        parameters = ", ".join(self.context.params) or "none defined"
        self.fail(tree, f"unknown name '{name}'{_suggest(name, known)}: expected a price field (open, high, low,"
                  f" close, volume, price), a parameter ({parameters}) or a call like ema(12)")
        return None

    @staticmethod
    def signature(name: str) -> str:
        if name in CATALOG:
            return CATALOG[name].signature()
        return {"crosses_above": "crosses_above(a, b)", "crosses_below": "crosses_below(a, b)",
                "rising": "rising(x, n)", "falling": "falling(x, n)"}[name]

    def series(self, tree: parser.Call | parser.Member | parser.At | parser.Name,
               timeframe: str) -> ir.Expression | None:
        """A call, a line of a call, a price field, optionally with ``@timeframe``."""
        if isinstance(tree, parser.At):
            if isinstance(tree.operand, parser.At):
                self.fail(tree.operand, "only one @timeframe per operand")
                return None
            if not isinstance(tree.operand, parser.Call | parser.Member) and not (
                    isinstance(tree.operand, parser.Name) and tree.operand.name in PRICE_NAMES):
                self.context.problem(tree.column - 1, "@timeframe applies to an indicator or a price field,"
                                     " like sma(50)@1h or close@1h")
                return None
            if tree.timeframe == ir.TICK:
                self.context.problem(tree.column, "@tick is not allowed: the latest tick is not a closed candle;"
                                     " use a candle timeframe like @1m, or a strategy on timeframe tick")
                return None
            problem = check_timeframe(tree.timeframe, self.context.configured)
            if problem is not None:
                self.context.problem(tree.column, problem)
                return None
            return self.series(tree.operand, tree.timeframe)
        if isinstance(tree, parser.Name):
            return ir.PriceField(PRICE_NAMES[tree.name], timeframe)
        if isinstance(tree, parser.Member):
            if not isinstance(tree.operand, parser.Call) or tree.operand.name not in CATALOG:
                self.context.problem(tree.column, f"'.{tree.member}' selects a line of an indicator with several"
                                     " lines, like macd(12, 26, 9).signal")
                return None
            return self.call(tree.operand, tree.member, tree.column, timeframe)
        return self.call(tree, None, tree.column, timeframe)

    def call(self, tree: parser.Call, member: str | None, member_column: int,
             timeframe: str) -> ir.Expression | None:
        name = tree.name
        if name in FUNCTIONS:
            if member is not None:
                self.context.problem(member_column, f"{name}(…) has no lines: remove '.{member}'")
                return None
            if timeframe != self.context.timeframe:
                self.fail(tree, f"@timeframe applies to indicators and price fields, not to {name}(…)")
                return None
            return self.function(tree)
        info = CATALOG.get(name)
        if info is None:
            self.fail(tree, f"unknown function '{name}'{_suggest(name, [*CATALOG, *FUNCTIONS])}: expected one of"
                      f" {', '.join([*CATALOG, *FUNCTIONS])}")
            return None
        wanted = len(info.parameters) + int(info.takes_source)
        if len(tree.arguments) != wanted:
            self.fail(tree, f"{name} takes {wanted} argument{'s' if wanted != 1 else ''}: {info.signature()},"
                      f" got {len(tree.arguments)}")
            return None
        if info.members and member is None:
            lines = ", ".join(f".{line}" for line in info.members)
            self.fail(tree, f"{name} has several lines: add one of {lines} (like {info.signature()})")
            return None
        if member is not None and member not in info.members:
            lines = ", ".join(f".{line}" for line in info.members) or "none (it has one line)"
            self.context.problem(member_column, f"{name} has no line '.{member}': its lines are {lines}")
            return None
        arguments = list(tree.arguments)
        source: ir.PriceField | ir.Indicator | None = None
        if info.takes_source:
            source = self.source(arguments.pop(0), name, timeframe)
        params: list[int | float] = []
        failed = info.takes_source and source is None
        for parameter, argument in zip(info.parameters, arguments, strict=True):
            value = self.constant(argument, f"{name}'s {parameter.name}")
            problem = None if value is None else parameter.problem(value)
            if value is None or problem is not None:
                if problem is not None:
                    self.fail(argument, f"{name}: {problem}")
                failed = True
                continue
            params.append(int(value) if parameter.whole else float(value))
        if failed:
            return None
        indicator = ir.Indicator(name, tuple(params), member, timeframe, source)
        for problem in indicator_problems(indicator):
            self.fail(tree, problem)
            return None
        return indicator

    def source(self, tree: parser.Syntax, name: str, timeframe: str) -> ir.PriceField | ir.Indicator | None:
        """The series argument of highest/lowest: a price field or an indicator, on the call's timeframe."""
        if isinstance(tree, parser.At):
            self.fail(tree, f"put @{tree.timeframe} after the whole call: {name}(…)@{tree.timeframe}")
            return None
        if isinstance(tree, parser.Name) and tree.name in PRICE_NAMES or isinstance(tree, parser.Call | parser.Member):
            result = self.series(tree, timeframe)
            if result is None:
                return None
            if isinstance(result, ir.PriceField | ir.Indicator):
                return result
        self.fail(tree, f"the first argument of {name} must be a price field or an indicator, like"
                  f" {name}(high, 20) or {name}(rsi(14), 10)")
        return None

    def function(self, tree: parser.Call) -> ir.Expression | None:
        name = tree.name
        if len(tree.arguments) != 2:
            self.fail(tree, f"{name} takes 2 arguments: {self.signature(name)}, got {len(tree.arguments)}")
            return None
        first, second = tree.arguments
        if name.startswith("crosses_"):
            left = self.number(first, f"as the first argument of {name}")
            right = self.number(second, f"as the second argument of {name}")
            if left is None or right is None:
                return None
            return ir.Cross("above" if name == "crosses_above" else "below", left, right)
        operand = self.number(first, f"as the first argument of {name}")
        length = self.count(second, f"{name}'s length", ir.MAX_HISTORY)
        if operand is None or length is None:
            return None
        return ir.Trend("rising" if name == "rising" else "falling", operand, length)
