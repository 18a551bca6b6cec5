"""What runs when a timeframe is evaluated: the layout types (regions, sides, frames) and the hot closures.

:class:`Frame` holds a timeframe's node updates, history registers and sides;
:func:`tick_evaluation` is the whole tick evaluation as one closure and :func:`side_runner`
evaluates every side of a frame from a table (the common condition shapes inline). Built by
:class:`~processors.core.strategies.compiler.Plan`, run by
:class:`~processors.core.strategies.engine.CompiledStrategies`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from processors.core.nodes.base import Update
from processors.core.strategies.closures import Computed, Evaluate, Operand, closure
from processors.core.strategies.codegen import Inline, PastStep, Program
from processors.core.timeutil import DAY_US

ANY = "x"  # region kind: None, a float or a bool (past values of numbers or conditions)
FLAG = "b"  # None or a bool
BOOL = "B"
Step = Callable[[list[Any], int], bool]
"""A side's step: evaluate its condition at event time ``ts_us``, update its memory, say whether it fires."""


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
    condition: Operand
    slot: int  # side region: [last result, run length, armed, last signal time (µs)]
    confirm: int
    cooldown_us: int
    inline: Inline | Evaluate  # the condition as generated source (codegen), or its closure
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
    past_steps: list[PastStep] = field(default_factory=list)  # the expression registers, for generated code
    sides: list[Side] = field(default_factory=list)
    fires: tuple[tuple[Any, str], ...] = ()  # per side: its strategy (set by the engine) and BUY/SELL
    tick: Callable[[list[Any], int, float, float, Any], list[int] | None] | None = None
    """The tick timeframe's whole evaluation in one closure (see :func:`tick_evaluation`)."""
    runner: Callable[[list[Any], int], list[int] | None] | None = None  # evaluates every side (side_runner)
    evaluate: Callable[[list[Any], int], list[int] | None] | None = None
    """A candle timeframe's evaluation once its candle is folded in: history registers, then every side."""
    program: Program = field(default_factory=Program)  # the generated code's source, names and bound values
    run: tuple[Update, ...] = ()  # updates then pasts: what one tick runs before the sides
    named: Callable[[list[Any]], dict[str, Any]] | None = None  # the columns by name (codegen.named_function)
    columns: dict[str, int] = field(default_factory=dict)  # named outputs of this timeframe → slot
    provided: tuple[int, int] | None = None  # the region of values the runner hands in, if any


def shift_leaves(registers: tuple[tuple[int, int, int], ...]) -> Update:
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
                refuse_provided(size, provided)
            v[start:end] = provided
        for update in run:
            update(v)
        return None if runner is None else runner(v, ts_us)

    return evaluate


def refuse_provided(size: int, provided: Any) -> None:
    """Raise for provided values that are missing or of the wrong length (they would shift every slot)."""
    raise ValueError(f"expected {size} provided indicator values, got {'none' if provided is None else len(provided)}")


def with_pasts(pasts: tuple[Update, ...], runner: Callable[[list[Any], int], list[int] | None] | None
               ) -> Callable[[list[Any], int], list[int] | None]:
    """A candle timeframe's evaluation from closures: the history registers, then the sides (if any)."""
    def evaluate(v: list[Any], ts_us: int) -> list[int] | None:
        for update in pasts:
            update(v)
        return None if runner is None else runner(v, ts_us)
    return evaluate


def _step(side: Side) -> Step:
    """The step of a side with confirm or cooldown (plain transitions run in :func:`side_runner`)."""
    slot = side.slot
    evaluate = closure(side.condition)

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
    if isinstance(condition, Computed):
        if condition.shape is not None:
            compare, left, right, constant = condition.shape
            return (_CONSTANT if constant else _SLOTS), left, right, compare, side.slot, index
        if condition.parts is not None:
            return _CONJUNCTION, condition.parts, None, None, side.slot, index
        if condition.cross is not None:
            first, second, above = condition.cross
            return _CROSS, first, second, above, side.slot, index
    return _GENERIC, closure(condition), None, None, side.slot, index


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
            # Literal kinds (0 _CONSTANT, 1 _SLOTS, 2 _CONJUNCTION, 3 _GENERIC, 4 _HELD, 5 _CROSS): no global lookups;
            # the common ones first (and, cross, two slots).
            now: bool | None
            if kind == 2:  # strict and: undefined as soon as one part is
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
            elif kind == 1:
                x = v[a]
                y = v[b]
                now = None if x is None or y is None else compare(x, y)
            elif kind == 0:
                x = v[a]
                now = None if x is None else compare(x, b)
            elif kind == 3:
                now = a(v)
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
