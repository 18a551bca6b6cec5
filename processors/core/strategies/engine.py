"""The evaluation engine: compiled strategies stepped per tick and per closed candle, state per symbol.

Every runner (the stream processor, the batch CLI, Spark jobs) holds one
:class:`CompiledStrategies` and, per symbol, one :class:`StrategyState`::

    compiled = CompiledStrategies(definitions, candle_timeframes=("1m", "5m", "1h"))
    state = compiled.new_state("BTC-USD")                 # or compiled.load("BTC-USD", stored)
    fired = compiled.on_tick(state, ts_us, price, volume)  # an accepted, in-order tick
    fired = compiled.on_candles(state, [ClosedCandle("5m", …), ClosedCandle("1h", …)])  # windows that closed
    stored = compiled.dump(state)                          # JSON-compatible, for a state store

Contract for runners:

- ``on_tick`` once per accepted in-order tick of the symbol (out-of-order ticks never reach
  the tick series), ``ts_us`` its event time in µs, ``volume`` 0.0 when unknown.
- ``on_candles`` with **every** candle that closed in one step, in any order: the engine
  takes them by end time and, for candles ending together, first folds all of them into
  their timeframes' indicators and only then evaluates the strategies. So a 5m strategy
  evaluated at 10:00 reads the 1h candle [9:00, 10:00) through ``@1h`` — complete, no
  look-ahead — whichever order the runner built them in. An ``@tf`` operand always reads
  the latest candle of tf handed to the engine before (or together with) the evaluation.
- A strategy on ``tick`` is evaluated by ``on_tick``; one on a candle timeframe by the
  candles of that timeframe. Candles of timeframes no strategy uses cost nothing.
- The returned list holds the sides that fired, in strategy order (BUY before SELL), each
  with the evaluation's event time (tick time, or candle close) and price (tick price, or
  close). ``values(state, timeframe)`` gives the named indicator values of that timeframe's
  latest evaluation (for the signal's ``indicators``).

Nothing here reads a clock; equal inputs give equal outputs, and a state dumped and loaded
at any point continues exactly (tested).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from processors.core.indicators import Value
from processors.core.plain import StateFormatError
from processors.core.strategies import ir
from processors.core.strategies.compiler import Plan
from processors.core.strategies.frames import ANY, BOOL, FLAG, Frame
from processors.core.strategies.resolve import check_timeframe
from processors.core.timeutil import DAY_US
from schemas.timeframes import timeframe_ms

STATE_VERSION = 1
BUY = "BUY"
SELL = "SELL"


class IncompatibleStrategyStateError(ValueError):
    """A stored state was written for other strategies, indicators or timeframes (or another version)."""


class CompiledStrategy(NamedTuple):
    """A strategy as the engine knows it: its definition, position and version."""

    position: int
    definition: ir.StrategyDefinition
    version: str

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def timeframe(self) -> str:
        return self.definition.timeframe


class Fired(NamedTuple):
    """One side that fired: which strategy, BUY/SELL, the evaluation's event time (µs) and price."""

    strategy: CompiledStrategy
    side: str
    ts_us: int
    price: float

    def condition_text(self) -> str:
        """The rule that fired, as written in the file."""
        definition = self.strategy.definition
        return definition.buy_source if self.side == BUY else definition.sell_source


class ClosedCandle(NamedTuple):
    """A candle that closed, as the engine needs it (times in µs since the epoch)."""

    timeframe: str
    ts_open_us: int
    ts_close_us: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    provided: Sequence[Value] | None = None  # the timeframe's provided indicator values, if it has any


class StrategyState:
    """The strategies' state of one symbol: the symbol's plan and its flat value list."""

    __slots__ = ("symbol", "plan", "values", "tick")

    def __init__(self, symbol: str, plan: Plan, values: list[Any]) -> None:
        self.symbol = symbol
        self.plan = plan
        self.values = values
        self.tick = plan.frames.get(ir.TICK)  # the hot path's frame, looked up once


_NOTHING: tuple[Fired, ...] = ()  # immutable: callers may extend what they get


class CompiledStrategies:
    """A set of strategies compiled once; stateless and shared by every symbol.

    ``candle_timeframes`` are the runner's; every timeframe a strategy runs on or reads must
    be ``tick`` or one of them (``ValueError`` otherwise, naming it). Strategies are identified
    by (name, timeframe), which must be unique. Two ways for a runner to share indicator work
    with the strategies (docs/core.md, "Evaluation engine"):

    - ``outputs`` (per timeframe, ``(name, indicator)`` pairs) adds named values to
      :meth:`values` and computes them even if no strategy uses them, on the shared nodes;
    - ``provided`` (same shape) declares values the runner computes itself and hands in at every
      evaluation (``on_tick(..., provided=[…])``, ``ClosedCandle(..., provided=[…])``), in this
      order: strategies read them instead of computing them. They must be the same indicators
      (:class:`~processors.core.indicators.IndicatorEngine`'s values are, bit for bit: see
      :func:`~processors.core.strategies.builtin.indicator_outputs`).

    Each timeframe's evaluation runs as one function generated from the IR (:mod:`.codegen`);
    ``generate=False`` runs the closure tree instead (the reference the generated code is tested
    against: same signals, same state).
    """

    def __init__(self, definitions: Sequence[ir.StrategyDefinition], *, candle_timeframes: Collection[str],
                 outputs: Mapping[str, Sequence[tuple[str, ir.Indicator]]] | None = None,
                 provided: Mapping[str, Sequence[tuple[str, ir.Indicator]]] | None = None,
                 generate: bool = True) -> None:
        self.generate = generate
        self.candle_timeframes = tuple(candle_timeframes)
        self.strategies = tuple(CompiledStrategy(i, d, d.version) for i, d in enumerate(definitions))
        self._outputs = {timeframe: list(named) for timeframe, named in (outputs or {}).items()}
        self._provided = {timeframe: list(named) for timeframe, named in (provided or {}).items()}
        problems: list[str] = []
        seen: set[tuple[str, str]] = set()
        for definition in definitions:
            identity = (definition.name, definition.timeframe)
            if identity in seen:
                problems.append(f"strategy {definition.name} on {definition.timeframe} is defined twice")
            seen.add(identity)
            used = {definition.timeframe} | {leaf.timeframe for condition in (definition.buy, definition.sell)
                                              if condition is not None for leaf in ir.leaves(condition)}
            for timeframe in sorted(used):
                problem = check_timeframe(timeframe, self.candle_timeframes)
                if problem is not None:
                    problems.append(f"strategy {definition.name}: {problem}")
        for timeframe, named in [*self._outputs.items(), *self._provided.items()]:
            for name, indicator in named:
                problem = check_timeframe(timeframe, self.candle_timeframes)
                if indicator.timeframe != timeframe or problem is not None:
                    problems.append(f"output {name}: {problem or 'its indicator is on another timeframe'}")
        if problems:
            raise ValueError("; ".join(problems))
        self._lengths = {timeframe: timeframe_ms(timeframe) * 1000 for timeframe in self.candle_timeframes}
        self._plans: dict[tuple[int, ...], Plan] = {}
        layout = [(s.name, s.timeframe, s.version) for s in self.strategies]
        outputs_text = sorted((kind, tf, name, repr(indicator)) for kind, given in (("out", self._outputs),
                                                                                    ("in", self._provided))
                              for tf, named in given.items() for name, indicator in named)
        self.key = hashlib.sha256(repr((STATE_VERSION, layout, outputs_text)).encode()).hexdigest()[:16]
        """Changes whenever the strategies, their versions or the outputs change."""

    # -- per symbol ----------------------------------------------------------------------------------

    def applies(self, strategy: CompiledStrategy, symbol: str) -> bool:
        symbols = strategy.definition.symbols
        return symbols is None or symbol in symbols

    def plan(self, symbol: str) -> Plan:
        """The plan of the strategies that apply to ``symbol`` (shared by symbols with the same ones)."""
        return self._plan_of(tuple(s.position for s in self.strategies if self.applies(s, symbol)))

    def _plan_of(self, chosen: tuple[int, ...]) -> Plan:
        plan = self._plans.get(chosen)
        if plan is None:
            plan = self._plans[chosen] = Plan([(i, self.strategies[i].definition) for i in chosen], self._outputs,
                                              self._provided, generate=self.generate)
            for frame in plan.frames.values():
                frame.fires = tuple((self.strategies[side.strategy], side.side) for side in frame.sides)
        return plan

    def new_state(self, symbol: str) -> StrategyState:
        plan = self.plan(symbol)
        return StrategyState(symbol, plan, list(plan.initial))

    # -- evaluation ------------------------------------------------------------------------------------

    def on_tick(self, state: StrategyState, ts_us: int, price: float, volume: float,
                provided: Sequence[Value] | None = None) -> Sequence[Fired]:
        """Fold one in-order tick into the tick timeframe and evaluate the tick strategies.

        ``provided``: the tick's values of the ``provided`` indicators, in their order (required
        when the tick timeframe has some).
        """
        frame = state.tick
        if frame is None:
            return _NOTHING
        fired = frame.tick(state.values, ts_us, price, volume, provided)  # type: ignore[misc]
        if fired is None:
            return _NOTHING
        fires = frame.fires
        return [Fired(*fires[index], ts_us, price) for index in fired]

    def on_candle(self, state: StrategyState, candle: ClosedCandle) -> Sequence[Fired]:
        """One closed candle (when it is the only one closing in this step)."""
        return self.on_candles(state, (candle,))

    def on_candles(self, state: StrategyState, candles: Sequence[ClosedCandle]) -> Sequence[Fired]:
        """Every candle that closed in one step; see the module docstring for the order."""
        frames = state.plan.frames
        relevant = [c for c in candles if c.timeframe in frames]
        if not relevant:
            return _NOTHING
        if len(relevant) > 1:
            relevant.sort(key=lambda c: (c.ts_close_us, self._lengths.get(c.timeframe, 0)))
        v = state.values
        fired: list[Fired] = []
        start = 0
        while start < len(relevant):
            end = relevant[start].ts_close_us
            stop = start + 1
            while stop < len(relevant) and relevant[stop].ts_close_us == end:
                stop += 1
            group = relevant[start:stop]
            for candle in group:  # fold every candle ending now before any strategy reads them
                frame = frames[candle.timeframe]
                bar = frame.bar
                v[bar[0]] = candle.open
                v[bar[1]] = candle.high
                v[bar[2]] = candle.low
                v[bar[3]] = candle.close
                v[bar[4]] = candle.volume
                v[bar[5]] = candle.ts_open_us // DAY_US
                if frame.provided is not None:
                    _provide(v, frame.provided, candle.provided)
                for update in frame.updates:
                    update(v)
            for candle in group:  # shortest timeframe first
                frame = frames[candle.timeframe]
                if frame.evaluate is not None:  # history registers, then sides
                    fired += self._sides(frame, v, end, candle.close)
            start = stop
        return fired or _NOTHING

    def _sides(self, frame: Frame, v: list[Any], ts_us: int, price: float) -> Sequence[Fired]:
        fired = frame.evaluate(v, ts_us)  # type: ignore[misc] # the caller checks
        if fired is None:
            return _NOTHING
        fires = frame.fires
        return [Fired(*fires[index], ts_us, price) for index in fired]

    # -- reading ---------------------------------------------------------------------------------------

    def values(self, state: StrategyState, timeframe: str) -> dict[str, Value]:
        """The named indicator values of ``timeframe`` at its latest evaluation (column name → value)."""
        frame = state.plan.frames.get(timeframe)
        if frame is None:
            return {}
        if frame.named is None:
            return {}
        return frame.named(state.values)

    def columns(self, symbol: str, timeframe: str) -> tuple[str, ...]:
        frame = self.plan(symbol).frames.get(timeframe)
        return () if frame is None else tuple(frame.columns)

    def all_columns(self) -> dict[str, tuple[str, ...]]:
        """Per timeframe, the names :meth:`values` can give for any symbol (every strategy's indicators,
        whichever symbols it applies to), in plan order: the columns of one table for every symbol (the
        batch CLI). A symbol's own plan has these or fewer."""
        plan = self._plan_of(tuple(s.position for s in self.strategies))
        return {timeframe: tuple(frame.columns) for timeframe, frame in plan.frames.items()}

    # -- state as plain JSON values --------------------------------------------------------------------

    def dump(self, state: StrategyState) -> dict[str, Any]:
        """The state as a JSON-compatible dict: every region under its key (copies)."""
        v = state.values
        regions = state.plan.regions
        bounds = [r.start for r in regions[1:]] + [len(v)]
        return {
            "version": STATE_VERSION,
            "symbol": state.symbol,
            "regions": {region.key: v[region.start:end] for region, end in zip(regions, bounds, strict=True)},
        }

    def load(self, symbol: str, plain: object, *, partial: bool = False) -> StrategyState:
        """Rebuild a symbol's state from :meth:`dump` output (never aliasing ``plain``).

        Strict by default: the stored regions must be exactly this plan's, else
        :class:`IncompatibleStrategyStateError`. With ``partial=True`` regions found under
        the same key are restored and the others start fresh (a strategy added to a running
        set keeps the warm indicators it shares with the others; a new indicator warms up
        from the next evaluation). Malformed values raise :class:`StateFormatError`.
        """
        if not isinstance(plain, dict) or not isinstance(plain.get("regions"), dict):
            raise StateFormatError(f"strategy state of {symbol}: expected a dict with regions")
        if plain.get("version") != STATE_VERSION:
            raise IncompatibleStrategyStateError(
                f"strategy state of {symbol} has version {plain.get('version')!r}, this engine writes {STATE_VERSION}")
        if plain.get("symbol") != symbol:
            raise ValueError(f"strategy state of {plain.get('symbol')!r} used for {symbol!r}")
        stored: dict[str, object] = plain["regions"]
        state = self.new_state(symbol)
        wanted = {region.key for region in state.plan.regions}
        if not partial and set(stored) != wanted:
            missing = sorted(wanted - set(stored))[:3]
            extra = sorted(set(stored) - wanted)[:3]
            raise IncompatibleStrategyStateError(
                f"strategy state of {symbol} was written for other strategies (missing {missing}, extra {extra})")
        v = state.values
        for region in state.plan.regions:
            found = stored.get(region.key)
            if found is None:
                continue
            if not isinstance(found, list) or len(found) != len(region.kinds):
                raise StateFormatError(f"strategy state of {symbol}: region {region.key} has the wrong length")
            for offset, (value, kind) in enumerate(zip(found, region.kinds, strict=True)):
                if not _fits(value, kind):
                    raise StateFormatError(f"strategy state of {symbol}: region {region.key}[{offset}] = {value!r}")
            v[region.start:region.start + len(found)] = found
        return state


def _provide(v: list[Any], region: tuple[int, int], values: Sequence[Value] | None) -> None:
    """Copy the runner's provided values in (a wrong length would shift every slot: refused)."""
    start, end = region
    if values is None or len(values) != end - start:
        raise ValueError(f"expected {end - start} provided indicator values, got"
                         f" {'none' if values is None else len(values)}")
    v[start:end] = values


def _fits(value: object, kind: str) -> bool:
    if kind == "v":
        return value is None or type(value) in (float, int)
    if kind == "f":
        return type(value) in (float, int)
    if kind == "i":
        return type(value) is int
    if kind == "n":
        return value is None or type(value) is int
    if kind == FLAG:
        return value is None or type(value) is bool
    if kind == BOOL:
        return type(value) is bool
    if kind == ANY:
        return value is None or type(value) in (float, bool)
    return False
