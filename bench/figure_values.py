"""The numbers side of bench/figures.py: paths and arithmetic into a results JSON, and how a number is written.

:func:`evaluate` resolves a marker's value in a results file; :class:`Shown` reads a figure as the docs
write it (separator, decimals, rounding, k/M), says whether a value agrees with it, and writes a new
value the same way. Pure; used by :mod:`bench.figures` and its tests.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bench.common import REPO

#: A number as the docs write it: thousands apart by a space, narrow space or comma; decimals; k/M.
NUMBER = re.compile(
    r"(?<![\w.,\u202f])(?P<integer>\d{1,3}(?:(?P<separator>[ ,\u202f])\d{3})+|\d+)(?:\.(?P<fraction>\d+))?"
    r"(?P<multiplier>[kM](?![A-Za-z]))?")


# -- the JSON side ------------------------------------------------------------------------------------

class FigureError(ValueError):
    """A marker that cannot be read or resolved; the message says which and why."""


def _segments(path: str) -> Iterator[str | tuple[str]]:
    """``a.b[name].c[2]`` → "a", "b", ("name",), "c", ("2",): plain keys, and bracketed selectors as 1-tuples."""
    position = 0
    while position < len(path):
        if path[position] == ".":
            position += 1
            continue
        if path[position] == "[":
            depth, end = 0, position
            while end < len(path):
                depth += {"[": 1, "]": -1}.get(path[end], 0)
                if depth == 0:
                    break
                end += 1
            if depth:
                raise FigureError(f"unclosed [ in {path!r}")
            yield (path[position + 1:end],)
            position = end + 1
            continue
        end = position
        while end < len(path) and path[end] not in ".[":
            end += 1
        yield path[position:end]
        position = end


def resolve(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document`` (see the module docstring for the syntax)."""
    current = document
    for segment in _segments(path.strip()):
        if isinstance(segment, tuple):
            selector = segment[0]
            if isinstance(current, list):
                if selector.isdigit():
                    current = current[int(selector)]
                    continue
                key, _, wanted = selector.partition("=") if "=" in selector else ("name", "", selector)
                named = [item for item in current if isinstance(item, dict) and str(item.get(key)) == wanted]
                if len(named) != 1:
                    raise FigureError(f"{len(named)} elements with {key} {wanted!r} in {path!r}")
                current = named[0]
                continue
            segment = selector
        if not isinstance(current, dict) or segment not in current:
            keys = sorted(current) if isinstance(current, dict) else type(current).__name__
            raise FigureError(f"no {segment!r} in {path!r} (there: {keys})")
        current = current[segment]
    return current


_OPERATORS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(document: Any, expression: str) -> float:
    """A path, or an arithmetic expression over ``{path}`` references, evaluated on ``document``."""
    if "{" not in expression:
        return _number(resolve(document, expression), expression)
    values: list[float] = []

    def reference(match: re.Match[str]) -> str:
        values.append(_number(resolve(document, match.group(1)), match.group(1)))
        return f"_v{len(values) - 1}"

    source = re.sub(r"\{([^}]*)\}", reference, expression)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise FigureError(f"not an expression: {expression!r} ({error.msg})") from None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id.startswith("_v"):
            return values[int(node.id[2:])]
        raise FigureError(f"only + - * / over numbers and {{paths}} in {expression!r}")

    return walk(tree)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FigureError(f"{path!r} is {value!r}, not a number")
    return float(value)


@cache
def load_json(relative: str) -> Any:
    path = Path(relative) if Path(relative).is_absolute() else REPO / relative
    if not path.is_file():
        raise FigureError(f"{relative} does not exist")
    return json.loads(path.read_text(encoding="utf-8"))


# -- the docs side ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shown:
    """How a number is written: its value, decimals, the power of ten it is rounded to, separator, k/M."""

    text: str
    value: float
    decimals: int
    rounded_to: int  # 10**rounded_to for a whole number ending in zeros ("805 000": 3)
    separator: str
    multiplier: str

    @classmethod
    def parse(cls, match: re.Match[str]) -> Shown:
        integer = match.group("integer")
        separator = match.group("separator") or ""
        digits = integer.replace(separator, "") if separator else integer
        fraction = match.group("fraction") or ""
        multiplier = match.group("multiplier") or ""
        scale = {"": 1.0, "k": 1e3, "M": 1e6}[multiplier]
        zeros = 0 if fraction or len(digits) == 1 else len(digits) - len(digits.rstrip("0"))
        value = float(f"{digits}.{fraction}" if fraction else digits) * scale
        return cls(match.group(0), value, len(fraction), zeros, separator, multiplier)

    @property
    def tolerance(self) -> float:
        scale = {"": 1.0, "k": 1e3, "M": 1e6}[self.multiplier]
        step = 10.0 ** self.rounded_to if not self.decimals else 10.0 ** -self.decimals
        return 0.5 * step * scale

    def agrees_with(self, value: float) -> bool:
        return abs(value - self.value) <= self.tolerance * (1 + 1e-9) + 1e-12 * abs(value)

    def format(self, value: float) -> str:
        """``value`` written the same way (same decimals, rounding, separator and multiplier)."""
        scale = {"": 1.0, "k": 1e3, "M": 1e6}[self.multiplier]
        scaled = value / scale
        if self.decimals:
            text = f"{scaled:,.{self.decimals}f}"
        else:
            step = 10 ** self.rounded_to
            text = f"{round(scaled / step) * step:,.0f}"
        integer, _, fraction = text.partition(".")
        integer = integer.replace(",", self.separator) if self.separator else integer.replace(",", "")
        return integer + (f".{fraction}" if fraction else "") + self.multiplier


def shape(sample: str) -> Shown:
    """The :class:`Shown` of a pending marker's sample (``1 234``, ``12.3``, ``52k``, ``1 000`` = to thousands)."""
    match = NUMBER.fullmatch(sample.strip())
    if match is None:
        raise FigureError(f"pending({sample}): not a number shape")
    return Shown.parse(match)
