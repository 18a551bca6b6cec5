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

from collections.abc import Sequence
from typing import Any

from processors.core.nodes.base import Bar, Node, Output
from processors.core.strategies import ir
from processors.core.strategies.catalog import column_name, node_output
from processors.core.strategies.closures import (
    Computed,
    Constant,
    Evaluate,
    Operand,
    Slot,
    all_of,
    any_of,
    arithmetic,
    closure,
    compare,
    cross,
    flatten,
    negate,
    negation,
    part,
    shape,
    trend,
)
from processors.core.strategies.codegen import (
    Inline,
    PastStep,
    Renderer,
    SideStep,
    TooDeep,
    candle_function,
    named_function,
    tick_function,
)
from processors.core.strategies.frames import (
    ANY,
    BOOL,
    FLAG,
    Frame,
    Region,
    Side,
    refuse_provided,
    shift_leaves,
    side_runner,
    tick_evaluation,
    with_pasts,
)
from schemas.timeframes import timeframe_ms

_FIELDS = ("open", "high", "low", "close", "volume", "day")


class Plan:
    """The compiled form of a set of strategies (plus extra named outputs) for one group of symbols."""

    def __init__(self, strategies: Sequence[tuple[int, ir.StrategyDefinition]],
                 outputs: dict[str, list[tuple[str, ir.Indicator]]],
                 provided: dict[str, list[tuple[str, ir.Indicator]]] | None = None, *, generate: bool = True) -> None:
        self.generate = generate
        """Evaluate through generated code (:mod:`.codegen`); False: the closure tree (the reference)."""
        self.initial: list[Any] = []
        self.regions: list[Region] = []
        self.frames: dict[str, Frame] = {}
        self._nodes: dict[tuple[str, Node], int] = {}
        self._pasts: dict[tuple[str, ir.Expression], int] = {}
        self._depths: dict[tuple[str, ir.Expression], int] = {}
        self._provided: dict[tuple[str, Output], int] = {}
        self._renderers: dict[str, Renderer] = {}

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
                operand = self.operand(condition, definition.timeframe)
                frame.sides.append(Side(index, side, operand, slot, definition.confirm, definition.cooldown_ms * 1000,
                                        self._inline(condition, definition.timeframe, operand)))
        for frame in self.frames.values():
            if frame.leaf_pasts:
                frame.pasts.insert(0, shift_leaves(tuple(frame.leaf_pasts)))
            frame.run = (*frame.updates, *frame.pasts)
            if generate:
                self._generate(frame)
            else:  # the closure tree
                frame.runner = side_runner(frame.sides) if frame.sides else None
                if frame.pasts or frame.sides:
                    frame.evaluate = with_pasts(tuple(frame.pasts), frame.runner)
                if frame.name == ir.TICK:
                    frame.tick = tick_evaluation(frame)
            if frame.columns:
                frame.named = named_function(frame.columns)
        self.size = len(self.initial)

    # -- generated code ---------------------------------------------------------------------------

    def _renderer(self, timeframe: str) -> Renderer:
        renderer = self._renderers.get(timeframe)
        if renderer is None:
            def locate(expression: ir.Expression, track: bool) -> int | None:  # as operand() finds slots
                if track:
                    start = self._pasts.get((timeframe, expression))
                    if start is not None and not isinstance(expression, ir.PriceField | ir.Indicator):
                        return start
                if isinstance(expression, ir.PriceField | ir.Indicator):
                    return self.leaf(expression)
                if isinstance(expression, ir.Past):
                    return self._pasts[(timeframe, expression.operand)] + expression.offset
                return None

            renderer = self._renderers[timeframe] = Renderer(locate, lambda e: self._pasts[(timeframe, e)],
                                                             self.frame(timeframe).program)
        return renderer

    def _inline(self, expression: ir.Expression, timeframe: str, operand: Operand,
                track: bool = True) -> Inline | Evaluate:
        """``expression`` as generated source, or its closure when it is too deep (or code is not generated)."""
        if not self.generate:
            return closure(operand)
        try:
            return self._renderer(timeframe).inline(expression, track)
        except TooDeep:
            return closure(operand)

    def _generate(self, frame: Frame) -> None:
        """The frame's generated functions: the whole tick evaluation, or a candle's registers and sides."""
        sides = [SideStep(i, side.inline, side.slot, side.confirm, side.cooldown_us)
                 for i, side in enumerate(frame.sides)]
        if frame.name == ir.TICK:
            frame.tick = tick_function(frame.bar, frame.provided, frame.updates, frame.leaf_pasts, frame.past_steps,
                                       sides, refuse_provided, frame.program)
        elif frame.pasts or frame.sides:
            frame.evaluate = candle_function(frame.name, frame.leaf_pasts, frame.past_steps, sides, frame.program)

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
        operand = self.operand(expression, timeframe, track=False)
        current = closure(operand)
        self.frames[timeframe].past_steps.append(PastStep(start, end, self._inline(expression, timeframe, operand,
                                                                                   track=False)))

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
        return closure(self.operand(expression, timeframe, track))

    def operand(self, expression: ir.Expression, timeframe: str, track: bool = True) -> Operand:
        """A compiled operand: a constant, a slot, or a closure (so callers can specialize)."""
        if track:
            start = self._pasts.get((timeframe, expression))
            if start is not None and not isinstance(expression, ir.PriceField | ir.Indicator):
                return Slot(start)  # its value was computed this evaluation by its history register
        if isinstance(expression, ir.Number):
            return Constant(expression.value)
        if isinstance(expression, ir.PriceField | ir.Indicator):
            return Slot(self.leaf(expression))
        if isinstance(expression, ir.Past):
            return Slot(self._pasts[(timeframe, expression.operand)] + expression.offset)
        if isinstance(expression, ir.Negate):
            return Computed(negate(self.evaluator(expression.operand, timeframe)))
        if isinstance(expression, ir.Not):
            return Computed(negation(self.evaluator(expression.operand, timeframe)))
        if isinstance(expression, ir.Arithmetic):
            return Computed(arithmetic(expression.op, self.evaluator(expression.left, timeframe),
                                         self.evaluator(expression.right, timeframe)))
        if isinstance(expression, ir.Compare):
            left = self.operand(expression.left, timeframe)
            right = self.operand(expression.right, timeframe)
            return Computed(compare(expression.op, left, right), shape(expression.op, left, right))
        if isinstance(expression, ir.Logic):
            operands = [self.operand(part, timeframe) for part in flatten(expression)]
            closures = [closure(operand) for operand in operands]
            if expression.op == "or":
                return Computed(any_of(closures))
            return Computed(all_of(closures), parts=tuple(part(operand) for operand in operands))
        if isinstance(expression, ir.Cross):
            first = self._pasts[(timeframe, expression.left)]
            second = self._pasts[(timeframe, expression.right)]
            above = expression.direction == "above"
            return Computed(cross(above, first, second), cross=(first, second, above))
        start = self._pasts[(timeframe, expression.operand)]
        return Computed(trend(expression.direction == "rising", start, expression.length))


