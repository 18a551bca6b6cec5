"""A timeframe's evaluation as one generated Python function: straight-line code from the checked IR.

:class:`~processors.core.strategies.compiler.Plan` knows, per timeframe, what one evaluation
runs: the indicator nodes' updates, the history registers and the sides of its strategies.
Here that becomes Python source — one function per timeframe, compiled once per plan — in
which every slot of ``v`` is a literal index, every comparison and arithmetic operation is
written inline, and each side's memory (confirm, cooldown) is updated in place::

    s12 = v[12]                          # the side's operands, loaded once
    s15 = v[15]
    if s12 is None or s15 is None:       # any undefined operand: undefined
        now = None
    elif (d0 := s15) == 0.0:             # a division by zero: undefined
        now = None
    else:
        now = ((s12 / d0) > 1.5)
    before = v[40]
    v[40] = now
    if now is True and before is False:  # fires: true now, false at the previous evaluation
        ...

This is code generation from our own IR, never evaluation of a user's text: the source is
made only of slot numbers (ints), number literals (``repr`` of a finite int or float; any
other number is passed in as a bound value), the IR's operators checked against fixed
tables, and the names this module binds (node updates, ``max``/``min``). The IR has been
resolved and type-checked (:mod:`.resolve`); nothing of a rule's text reaches the source.

Semantics are those of the closures in :mod:`.closures` and :mod:`.frames` (the closure
tree, kept as the reference: ``CompiledStrategies(..., generate=False)``), and the tests hold
the two equal on random conditions (tests/unit/core/strategies/test_strategies_codegen.py):
an expression is undefined exactly when one of the slots it reads holds ``None`` or one of
its divisors is zero (every operation is strict, nothing short-circuits over an undefined
operand), so the generated code tests those first and then evaluates the whole expression.
Expressions nested deeper than :data:`MAX_DEPTH` call their closure instead (the source
stays far from CPython's nesting limits).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from processors.core.generated import compile_function
from processors.core.strategies import ir
from processors.core.timeutil import DAY_US

MAX_DEPTH = 48
"""Deeper expressions are evaluated by their closure (a call) rather than inline."""

_COMPARE = frozenset({"<", "<=", ">", ">=", "==", "!="})
_ARITHMETIC = frozenset({"+", "-", "*"})
_LOGIC = frozenset({"and", "or"})


class TooDeep(Exception):
    """An expression nested deeper than :data:`MAX_DEPTH` (evaluated by its closure instead)."""


class Inline(NamedTuple):
    """An expression as Python source over locals ``s<slot>`` (operands) and ``d<n>`` (divisors).

    The expression is undefined when one of ``slots`` holds None or one of ``guards`` (walrus
    tests of the divisors, innermost first) is true; otherwise ``text`` is its value.
    """

    text: str
    slots: tuple[int, ...]
    guards: tuple[str, ...]


Locate = Callable[[ir.Expression, bool], "int | None"]
"""The slot holding an expression's current value if the plan has one (a leaf, ``x[k]``, a tracked register)."""
Register = Callable[[ir.Expression], int]
"""The start of an expression's history register (its value now, then 1, 2, … evaluations ago)."""


class Renderer:
    """Renders IR expressions of one timeframe as :class:`Inline` source (divisor names unique per function)."""

    def __init__(self, locate: Locate, register: Register, program: Program) -> None:
        self.locate = locate
        self.register = register
        self.program = program

    def inline(self, expression: ir.Expression, track: bool = True) -> Inline:
        """``expression``; ``track=False``: computed even if a history register holds it (the register's own update)."""
        slots: dict[int, None] = {}
        guards: list[str] = []
        text = self._text(expression, track, slots, guards, 0)
        return Inline(text, tuple(slots), tuple(guards))

    def _slot(self, index: int, slots: dict[int, None]) -> str:
        if type(index) is not int:
            raise TypeError(f"a slot must be an int, got {index!r}")
        slots[index] = None
        return f"s{index}"

    def _text(self, expression: ir.Expression, track: bool, slots: dict[int, None], guards: list[str],
              depth: int) -> str:
        if depth > MAX_DEPTH:
            raise TooDeep
        located = self.locate(expression, track)
        if located is not None:
            return self._slot(located, slots)
        inner = depth + 1
        if isinstance(expression, ir.Number):
            return self.program.number(expression.value)
        if isinstance(expression, ir.Negate):
            return f"(-{self._text(expression.operand, True, slots, guards, inner)})"
        if isinstance(expression, ir.Not):
            return f"(not {self._text(expression.operand, True, slots, guards, inner)})"
        if isinstance(expression, ir.Arithmetic | ir.Compare | ir.Logic):
            left = self._text(expression.left, True, slots, guards, inner)
            right = self._text(expression.right, True, slots, guards, inner)
            op = expression.op
            if isinstance(expression, ir.Arithmetic) and op == "/":
                divisor = self.program.name("d")
                guards.append(f"({divisor} := {right}) == 0.0")
                return f"({left} / {divisor})"
            allowed = (_ARITHMETIC if isinstance(expression, ir.Arithmetic)
                       else _COMPARE if isinstance(expression, ir.Compare) else _LOGIC)
            if op not in allowed:
                raise ValueError(f"unknown operator {op!r}")
            return f"({left} {op} {right})"
        if isinstance(expression, ir.Cross):
            a, b = self.register(expression.left), self.register(expression.right)
            a0, a1 = self._slot(a, slots), self._slot(a + 1, slots)
            b0, b1 = self._slot(b, slots), self._slot(b + 1, slots)
            if expression.direction == "above":
                return f"({a1} <= {b1} and {a0} > {b0})"
            if expression.direction == "below":
                return f"({a1} >= {b1} and {a0} < {b0})"
            raise ValueError(f"unknown cross {expression.direction!r}")
        if isinstance(expression, ir.Trend):
            start = self.register(expression.operand)
            now = self._slot(start, slots)
            past = [self._slot(start + i, slots) for i in range(1, expression.length + 1)]
            # As the closure: x > max(x[1], …, x[n]) (rising), x < min(…) (falling); max of one value is it.
            if expression.direction == "rising":
                return f"({now} > {past[0]})" if len(past) == 1 else f"({now} > _max({', '.join(past)}))"
            if expression.direction == "falling":
                return f"({now} < {past[0]})" if len(past) == 1 else f"({now} < _min({', '.join(past)}))"
            raise ValueError(f"unknown trend {expression.direction!r}")
        raise ValueError(f"cannot generate code for {type(expression).__name__}")


@dataclass
class Program:
    """The source of one generated function and the values it binds (by name, never by text)."""

    lines: list[str] = field(default_factory=list)
    bound: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def name(self, prefix: str) -> str:
        """A fresh local name ``<prefix><n>``."""
        count = self.counters.get(prefix, 0)
        self.counters[prefix] = count + 1
        return f"{prefix}{count}"

    def bind(self, prefix: str, value: Any) -> str:
        """A name the function reads ``value`` by (a node update, a closure, a non-literal number)."""
        name = self.name(f"_{prefix}")
        self.bound[name] = value
        return name

    def number(self, value: float) -> str:
        if type(value) in (int, float) and math.isfinite(value):
            text = repr(value)
            return f"({text})" if text.startswith("-") else text
        return self.bind("k", value)

    def add(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def undefined(self, depth: int, target: str, value: Inline, loaded: set[int] | None = None) -> bool:
        """Loads the operands (those not in ``loaded``), then ``if <undefined>: target = None``; whether it wrote
        an ``if`` (the caller continues with ``elif``/``else``)."""
        for slot in value.slots:
            if loaded is None or slot not in loaded:
                self.add(depth, f"s{slot} = v[{slot}]")
                if loaded is not None:
                    loaded.add(slot)
        undefined = " or ".join(f"s{slot} is None" for slot in value.slots)
        guards = " or ".join(value.guards)
        if undefined:
            self.add(depth, f"if {undefined}:")
            self.add(depth + 1, f"{target} = None")
        if guards:
            self.add(depth, f"{'elif' if undefined else 'if'} {guards}:")
            self.add(depth + 1, f"{target} = None")
        return bool(undefined or guards)

    def assign(self, depth: int, target: str, value: Inline, loaded: set[int] | None = None) -> None:
        """``target = value``, or None when an operand is undefined; loads the operands not in ``loaded``."""
        if self.undefined(depth, target, value, loaded):
            self.add(depth, "else:")
            self.add(depth + 1, f"{target} = {value.text}")
        else:
            self.add(depth, f"{target} = {value.text}")

    def build(self, name: str, parameters: Sequence[str], where: str) -> Callable[..., Any]:
        """The function: compiled once, with no builtins but what was bound."""
        self.bound.setdefault("_max", max)
        self.bound.setdefault("_min", min)
        header = f"def _make({', '.join(self.bound)}):"
        body = [f"    def {name}({', '.join(parameters)}):", *("        " + line for line in self.lines or ["pass"]),
                f"    return {name}"]
        source = "\n".join([header, *body]) + "\n"
        function: Callable[..., Any] = compile_function(source, f"<strategies {where}>", "_make")(**self.bound)
        function.source = source  # type: ignore[attr-defined] # for people reading a traceback or a test failure
        return function


class PastStep(NamedTuple):
    """One history register's update: shift by one, then its expression's value now."""

    start: int
    end: int
    value: Inline | Callable[[list[Any]], Any]  # generated, or a closure when too deep


class SideStep(NamedTuple):
    """One side: its condition, memory slot, confirm and cooldown, index among the frame's sides."""

    position: int  # among the frame's sides (what the function returns when it fires)
    condition: Inline | Callable[[list[Any]], Any]
    slot: int
    confirm: int
    cooldown_us: int


def _shift(program: Program, depth: int, start: int, end: int) -> None:
    if end - start == 2:
        program.add(depth, f"v[{start + 1}] = v[{start}]")
    else:
        program.add(depth, f"v[{start + 1}:{end}] = v[{start}:{end - 1}]")


def _pasts(program: Program, leaf_pasts: Sequence[tuple[int, int, int]], pasts: Sequence[PastStep]) -> None:
    for start, end, source in leaf_pasts:
        _shift(program, 0, start, end)
        program.add(0, f"v[{start}] = v[{source}]")
    for step in pasts:
        _shift(program, 0, step.start, step.end)
        if isinstance(step.value, Inline):
            program.assign(0, f"v[{step.start}]", step.value)  # operands read now: inner registers just moved
        else:
            program.add(0, f"v[{step.start}] = {program.bind('c', step.value)}(v)")


def _fire(program: Program, depth: int, index: int) -> None:
    program.add(depth, "if fired is None:")
    program.add(depth + 1, f"fired = [{index}]")
    program.add(depth, "else:")
    program.add(depth + 1, f"fired.append({index})")


def _plain(program: Program, depth: int, keyword: str, condition: str, slot: int, position: int) -> None:
    """A defined plain side: fires when its condition is true now and was false at the previous evaluation."""
    program.add(depth, f"{keyword} {condition}:")
    program.add(depth + 1, f"if v[{slot}] is False:")
    _fire(program, depth + 2, position)
    program.add(depth + 1, f"v[{slot}] = True")
    program.add(depth, "else:")
    program.add(depth + 1, f"v[{slot}] = False")


def _sides(program: Program, sides: Sequence[SideStep]) -> None:
    """Every side in order; returns the indexes of those that fired (None: none)."""
    program.add(0, "fired = None")
    loaded: set[int] = set()  # nothing a condition reads changes while the sides run: load each slot once
    shared: tuple[int, ...] | None = None  # the operands of the open group of plain sides (see below)
    undefined_at = 0
    for side in sides:
        slot = side.slot
        plain = side.confirm == 1 and not side.cooldown_us
        if plain and isinstance(side.condition, Inline):
            # A defined condition is True or False (the language's conditions are bools): branch on it and
            # store the literal, as ``now = …; before = v[slot]; v[slot] = now; now is True and before is False``.
            # Consecutive sides reading the same operands (a strategy's BUY and SELL, typically) test them once.
            condition = side.condition
            operands = tuple(sorted(condition.slots))
            if operands and not condition.guards and operands == shared:
                program.lines.insert(undefined_at, "    " + f"v[{slot}] = None")
                undefined_at += 1
                _plain(program, 1, "if", condition.text, slot, side.position)
                continue
            shared = operands if operands and not condition.guards else None
            started = program.undefined(0, f"v[{slot}]", condition, loaded)
            undefined_at = len(program.lines)  # where the group's other sides add their ``v[slot] = None``
            if shared is not None:
                program.add(0, "else:")
                _plain(program, 1, "if", condition.text, slot, side.position)
            else:
                _plain(program, 0, "elif" if started else "if", condition.text, slot, side.position)
            continue
        shared = None
        if isinstance(side.condition, Inline):
            program.assign(0, "now", side.condition, loaded)
        else:
            program.add(0, f"now = {program.bind('c', side.condition)}(v)")
        program.add(0, f"before = v[{slot}]")
        program.add(0, f"v[{slot}] = now")
        if plain:
            program.add(0, "if now is True and before is False:")
            _fire(program, 1, side.position)
            continue
        # Confirm and cooldown (frames._held): the run of trues began after a false, reached confirm, no cooldown.
        confirm, run_at, armed_at, last_at = side.confirm, slot + 1, slot + 2, slot + 3
        program.add(0, "if now is not True:")
        program.add(1, f"v[{run_at}] = 0")
        program.add(0, "else:")
        program.add(1, "if before is True:")
        program.add(2, f"run = v[{run_at}] + 1")
        program.add(2, f"if run > {confirm}:")
        program.add(3, f"run = {confirm + 1}")
        program.add(1, "else:")
        program.add(2, "run = 1")
        program.add(2, f"v[{armed_at}] = before is False")
        program.add(1, f"v[{run_at}] = run")
        program.add(1, f"if run == {confirm} and v[{armed_at}]:")
        program.add(2, f"last = v[{last_at}]")
        program.add(2, f"if last is None or not (ts_us - last < {side.cooldown_us}):")
        program.add(3, f"v[{last_at}] = ts_us")
        _fire(program, 3, side.position)
    program.add(0, "return fired")


def tick_function(bar: tuple[int, ...], provided: tuple[int, int] | None, updates: Sequence[Callable[[list[Any]], None]],
                  leaf_pasts: Sequence[tuple[int, int, int]], pasts: Sequence[PastStep], sides: Sequence[SideStep],
                  refuse: Callable[[int, Any], None], program: Program) -> Callable[[list[Any], int, float, float, Any],
                                                                               list[int] | None]:
    """The tick timeframe's whole evaluation (as :func:`.frames.tick_evaluation`): bar, provided values,
    node updates, history registers, sides; the indexes of the sides that fired, or None.

    ``refuse(size, provided)`` raises for provided values of the wrong length; ``program``: the frame's (its
    expressions were rendered with it).
    """
    _, _, _, close_at, volume_at, day_at = bar
    program.add(0, f"v[{close_at}] = price")
    program.add(0, f"v[{volume_at}] = volume")
    program.add(0, f"v[{day_at}] = ts_us // {DAY_US}")
    if provided is not None:
        start, end = provided
        program.add(0, f"if provided is None or _len(provided) != {end - start}:")
        program.add(1, f"{program.bind('refuse', refuse)}({end - start}, provided)")
        program.add(0, f"v[{start}:{end}] = provided")
        program.bound["_len"] = len
    for update in updates:
        program.add(0, f"{program.bind('u', update)}(v)")
    _pasts(program, leaf_pasts, pasts)
    if sides:
        _sides(program, sides)
    else:
        program.add(0, "return None")
    return program.build("evaluate", ("v", "ts_us", "price", "volume", "provided"), "tick")


def candle_function(name: str, leaf_pasts: Sequence[tuple[int, int, int]], pasts: Sequence[PastStep],
                    sides: Sequence[SideStep], program: Program) -> Callable[[list[Any], int], list[int] | None]:
    """A candle timeframe's evaluation after its candle was folded in: history registers, then sides."""
    _pasts(program, leaf_pasts, pasts)
    if sides:
        _sides(program, sides)
    else:
        program.add(0, "return None")
    return program.build("evaluate", ("v", "ts_us"), name)


def named_function(columns: dict[str, int]) -> Callable[[list[Any]], dict[str, Any]]:
    """``{name: v[slot], …}`` for a frame's named columns, as one dict display (names by ``repr``)."""
    items = []
    for name, slot in columns.items():
        if type(name) is not str or type(slot) is not int:
            raise TypeError(f"a column is a name and a slot, got {name!r}: {slot!r}")
        items.append(f"{name!r}: v[{slot}]")
    program = Program()
    program.add(0, "return {" + ", ".join(items) + "}")
    return program.build("named", ("v",), "columns")
