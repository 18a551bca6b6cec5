"""The rule language over whole arrays: compiled strategies evaluated on a symbol's whole history at once.

The vectorized twin of :class:`processors.core.strategies.engine.CompiledStrategies`, for history
(the Spark backfill, backtests, sweeps). Same IR (:mod:`processors.core.strategies.ir`), same
semantics, same results — held to the O(1) engine by tests/unit/core/test_core_vector_strategies.py
(identical signals, indicator values bit for bit)::

    vector = VectorStrategies(definitions, candle_timeframes=("1m", "1h"), outputs={...})
    result = vector.evaluate("BTC-USD", {"tick": Series.ticks(ts, price, volume), "1m": Series.candles(...)},
                             handed={"1m": candles_before_each_tick})
    result.sides["tick"]     # per strategy side (engine order): a boolean mask over the tick evaluations
    result.columns["1m"]     # the named indicator values of every 1m evaluation (NaN = undefined)

How each part of the semantics maps onto arrays:

- Every expression is a pair (values, defined) over the evaluations of the strategy's timeframe;
  an undefined operand makes the result undefined (strict ``and``/``or``, no short-circuit), a
  division by zero is undefined. Values follow IEEE arithmetic exactly as Python floats do
  (an overflow is a defined ``inf``; comparisons with NaN are false, ``!=`` true).
- A leaf on another timeframe reads, at each evaluation, that timeframe's **latest candle handed to
  the engine before or with it**: for a candle timeframe, the latest candle closed at or before the
  evaluation's close (candles are handed in close order, those ending together before any
  evaluation); for ``tick``, the runner says how many candles of each timeframe were handed before
  each tick (``handed``: the pipeline closes windows before it evaluates the tick that closed them).
- ``x[k]`` is x shifted by k evaluations (undefined for the first k); ``crosses_*`` and
  ``rising``/``falling`` read those shifts. ``rising`` is ``x > max(x[1..n])`` with Python's ``max``
  (the first of the values unless a later one is greater) — the engine's definition, equal to
  "x > every x[i]" whenever no defined value is NaN.
- A side fires on a transition: true now and false (defined) at the previous evaluation; with
  ``confirm``/``cooldown`` the engine's run counter and event-time cooldown, in a compiled loop.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from processors.core.nodes.base import Output
from processors.core.strategies import ir
from processors.core.strategies.catalog import column_name, node_output
from processors.core.strategies.engine import BUY, SELL, CompiledStrategies, CompiledStrategy
from processors.core.vector.jit import njit
from processors.core.vector.nodes import Floats, Ints, NodeValues, Series

Mask = npt.NDArray[np.bool_]
Pair = tuple[npt.NDArray[np.float64] | Mask, Mask]
"""(values, defined) of an expression over a timeframe's evaluations."""

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class SideMask:
    """Where one side of one strategy fires: ``fired[i]`` for evaluation i of the strategy's timeframe."""

    strategy: CompiledStrategy
    side: str
    fired: Mask


@dataclass
class Evaluation:
    """A symbol's whole history evaluated: the sides per timeframe (engine order) and the named values."""

    symbol: str
    series: dict[str, Series]
    sides: dict[str, list[SideMask]] = field(default_factory=dict)
    columns: dict[str, dict[str, Floats]] = field(default_factory=dict)


class VectorStrategies:
    """A set of strategies compiled once for whole-array evaluation (the same arguments as the engine's).

    ``outputs`` and ``provided`` name indicator values as :class:`CompiledStrategies` does; here both
    are computed (nothing is handed in), and they name :attr:`Evaluation.columns` in the engine's order.
    Raises ``ValueError`` exactly where the engine does (the engine checks the definitions).
    """

    def __init__(self, definitions: Sequence[ir.StrategyDefinition], *, candle_timeframes: Collection[str],
                 outputs: Mapping[str, Sequence[tuple[str, ir.Indicator]]] | None = None,
                 provided: Mapping[str, Sequence[tuple[str, ir.Indicator]]] | None = None) -> None:
        self.engine = CompiledStrategies(definitions, candle_timeframes=candle_timeframes, outputs=outputs,
                                         provided=provided)
        self.strategies = self.engine.strategies
        self._named = [(timeframe, list(named)) for given in (provided, outputs) if given
                       for timeframe, named in given.items()]

    def chosen(self, symbol: str) -> list[CompiledStrategy]:
        """The strategies that apply to ``symbol``, in order."""
        return [strategy for strategy in self.strategies if self.engine.applies(strategy, symbol)]

    def timeframes(self, symbol: str) -> list[str]:
        """Every timeframe the strategies of ``symbol`` (and the named outputs) evaluate or read."""
        found: dict[str, None] = {}
        for timeframe, _named in self._named:
            found[timeframe] = None
        for strategy in self.chosen(symbol):
            found[strategy.timeframe] = None
            for condition in (strategy.definition.buy, strategy.definition.sell):
                if condition is not None:
                    for leaf in ir.leaves(condition):
                        found[leaf.timeframe] = None
        return list(found)

    def columns(self, symbol: str) -> dict[str, list[tuple[str, Output]]]:
        """Per timeframe, the named values in the engine's order (:meth:`CompiledStrategies.values`)."""
        columns: dict[str, dict[str, Output]] = {}
        for timeframe, named in self._named:
            for name, indicator in named:
                columns.setdefault(timeframe, {}).setdefault(name, node_output(indicator))
        for strategy in self.chosen(symbol):
            for condition in (strategy.definition.buy, strategy.definition.sell):
                if condition is None:
                    continue
                for leaf in ir.leaves(condition):
                    if isinstance(leaf, ir.Indicator):
                        own = columns.setdefault(leaf.timeframe, {})
                        output = node_output(leaf)
                        if output not in own.values():
                            own.setdefault(column_name(leaf), output)
        return {timeframe: list(named.items()) for timeframe, named in columns.items()}

    def evaluate(self, symbol: str, series: Mapping[str, Series],
                 handed: Mapping[str, Ints] | None = None) -> Evaluation:
        """Every strategy of ``symbol`` over ``series`` (per timeframe, every evaluation in order).

        ``handed[tf][i]``: how many ``tf`` candles the engine had been handed before tick evaluation i
        (needed only when a tick strategy reads ``@tf``). Missing series are a ``ValueError``.
        """
        missing = [timeframe for timeframe in self.timeframes(symbol) if timeframe not in series]
        if missing:
            raise ValueError(f"no series for timeframe(s) {', '.join(missing)}")
        result = Evaluation(symbol, dict(series))
        context = _Context(series, handed or {})
        for timeframe, named in self.columns(symbol).items():
            nodes = context.nodes(timeframe)
            result.columns[timeframe] = {name: nodes.output(output) for name, output in named}
        for strategy in self.chosen(symbol):
            definition = strategy.definition
            times = series[definition.timeframe].ts_us
            evaluator = context.evaluator(definition.timeframe)
            for side, condition in ((BUY, definition.buy), (SELL, definition.sell)):
                if condition is None:
                    continue
                values, defined = evaluator.pair(condition)
                fired = side_fires(values.astype(np.bool_), defined, times, definition.confirm,
                                   definition.cooldown_ms * 1000)
                result.sides.setdefault(definition.timeframe, []).append(SideMask(strategy, side, fired))
        return result


class _Context:
    """The nodes per timeframe and the alignment of one timeframe's evaluations to another's candles."""

    def __init__(self, series: Mapping[str, Series], handed: Mapping[str, Ints]) -> None:
        self.series = series
        self.handed = handed
        self._nodes: dict[str, NodeValues] = {}
        self._evaluators: dict[str, _Evaluator] = {}
        self._alignments: dict[tuple[str, str], Ints] = {}

    def nodes(self, timeframe: str) -> NodeValues:
        found = self._nodes.get(timeframe)
        if found is None:
            found = self._nodes[timeframe] = NodeValues(self.series[timeframe])
        return found

    def evaluator(self, timeframe: str) -> _Evaluator:
        found = self._evaluators.get(timeframe)
        if found is None:
            found = self._evaluators[timeframe] = _Evaluator(self, timeframe)
        return found

    def alignment(self, evaluated: str, read: str) -> Ints:
        """For each evaluation of ``evaluated``, the index of the latest ``read`` candle it sees (−1: none)."""
        key = (evaluated, read)
        found = self._alignments.get(key)
        if found is not None:
            return found
        if evaluated == ir.TICK:
            counts = self.handed.get(read)
            if counts is None:
                raise ValueError(f"a tick strategy reads @{read}: say how many {read} candles precede each tick"
                                 " (handed)")
            found = np.asarray(counts, dtype=np.int64) - 1
            if found.shape[0] != len(self.series[evaluated]):
                raise ValueError(f"handed[{read}] has {found.shape[0]} entries for {len(self.series[evaluated])} ticks")
        else:
            found = np.searchsorted(self.series[read].ts_us, self.series[evaluated].ts_us, side="right") - 1
        self._alignments[key] = found
        return found


class _Evaluator:
    """Expressions on one evaluation timeframe, memoized (equal sub-expressions are evaluated once)."""

    def __init__(self, context: _Context, timeframe: str) -> None:
        self.context = context
        self.timeframe = timeframe
        self.size = len(context.series[timeframe])
        self._memo: dict[ir.Expression, Pair] = {}

    def pair(self, expression: ir.Expression) -> Pair:
        found = self._memo.get(expression)
        if found is None:
            with np.errstate(all="ignore"):
                found = self._memo[expression] = self._evaluate(expression)
        return found

    def _leaf(self, leaf: ir.PriceField | ir.Indicator) -> Pair:
        timeframe = leaf.timeframe
        if isinstance(leaf, ir.PriceField):
            values = self.context.series[timeframe].field(leaf.name).astype(np.float64, copy=False)
            defined = np.ones(values.shape[0], dtype=np.bool_)
        else:
            values = self.context.nodes(timeframe).output(node_output(leaf))
            defined = ~np.isnan(values)
        if timeframe == self.timeframe:
            return values, defined
        index = self.context.alignment(self.timeframe, timeframe)
        seen = index >= 0
        where = np.where(seen, index, 0)
        if values.shape[0] == 0:
            return np.full(self.size, np.nan), np.zeros(self.size, dtype=np.bool_)
        return values[where], seen & defined[where]

    def _evaluate(self, expression: ir.Expression) -> Pair:  # noqa: PLR0911 - one branch per IR node
        if isinstance(expression, ir.Number):
            return np.full(self.size, expression.value), np.ones(self.size, dtype=np.bool_)
        if isinstance(expression, ir.PriceField | ir.Indicator):
            return self._leaf(expression)
        if isinstance(expression, ir.Negate):
            values, defined = self.pair(expression.operand)
            return -values.astype(np.float64, copy=False), defined
        if isinstance(expression, ir.Not):
            values, defined = self.pair(expression.operand)
            return ~values.astype(np.bool_), defined
        if isinstance(expression, ir.Past):
            return shift(self.pair(expression.operand), expression.offset)
        if isinstance(expression, ir.Cross):
            a, a_defined = self.pair(expression.left)
            b, b_defined = self.pair(expression.right)
            a1, a1_defined = shift((a, a_defined), 1)
            b1, b1_defined = shift((b, b_defined), 1)
            defined = a_defined & b_defined & a1_defined & b1_defined
            if expression.direction == "above":
                return (a1 <= b1) & (a > b), defined
            return (a1 >= b1) & (a < b), defined
        if isinstance(expression, ir.Trend):
            values, defined = self.pair(expression.operand)
            return trend(values.astype(np.float64), defined, expression.length, expression.direction == "rising")
        left, left_defined = self.pair(expression.left)
        right, right_defined = self.pair(expression.right)
        defined = left_defined & right_defined
        if isinstance(expression, ir.Logic):
            if expression.op == "and":
                return left.astype(np.bool_) & right.astype(np.bool_), defined
            return left.astype(np.bool_) | right.astype(np.bool_), defined
        if isinstance(expression, ir.Compare):
            return _COMPARE[expression.op](left, right), defined
        if expression.op == "/":
            return left / right, defined & (right != 0.0)
        return {"+": operator.add, "-": operator.sub, "*": operator.mul}[expression.op](left, right), defined


def shift(pair: Pair, offset: int) -> Pair:
    """The pair ``offset`` evaluations back (undefined for the first ``offset``)."""
    values, defined = pair
    size = values.shape[0]
    moved = np.zeros_like(values)
    was = np.zeros_like(defined)
    if offset < size:
        moved[offset:] = values[:size - offset]
        was[offset:] = defined[:size - offset]
    return moved, was


@njit
def _trend_loop(values: Floats, defined: Mask, length: int, rising: bool) -> tuple[Mask, Mask]:  # pragma: no cover
    size = values.shape[0]
    result = np.zeros(size, dtype=np.bool_)
    known = np.zeros(size, dtype=np.bool_)
    missing = 0  # undefined values among the last ``length`` (t−length … t−1)
    for t in range(size):
        if t >= 1 and not defined[t - 1]:
            missing += 1
        if t > length and not defined[t - length - 1]:
            missing -= 1
        if t < length or missing or not defined[t]:
            continue
        known[t] = True
        best = values[t - 1]
        for i in range(2, length + 1):
            item = values[t - i]
            if (item > best) if rising else (item < best):
                best = item
        result[t] = values[t] > best if rising else values[t] < best
    return result, known


@njit
def _trend_window(values: Floats, defined: Mask, length: int, rising: bool) -> tuple[Mask, Mask]:  # pragma: no cover
    """:func:`_trend_loop` for values without NaN: a monotone deque of the window's extreme (O(size))."""
    size = values.shape[0]
    result = np.zeros(size, dtype=np.bool_)
    known = np.zeros(size, dtype=np.bool_)
    queue = np.empty(size, dtype=np.int64)
    head = 0
    tail = 0
    missing = 0
    for t in range(size):
        if t >= 1:
            # the window for t is t−length … t−1: let t−1 in, t−length−1 out
            entering = t - 1
            if not defined[entering]:
                missing += 1
            x = values[entering]
            while tail > head and ((values[queue[tail - 1]] <= x) if rising else (values[queue[tail - 1]] >= x)):
                tail -= 1
            queue[tail] = entering
            tail += 1
        if t > length:
            if not defined[t - length - 1]:
                missing -= 1
            while tail > head and queue[head] < t - length:
                head += 1
        if t < length or missing or not defined[t]:
            continue
        known[t] = True
        best = values[queue[head]]
        result[t] = values[t] > best if rising else values[t] < best
    return result, known


def trend(values: Floats, defined: Mask, length: int, rising: bool) -> Pair:
    """``rising``/``falling(x, length)`` as the engine computes it (see the module docstring)."""
    values = np.ascontiguousarray(values)
    defined = np.ascontiguousarray(defined)
    if np.isnan(values[defined]).any():
        return _trend_loop(values, defined, length, rising)
    return _trend_window(np.where(defined, values, 0.0), defined, length, rising)


@njit
def _held(now: Mask, defined: Mask, times: Ints, confirm: int, cooldown_us: int) -> Mask:  # pragma: no cover
    """The engine's side step with confirm and cooldown (frames._held) over every evaluation."""
    size = now.shape[0]
    fired = np.zeros(size, dtype=np.bool_)
    before = -1  # the previous evaluation: −1 undefined, 0 false, 1 true
    run = 0
    armed = False
    has_last = False
    last = np.int64(0)
    for t in range(size):
        state = (1 if now[t] else 0) if defined[t] else -1
        previous = before
        before = state
        if state != 1:
            run = 0
            continue
        if previous == 1:
            run += 1
            if run > confirm:
                run = confirm + 1
        else:
            run = 1
            armed = previous == 0
        if run != confirm or not armed:
            continue
        if has_last and times[t] - last < cooldown_us:
            continue
        last = times[t]
        has_last = True
        fired[t] = True
    return fired


def side_fires(now: Mask, defined: Mask, times: Ints, confirm: int, cooldown_us: int) -> Mask:
    """Where a side fires: a transition from false to true (and, with confirm/cooldown, the engine's rule)."""
    true_now = now & defined
    if confirm == 1 and cooldown_us == 0:
        false_before = np.zeros_like(true_now)
        false_before[1:] = defined[:-1] & ~now[:-1]
        return true_now & false_before
    return _held(np.ascontiguousarray(now), np.ascontiguousarray(defined), np.ascontiguousarray(times, dtype=np.int64),
                 confirm, cooldown_us)
