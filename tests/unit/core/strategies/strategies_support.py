"""Helpers for the strategy tests: random IR (hypothesis), a slow reference evaluator of the semantics,
and compiling strategy text.

The reference evaluator is the language's definition written as directly as possible — full
histories, recursion, no sharing, no shift registers — so the compiled engine can be held to it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

from hypothesis import strategies as st

from processors.core.strategies import ir
from processors.core.strategies.engine import CompiledStrategies
from processors.core.strategies.file import parse_strategies

LeafValue = Callable[[ir.PriceField | ir.Indicator, int], float | None]


def compile_text(text: str, candle_timeframes: Sequence[str] = ()) -> CompiledStrategies:
    definitions = parse_strategies(text, syntax="toml", candle_timeframes=candle_timeframes)
    return CompiledStrategies(definitions, candle_timeframes=candle_timeframes)


# -- random IR ----------------------------------------------------------------------------------

NUMBERS = [0.0, 1.0, 2.5, 30.0, 50.0, 70.0, 1e-05, 64000.0]


def expressions(leaves: Sequence[ir.PriceField | ir.Indicator], max_depth: int = 4,
                numbers: Sequence[float] = NUMBERS,
                ) -> tuple[st.SearchStrategy[ir.Expression], st.SearchStrategy[ir.Expression]]:
    """(numbers, conditions) over ``leaves`` and the constants ``numbers``: every IR node kind, history up to 3 back."""
    base_numbers: st.SearchStrategy[ir.Expression] = st.one_of(
        st.sampled_from(list(leaves)), st.sampled_from(list(numbers)).map(ir.Number))

    def extend_numbers(inner: st.SearchStrategy[ir.Expression]) -> st.SearchStrategy[ir.Expression]:
        return st.one_of(
            inner.map(ir.Negate),
            st.builds(ir.Arithmetic, st.sampled_from(["+", "-", "*", "/"]), inner, inner),
            st.builds(ir.Past, inner, st.integers(1, 3)),
        )

    numeric = st.recursive(base_numbers, extend_numbers, max_leaves=max_depth)

    base_conditions: st.SearchStrategy[ir.Expression] = st.one_of(
        st.builds(ir.Compare, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), numeric, numeric),
        st.builds(ir.Cross, st.sampled_from(["above", "below"]), numeric, numeric),
        st.builds(ir.Trend, st.sampled_from(["rising", "falling"]), numeric, st.integers(1, 3)),
    )

    def extend_conditions(inner: st.SearchStrategy[ir.Expression]) -> st.SearchStrategy[ir.Expression]:
        return st.one_of(
            inner.map(ir.Not),
            st.builds(ir.Logic, st.sampled_from(["and", "or"]), inner, inner),
            st.builds(ir.Past, inner, st.integers(1, 3)),
        )

    conditions = st.recursive(base_conditions, extend_conditions, max_leaves=max_depth)
    return numeric, conditions


# -- the reference evaluator ----------------------------------------------------------------------

_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
            "!=": operator.ne}


class Reference:
    """Evaluates IR at evaluation index t, reading leaves through ``leaf_value(leaf, t)``."""

    def __init__(self, leaf_value: LeafValue) -> None:
        self.leaf_value = leaf_value

    def value(self, expression: ir.Expression, t: int) -> float | bool | None:
        if t < 0:
            return None
        if isinstance(expression, ir.Number):
            return expression.value
        if isinstance(expression, ir.PriceField | ir.Indicator):
            return self.leaf_value(expression, t)
        if isinstance(expression, ir.Past):
            return self.value(expression.operand, t - expression.offset)
        if isinstance(expression, ir.Negate):
            x = self.value(expression.operand, t)
            return None if x is None else -x
        if isinstance(expression, ir.Not):
            x = self.value(expression.operand, t)
            return None if x is None else not x
        if isinstance(expression, ir.Trend):
            now = self.value(expression.operand, t)
            before = [self.value(expression.operand, t - i) for i in range(1, expression.length + 1)]
            if now is None or any(b is None for b in before):
                return None
            return all((now > b) if expression.direction == "rising" else (now < b) for b in before)  # type: ignore[operator]
        if isinstance(expression, ir.Cross):
            a, b = self.value(expression.left, t), self.value(expression.right, t)
            a1, b1 = self.value(expression.left, t - 1), self.value(expression.right, t - 1)
            if a is None or b is None or a1 is None or b1 is None:
                return None
            if expression.direction == "above":
                return a1 <= b1 and a > b  # type: ignore[operator]
            return a1 >= b1 and a < b  # type: ignore[operator]
        left, right = self.value(expression.left, t), self.value(expression.right, t)
        if left is None or right is None:
            return None
        if isinstance(expression, ir.Logic):
            return (left and right) if expression.op == "and" else (left or right)  # type: ignore[return-value]
        if isinstance(expression, ir.Compare):
            return _COMPARE[expression.op](left, right)  # type: ignore[no-any-return]
        if expression.op == "/":
            return None if right == 0.0 else left / right  # type: ignore[operator]
        return _ARITHMETIC[expression.op](left, right)  # type: ignore[no-any-return]


def reference_fires(results: Sequence[bool | None], times: Sequence[int], confirm: int = 1,
                    cooldown_us: int = 0) -> list[int]:
    """Evaluation indexes where a side fires: the last ``confirm`` results true, the one before them false,
    and no earlier signal of the side within the cooldown."""
    fired: list[int] = []
    last: int | None = None
    for t in range(len(results)):
        if t - confirm < 0 or results[t - confirm] is not False:
            continue
        if not all(results[t - i] is True for i in range(confirm)):
            continue
        if last is not None and times[t] - last < cooldown_us:
            continue
        fired.append(t)
        last = times[t]
    return fired
