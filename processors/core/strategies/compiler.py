"""IR → a :class:`Plan`: shared indicator nodes laid out in one flat list, plus small evaluation closures.

Called by :class:`~processors.core.strategies.engine.CompiledStrategies` once per distinct
set of strategies (strategies may be limited to some symbols). The plan is shared by
every symbol it applies to; a symbol's state is just ``list(plan.initial)``.

Layout of the flat list ``v`` (each part a *region* with a stable key, see :class:`Region`):

- per timeframe a *bar* region: what the evaluation feeds (open, high, low, close, volume,
  UTC day; on ``tick`` only close, volume, day — open/high/low read the close slot);
- per timeframe and indicator node (:mod:`processors.core.nodes`) its region; equal nodes on
  a timeframe are one region (two strategies using ``ema(12)`` on 5m share it);
- per evaluation timeframe and history-needing expression (the operand of ``x[k]``,
  ``crosses_*``, ``rising``/``falling``) a *past* region: a shift register of its value at
  the last k evaluations, shared like nodes;
- per strategy side (BUY/SELL) a *side* region: the previous result, the length of the
  current run of trues, whether the run began after a false, the last signal time.

Expressions compile to closures ``f(v) -> value | None``; leaves and history reads are plain
slot reads and the common shapes (``slot < constant``, ``slot > slot``, two-part ``and``)
get dedicated closures, so evaluating a rule costs a few attribute-free calls per tick.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from processors.core.nodes.base import Bar, Node, Output, Update
from processors.core.strategies import ir
from processors.core.strategies.catalog import column_name, node_output
from processors.core.timeutil import DAY_US
from schemas.timeframes import timeframe_ms

Evaluate = Callable[[list[Any]], Any]
"""A compiled expression: reads ``v`` and returns a float, a bool or None (undefined)."""
Step = Callable[[list[Any], int], bool]
"""A side's step: evaluate its condition at event time ``ts_us``, update its memory, say whether it fires."""

ANY = "x"  # region kind: None, a float or a bool (past values of numbers or conditions)
FLAG = "b"  # None or a bool
BOOL = "B"
_FIELDS = ("open", "high", "low", "close", "volume", "day")


@dataclass(frozen=True, slots=True)
class Region:
    """A named part of ``v``: where it starts, one kind character per slot (for checked loads)."""

    key: str
    start: int
    kinds: str


@dataclass(slots=True)
class Side:
    """One side of one strategy in a plan: its condition and where its memory lives."""

    strategy: int  # index into the compiled strategies
    side: str  # "BUY" or "SELL"
    condition: _Operand
    slot: int  # side region: [last result, run length, armed, last signal time (µs)]
    confirm: int
    cooldown_us: int
    step: Step = field(init=False)  # evaluates the condition, keeps the side's memory, says whether it fired

    def __post_init__(self) -> None:
        self.step = _step(self)


@dataclass(slots=True)
class Frame:
    """Everything that runs when one timeframe is evaluated."""

    name: str
    length_us: int  # 0 for tick
    bar: tuple[int, ...]  # slots of open, high, low, close, volume, day
    updates: list[Update] = field(default_factory=list)  # indicator nodes, dependencies first
    pasts: list[Update] = field(default_factory=list)  # history registers, inner expressions first
    leaf_pasts: list[tuple[int, int, int]] = field(default_factory=list)  # registers of leaves: start, end, source
    sides: list[Side] = field(default_factory=list)
    fires: tuple[tuple[Any, str], ...] = ()  # per side: its strategy (set by the engine) and BUY/SELL
    tick: Callable[[list[Any], int, float, float, Any], list[int] | None] | None = None
    """The tick timeframe's whole evaluation in one closure (see :func:`tick_evaluation`)."""
    runner: Callable[[list[Any], int], list[int] | None] | None = None  # evaluates every side (side_runner)
    run: tuple[Update, ...] = ()  # updates then pasts: what one tick runs before the sides
    reader: Callable[[list[Any]], tuple[Any, ...]] | None = None  # the columns' values, in order
    columns: dict[str, int] = field(default_factory=dict)  # named outputs of this timeframe → slot
    provided: tuple[int, int] | None = None  # the region of values the runner hands in, if any


class Plan:
    """The compiled form of a set of strategies (plus extra named outputs) for one group of symbols."""

    def __init__(self, strategies: Sequence[tuple[int, ir.StrategyDefinition]],
                 outputs: dict[str, list[tuple[str, ir.Indicator]]],
                 provided: dict[str, list[tuple[str, ir.Indicator]]] | None = None) -> None:
        self.initial: list[Any] = []
        self.regions: list[Region] = []
        self.frames: dict[str, Frame] = {}
        self._nodes: dict[tuple[str, Node], int] = {}
        self._pasts: dict[tuple[str, ir.Expression], int] = {}
        self._depths: dict[tuple[str, ir.Expression], int] = {}
        self._provided: dict[tuple[str, Output], int] = {}

        for timeframe, named in (provided or {}).items():  # values the runner hands in: a region of their own
            frame = self.frame(timeframe)
            start = self._allocate(f"{timeframe}|provided|{','.join(name for name, _ in named)}",
                                   [None] * len(named), "v" * len(named))
            frame.provided = (start, start + len(named))
            for offset, (name, indicator) in enumerate(named):
                self._provided.setdefault((timeframe, node_output(indicator)), start + offset)
                frame.columns.setdefault(name, start + offset)
        for named in outputs.values():  # requested outputs first, under their own names
            for name, indicator in named:
                self.leaf(indicator, name)
        for _, definition in strategies:
            self.frame(definition.timeframe)
            for condition in (definition.buy, definition.sell):
                if condition is not None:
                    self._demand(condition, definition.timeframe)
        for (timeframe, expression), depth in self._depths.items():  # inner expressions were found first
            self._past(timeframe, expression, depth)
        for index, definition in strategies:
            frame = self.frames[definition.timeframe]
            for side, condition in (("BUY", definition.buy), ("SELL", definition.sell)):
                if condition is None:
                    continue
                slot = self._allocate(f"side|{definition.name}|{definition.timeframe}|{definition.version}|{side}",
                                      [None, 0, False, None], FLAG + "i" + BOOL + "n")
                frame.sides.append(Side(index, side, self.operand(condition, definition.timeframe), slot,
                                        definition.confirm, definition.cooldown_ms * 1000))
        for frame in self.frames.values():
            if frame.leaf_pasts:
                frame.pasts.insert(0, _shift_leaves(tuple(frame.leaf_pasts)))
            frame.run = (*frame.updates, *frame.pasts)
            frame.runner = side_runner(frame.sides) if frame.sides else None
            if frame.name == ir.TICK:
                frame.tick = tick_evaluation(frame)
            if frame.columns:
                getter = operator.itemgetter(*frame.columns.values())
                frame.reader = getter if len(frame.columns) > 1 else lambda v, get=getter: (get(v),)
        self.size = len(self.initial)

    # -- layout ----------------------------------------------------------------------------------

    def _allocate(self, key: str, initial: list[Any], kinds: str) -> int:
        start = len(self.initial)
        self.initial += initial
        self.regions.append(Region(key, start, kinds))
        return start

    def frame(self, timeframe: str) -> Frame:
        frame = self.frames.get(timeframe)
        if frame is not None:
            return frame
        if timeframe == ir.TICK:
            start = self._allocate(f"{timeframe}|bar", [None, None, None], "vvn")
            bar = (start, start, start, start, start + 1, start + 2)
            frame = Frame(timeframe, 0, bar)
        else:
            start = self._allocate(f"{timeframe}|bar", [None] * 6, "vvvvvn")
            frame = Frame(timeframe, timeframe_ms(timeframe) * 1000, tuple(range(start, start + 6)))
        self.frames[timeframe] = frame
        return frame

    def node(self, timeframe: str, node: Node) -> int:
        """The start of ``node``'s region on ``timeframe`` (allocating it and its inputs first)."""
        base = self._nodes.get((timeframe, node))
        if base is not None:
            return base
        frame = self.frame(timeframe)
        sources = tuple(self.source(timeframe, source) for source in node.inputs())
        base = self._allocate(f"{timeframe}|{node.key()}", node.initial_region(), node.region_kinds())
        frame.updates.append(node.build(base, base + node.width(), sources))
        self._nodes[(timeframe, node)] = base
        return base

    def source(self, timeframe: str, source: Bar | Output) -> int:
        if isinstance(source, Bar):
            return self.frame(timeframe).bar[_FIELDS.index(source.field)]
        provided = self._provided.get((timeframe, source))
        if provided is not None:
            return provided
        return self.node(timeframe, source.node) + source.index

    def leaf(self, leaf: ir.PriceField | ir.Indicator, name: str | None = None) -> int:
        """The slot holding a leaf's current value; an indicator becomes a named column (``name`` or its own)."""
        if isinstance(leaf, ir.PriceField):
            return self.frame(leaf.timeframe).bar[_FIELDS.index(leaf.name)]
        slot = self.source(leaf.timeframe, node_output(leaf))
        columns = self.frame(leaf.timeframe).columns
        if name is not None or slot not in columns.values():
            columns.setdefault(name or column_name(leaf), slot)
        return slot

    # -- history ---------------------------------------------------------------------------------

    def _demand(self, expression: ir.Expression, timeframe: str) -> None:
        """Record which expressions need history on ``timeframe`` and how deep (children first)."""
        if isinstance(expression, ir.PriceField | ir.Indicator):
            self.leaf(expression)
            return
        if isinstance(expression, ir.Number):
            return
        if isinstance(expression, ir.Negate | ir.Not):
            self._demand(expression.operand, timeframe)
            return
        if isinstance(expression, ir.Past | ir.Trend):
            self._demand(expression.operand, timeframe)
            depth = expression.offset if isinstance(expression, ir.Past) else expression.length
            self._need(timeframe, expression.operand, depth)
            return
        self._demand(expression.left, timeframe)
        self._demand(expression.right, timeframe)
        if isinstance(expression, ir.Cross):
            self._need(timeframe, expression.left, 1)
            self._need(timeframe, expression.right, 1)

    def _need(self, timeframe: str, expression: ir.Expression, depth: int) -> None:
        key = (timeframe, expression)
        self._depths[key] = max(depth, self._depths.get(key, 0))

    def _past(self, timeframe: str, expression: ir.Expression, depth: int) -> None:
        size = depth + 1
        start = self._allocate(f"{timeframe}|past|{ir.to_text(expression)}", [None] * size, ANY * size)
        end = start + size
        self._pasts[(timeframe, expression)] = start
        if isinstance(expression, ir.PriceField | ir.Indicator):  # the common case: shifted together, one call
            self.frames[timeframe].leaf_pasts.append((start, end, self.leaf(expression)))
            return
        current = self.evaluator(expression, timeframe, track=False)

        if depth == 1:
            def update(v: list[Any]) -> None:
                v[end - 1] = v[start]
                v[start] = current(v)
        else:
            def update(v: list[Any]) -> None:
                v[start + 1:end] = v[start:end - 1]
                v[start] = current(v)

        self.frames[timeframe].pasts.append(update)

    # -- expressions -----------------------------------------------------------------------------

    def evaluator(self, expression: ir.Expression, timeframe: str, track: bool = True) -> Evaluate:
        """``expression`` as a closure over ``v``, evaluated on ``timeframe``."""
        return _closure(self.operand(expression, timeframe, track))

    def operand(self, expression: ir.Expression, timeframe: str, track: bool = True) -> _Operand:
        """A compiled operand: a constant, a slot, or a closure (so callers can specialize)."""
        if track:
            start = self._pasts.get((timeframe, expression))
            if start is not None and not isinstance(expression, ir.PriceField | ir.Indicator):
                return _Slot(start)  # its value was computed this evaluation by its history register
        if isinstance(expression, ir.Number):
            return _Constant(expression.value)
        if isinstance(expression, ir.PriceField | ir.Indicator):
            return _Slot(self.leaf(expression))
        if isinstance(expression, ir.Past):
            return _Slot(self._pasts[(timeframe, expression.operand)] + expression.offset)
        if isinstance(expression, ir.Negate):
            return _Function(_negate(self.evaluator(expression.operand, timeframe)))
        if isinstance(expression, ir.Not):
            return _Function(_not(self.evaluator(expression.operand, timeframe)))
        if isinstance(expression, ir.Arithmetic):
            return _Function(_arithmetic(expression.op, self.evaluator(expression.left, timeframe),
                                         self.evaluator(expression.right, timeframe)))
        if isinstance(expression, ir.Compare):
            left = self.operand(expression.left, timeframe)
            right = self.operand(expression.right, timeframe)
            return _Function(_compare(expression.op, left, right), _shape(expression.op, left, right))
        if isinstance(expression, ir.Logic):
            operands = [self.operand(part, timeframe) for part in _flatten(expression)]
            closures = [_closure(operand) for operand in operands]
            if expression.op == "or":
                return _Function(_any(closures))
            return _Function(_all(closures), parts=tuple(_part(operand) for operand in operands))
        if isinstance(expression, ir.Cross):
            first = self._pasts[(timeframe, expression.left)]
            second = self._pasts[(timeframe, expression.right)]
            above = expression.direction == "above"
            return _Function(_cross(above, first, second), cross=(first, second, above))
        start = self._pasts[(timeframe, expression.operand)]
        return _Function(_trend(expression.direction == "rising", start, expression.length))


# -- compiled operands and closures ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Constant:
    value: float


@dataclass(frozen=True, slots=True)
class _Slot:
    index: int


@dataclass(frozen=True, slots=True)
class _Function:
    function: Evaluate
    shape: tuple[Callable[[Any, Any], bool], int, Any, bool] | None = None
    """For a comparison of slots/constants: (compare, left slot, right slot or constant, right is a constant)."""
    parts: tuple[tuple[int, Any, Any, Any], ...] | None = None
    """For an ``and``: its parts as :func:`_part` describes them."""
    cross: tuple[int, int, bool] | None = None
    """For a cross: the history registers of its two operands and whether it is ``crosses_above``."""


def _part(operand: _Operand) -> tuple[int, Any, Any, Any]:
    """A conjunction part for :func:`side_runner`: (mode, left, right, compare).

    Modes: 0 slot vs constant, 1 slot vs slot, 2 a closure, 3 a slot holding a condition.
    """
    shape = operand.shape if isinstance(operand, _Function) else None
    if shape is not None:
        compare, left, right, constant = shape
        return (0 if constant else 1), left, right, compare
    if isinstance(operand, _Slot):
        return 3, operand.index, None, None
    return 2, _closure(operand), None, None


def _shape(op: str, left: _Operand, right: _Operand) -> tuple[Callable[[Any, Any], bool], int, Any, bool] | None:
    if isinstance(left, _Constant) and isinstance(right, _Slot):
        op = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]
        left, right = right, left
    if isinstance(left, _Slot) and isinstance(right, _Constant):
        return _ORDER[op], left.index, right.value, True
    if isinstance(left, _Slot) and isinstance(right, _Slot):
        return _ORDER[op], left.index, right.index, False
    return None


_Operand = _Constant | _Slot | _Function


def _closure(operand: _Operand) -> Evaluate:
    if isinstance(operand, _Slot):
        return operator.itemgetter(operand.index)
    if isinstance(operand, _Constant):
        value = operand.value
        return lambda v: value
    return operand.function


def _flatten(expression: ir.Logic) -> list[ir.Condition]:
    parts: list[ir.Condition] = []
    for side in (expression.left, expression.right):
        if isinstance(side, ir.Logic) and side.op == expression.op:
            parts += _flatten(side)
        else:
            parts.append(side)
    return parts


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
          "!=": operator.ne}


def _compare(op: str, left: _Operand, right: _Operand) -> Evaluate:
    """``left op right``; dedicated closures for slot/constant and slot/slot, the common shapes."""
    if isinstance(left, _Slot) and isinstance(right, _Constant):
        return _SLOT_CONSTANT[op](left.index, right.value)
    if isinstance(left, _Constant) and isinstance(right, _Slot):
        mirrored = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]
        return _SLOT_CONSTANT[mirrored](right.index, left.value)
    if isinstance(left, _Slot) and isinstance(right, _Slot):
        return _SLOT_SLOT[op](left.index, right.index)
    first, second, compare = _closure(left), _closure(right), _ORDER[op]

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


def _negate(inner: Evaluate) -> Evaluate:
    def evaluate(v: list[Any]) -> float | None:
        x = inner(v)
        return None if x is None else -x
    return evaluate


def _not(inner: Evaluate) -> Evaluate:
    def evaluate(v: list[Any]) -> bool | None:
        x = inner(v)
        return None if x is None else not x
    return evaluate


def _arithmetic(op: str, first: Evaluate, second: Evaluate) -> Evaluate:
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


def _all(parts: list[Evaluate]) -> Evaluate:
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


def _any(parts: list[Evaluate]) -> Evaluate:
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


def _cross(above: bool, left: int, right: int) -> Evaluate:
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


def _trend(rising: bool, start: int, length: int) -> Evaluate:
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


def _shift_leaves(registers: tuple[tuple[int, int, int], ...]) -> Update:
    """Every history register of a plain leaf shifted and refilled in one call."""
    def update(v: list[Any]) -> None:
        for start, end, source in registers:
            if end - start == 2:
                v[start + 1] = v[start]
            else:
                v[start + 1:end] = v[start:end - 1]
            v[start] = v[source]
    return update


def tick_evaluation(frame: Frame) -> Callable[[list[Any], int, float, float, Any], list[int] | None]:
    """The tick timeframe's evaluation as one closure (the hot path: constants captured, no lookups).

    Writes the tick's close, volume and UTC day (and the provided values), runs the nodes and
    history registers, then the sides; returns the indexes of the sides that fired, or None.
    """
    _, _, _, close_at, volume_at, day_at = frame.bar
    run = frame.run
    runner = frame.runner
    start, end = frame.provided if frame.provided is not None else (0, 0)
    size = end - start
    provides = frame.provided is not None

    def evaluate(v: list[Any], ts_us: int, price: float, volume: float, provided: Any) -> list[int] | None:
        v[close_at] = price
        v[volume_at] = volume
        v[day_at] = ts_us // DAY_US
        if provides:
            if provided is None or len(provided) != size:
                raise ValueError(f"expected {size} provided indicator values, got"
                                 f" {'none' if provided is None else len(provided)}")
            v[start:end] = provided
        for update in run:
            update(v)
        return None if runner is None else runner(v, ts_us)

    return evaluate


def _step(side: Side) -> Step:
    """The step of a side with confirm or cooldown (plain transitions run in :func:`side_runner`)."""
    slot = side.slot
    evaluate = _closure(side.condition)

    def held(v: list[Any], ts_us: int) -> bool:
        now = evaluate(v)
        before = v[slot]
        v[slot] = now
        return _held(side, v, now, before, ts_us)
    return held


_CONSTANT, _SLOTS, _CONJUNCTION, _GENERIC, _HELD, _CROSS = range(6)


def _entry(side: Side, index: int) -> tuple[int, Any, Any, Any, int, int]:
    """How :func:`side_runner` evaluates a side: its kind and operands (see there)."""
    condition = side.condition
    if side.confirm != 1 or side.cooldown_us:
        return _HELD, side.step, None, None, side.slot, index
    if isinstance(condition, _Function):
        if condition.shape is not None:
            compare, left, right, constant = condition.shape
            return (_CONSTANT if constant else _SLOTS), left, right, compare, side.slot, index
        if condition.parts is not None:
            return _CONJUNCTION, condition.parts, None, None, side.slot, index
        if condition.cross is not None:
            first, second, above = condition.cross
            return _CROSS, first, second, above, side.slot, index
    return _GENERIC, _closure(condition), None, None, side.slot, index


def side_runner(sides: Sequence[Side]) -> Callable[[list[Any], int], list[int] | None]:
    """One closure evaluating every side of a timeframe: the indexes of the sides that fired, or None.

    The common conditions — a slot against a constant or a slot, and an ``and`` (whose simple
    comparisons are inline too) — are evaluated inline from a table (no call per side but the comparison's C
    function); others call their closure. Plain transitions (confirm 1, no cooldown) fire when
    true now and false at the previous evaluation; sides with confirm or cooldown run their step.
    """
    entries = tuple(_entry(side, index) for index, side in enumerate(sides))

    def run(v: list[Any], ts_us: int) -> list[int] | None:
        fired: list[int] | None = None
        for kind, a, b, compare, slot, index in entries:
            # Literal kinds (0 _CONSTANT, 1 _SLOTS, 2 _CONJUNCTION, 3 _GENERIC, 4 _HELD, 5 _CROSS): no global lookups.
            if kind == 0:
                x = v[a]
                now = None if x is None else compare(x, b)
            elif kind == 1:
                x = v[a]
                y = v[b]
                now = None if x is None or y is None else compare(x, y)
            elif kind == 2:  # strict and: undefined as soon as one part is
                now = True
                for mode, left, right, part in a:
                    if mode == 0:
                        x = v[left]
                        if x is None:
                            now = None
                            break
                        if not part(x, right):
                            now = False
                    elif mode == 1:
                        x = v[left]
                        y = v[right]
                        if x is None or y is None:
                            now = None
                            break
                        if not part(x, y):
                            now = False
                    else:
                        x = left(v) if mode == 2 else v[left]
                        if x is None:
                            now = None
                            break
                        if not x:
                            now = False
            elif kind == 3:
                now = a(v)
            elif kind == 5:  # crosses_above/below over two history registers: a[1] <= b[1] and a > b
                x = v[a]
                y = v[b]
                x1 = v[a + 1]
                y1 = v[b + 1]
                if x is None or y is None or x1 is None or y1 is None:
                    now = None
                elif compare:
                    now = x1 <= y1 and x > y
                else:
                    now = x1 >= y1 and x < y
            else:
                if a(v, ts_us):
                    if fired is None:
                        fired = []
                    fired.append(index)
                continue
            before = v[slot]
            v[slot] = now
            if now is True and before is False:
                if fired is None:
                    fired = []
                fired.append(index)
        return fired

    return run


def _held(side: Side, v: list[Any], now: object, before: object, ts_us: int) -> bool:
    """Confirm and cooldown: the run of trues began after a false, reached ``confirm``, and no cooldown."""
    run_at, armed_at, last_at = side.slot + 1, side.slot + 2, side.slot + 3
    if now is not True:
        v[run_at] = 0
        return False
    if before is True:
        run = v[run_at] + 1
        if run > side.confirm:  # only its reaching ``confirm`` matters; keep the counter bounded
            run = side.confirm + 1
    else:
        run = 1
        v[armed_at] = before is False
    v[run_at] = run
    if run != side.confirm or not v[armed_at]:
        return False
    last = v[last_at]
    if last is not None and ts_us - last < side.cooldown_us:
        return False  # suppressed: the cooldown counts from the last signal actually emitted
    v[last_at] = ts_us
    return True
