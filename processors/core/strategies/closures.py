"""Compiled expressions: operands (a constant, a slot, or a closure) and the closures over ``v``.

Used by :mod:`.compiler` to turn IR into closures ``f(v) -> value | None`` (None = undefined)
and by :mod:`.frames` to recognise the shapes it evaluates inline (``shape``, ``parts``,
``cross``). Every closure is strict: an undefined operand gives an undefined result.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from processors.core.strategies import ir

Evaluate = Callable[[list[Any]], Any]
"""A compiled expression: reads ``v`` and returns a float, a bool or None (undefined)."""


@dataclass(frozen=True, slots=True)
class Constant:
    value: float


@dataclass(frozen=True, slots=True)
class Slot:
    index: int


@dataclass(frozen=True, slots=True)
class Computed:
    function: Evaluate
    shape: tuple[Callable[[Any, Any], bool], int, Any, bool] | None = None
    """For a comparison of slots/constants: (compare, left slot, right slot or constant, right is a constant)."""
    parts: tuple[tuple[int, Any, Any, Any], ...] | None = None
    """For an ``and``: its parts as :func:`part` describes them."""
    cross: tuple[int, int, bool] | None = None
    """For a cross: the history registers of its two operands and whether it is ``crosses_above``."""


def part(operand: Operand) -> tuple[int, Any, Any, Any]:
    """A conjunction part for :func:`side_runner`: (mode, left, right, compare).

    Modes: 0 slot vs constant, 1 slot vs slot, 2 a closure, 3 a slot holding a condition.
    """
    shape = operand.shape if isinstance(operand, Computed) else None
    if shape is not None:
        compare, left, right, constant = shape
        return (0 if constant else 1), left, right, compare
    if isinstance(operand, Slot):
        return 3, operand.index, None, None
    return 2, closure(operand), None, None


def shape(op: str, left: Operand, right: Operand) -> tuple[Callable[[Any, Any], bool], int, Any, bool] | None:
    if isinstance(left, Constant) and isinstance(right, Slot):
        op = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]
        left, right = right, left
    if isinstance(left, Slot) and isinstance(right, Constant):
        return ORDER[op], left.index, right.value, True
    if isinstance(left, Slot) and isinstance(right, Slot):
        return ORDER[op], left.index, right.index, False
    return None


Operand = Constant | Slot | Computed


def closure(operand: Operand) -> Evaluate:
    if isinstance(operand, Slot):
        return operator.itemgetter(operand.index)
    if isinstance(operand, Constant):
        value = operand.value
        return lambda v: value
    return operand.function


def flatten(expression: ir.Logic) -> list[ir.Condition]:
    parts: list[ir.Condition] = []
    for side in (expression.left, expression.right):
        if isinstance(side, ir.Logic) and side.op == expression.op:
            parts += flatten(side)
        else:
            parts.append(side)
    return parts


ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
          "!=": operator.ne}


def compare(op: str, left: Operand, right: Operand) -> Evaluate:
    """``left op right``; dedicated closures for slot/constant and slot/slot, the common shapes."""
    if isinstance(left, Slot) and isinstance(right, Constant):
        return _SLOT_CONSTANT[op](left.index, right.value)
    if isinstance(left, Constant) and isinstance(right, Slot):
        mirrored = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]
        return _SLOT_CONSTANT[mirrored](right.index, left.value)
    if isinstance(left, Slot) and isinstance(right, Slot):
        return _SLOT_SLOT[op](left.index, right.index)
    first, second, compare = closure(left), closure(right), ORDER[op]

    def evaluate(v: list[Any]) -> bool | None:
        a = first(v)
        b = second(v)
        if a is None or b is None:
            return None
        return compare(a, b)  # type: ignore[no-any-return]

    return evaluate


def _slot_lt(i: int, c: float) -> Evaluate:
    def evaluate(v: list[Any]) -> bool | None:
        x = v[i]
        return None if x is None else x < c
    return evaluate


def _slot_le(i: int, c: float) -> Evaluate:
    def evaluate(v: list[Any]) -> bool | None:
        x = v[i]
        return None if x is None else x <= c
    return evaluate


def _slot_gt(i: int, c: float) -> Evaluate:
    def evaluate(v: list[Any]) -> bool | None:
        x = v[i]
        return None if x is None else x > c
    return evaluate


def _slot_ge(i: int, c: float) -> Evaluate:
    def evaluate(v: list[Any]) -> bool | None:
        x = v[i]
        return None if x is None else x >= c
    return evaluate


def _slot_op(compare: Callable[[Any, Any], bool]) -> Callable[[int, float], Evaluate]:
    def make(i: int, c: float) -> Evaluate:
        def evaluate(v: list[Any]) -> bool | None:
            x = v[i]
            return None if x is None else compare(x, c)
        return evaluate
    return make


def _slots_lt(i: int, j: int) -> Evaluate:
    def evaluate(v: list[Any]) -> bool | None:
        a = v[i]
        b = v[j]
        return None if a is None or b is None else a < b
    return evaluate


def _slots_gt(i: int, j: int) -> Evaluate:
    def evaluate(v: list[Any]) -> bool | None:
        a = v[i]
        b = v[j]
        return None if a is None or b is None else a > b
    return evaluate


def _slots_op(compare: Callable[[Any, Any], bool]) -> Callable[[int, int], Evaluate]:
    def make(i: int, j: int) -> Evaluate:
        def evaluate(v: list[Any]) -> bool | None:
            a = v[i]
            b = v[j]
            return None if a is None or b is None else compare(a, b)
        return evaluate
    return make


_SLOT_CONSTANT: dict[str, Callable[[int, float], Evaluate]] = {
    "<": _slot_lt, "<=": _slot_le, ">": _slot_gt, ">=": _slot_ge,
    "==": _slot_op(operator.eq), "!=": _slot_op(operator.ne),
}
_SLOT_SLOT: dict[str, Callable[[int, int], Evaluate]] = {
    "<": _slots_lt, ">": _slots_gt, "<=": _slots_op(operator.le), ">=": _slots_op(operator.ge),
    "==": _slots_op(operator.eq), "!=": _slots_op(operator.ne),
}


def negate(inner: Evaluate) -> Evaluate:
    def evaluate(v: list[Any]) -> float | None:
        x = inner(v)
        return None if x is None else -x
    return evaluate


def negation(inner: Evaluate) -> Evaluate:
    def evaluate(v: list[Any]) -> bool | None:
        x = inner(v)
        return None if x is None else not x
    return evaluate


def arithmetic(op: str, first: Evaluate, second: Evaluate) -> Evaluate:
    if op == "/":
        def divide(v: list[Any]) -> float | None:
            a = first(v)
            b = second(v)
            if a is None or b is None or b == 0.0:
                return None
            return a / b  # type: ignore[no-any-return]
        return divide
    combine = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op]

    def evaluate(v: list[Any]) -> float | None:
        a = first(v)
        b = second(v)
        if a is None or b is None:
            return None
        return combine(a, b)  # type: ignore[no-any-return]
    return evaluate


def all_of(parts: list[Evaluate]) -> Evaluate:
    """Strict ``and``: undefined if any part is; no short-circuit on false (an undefined part wins)."""
    if len(parts) == 2:
        first, second = parts

        def both(v: list[Any]) -> bool | None:
            a = first(v)
            if a is None:
                return None
            b = second(v)
            if b is None:
                return None
            return a and b  # type: ignore[no-any-return]
        return both
    every = tuple(parts)

    def evaluate(v: list[Any]) -> bool | None:
        result = True
        for part in every:
            x = part(v)
            if x is None:
                return None
            if not x:
                result = False
        return result
    return evaluate


def any_of(parts: list[Evaluate]) -> Evaluate:
    """Strict ``or``: undefined if any part is, even when another is true."""
    every = tuple(parts)

    def evaluate(v: list[Any]) -> bool | None:
        result = False
        for part in every:
            x = part(v)
            if x is None:
                return None
            if x:
                result = True
        return result
    return evaluate


def cross(above: bool, left: int, right: int) -> Evaluate:
    """``a[1] <= b[1] and a > b`` (above) / ``a[1] >= b[1] and a < b`` (below), from two history registers."""
    def evaluate(v: list[Any]) -> bool | None:
        a = v[left]
        b = v[right]
        a1 = v[left + 1]
        b1 = v[right + 1]
        if a is None or b is None or a1 is None or b1 is None:
            return None
        if above:
            return a1 <= b1 and a > b  # type: ignore[no-any-return]
        return a1 >= b1 and a < b  # type: ignore[no-any-return]
    return evaluate


def trend(rising: bool, start: int, length: int) -> Evaluate:
    """``x > x[i]`` (rising) / ``x < x[i]`` (falling) for every i in 1..length."""
    end = start + length + 1

    def evaluate(v: list[Any]) -> bool | None:
        x = v[start]
        past = v[start + 1:end]
        if x is None or None in past:
            return None
        return x > max(past) if rising else x < min(past)  # type: ignore[no-any-return]
    return evaluate


# -- sides ----------------------------------------------------------------------------------------


