"""The per-instrument pipeline step: one tick in, every derived event out. One definition, many runners.

Every runner (the Quix stream processor, ``stockstream indicators``, the Spark backfill,
the replay tool) calls :func:`step` once per tick of an instrument (a venue's symbol,
:mod:`schemas.instruments`), in log order, carrying the returned :data:`SymbolState` to the next call::

    state, output = step(config, state, tick, lineage)   # state is None for a new instrument

:data:`SymbolState` is a JSON-compatible ``dict`` (only dict/list/str/int/float/bool/None)
that survives ``json``/``orjson`` text exactly, holds no per-tick history and is never
mutated by :func:`step`, so it can go straight into a Quix state store or a Spark state.
:class:`SymbolProcessor` is the same logic as a long-lived mutable object for in-memory
runners that do not need the state between ticks (the batch CLI); :func:`step` is exactly
``SymbolProcessor(config, instrument, state).process(tick, lineage)`` plus :meth:`SymbolProcessor.state`.
Two venues of one symbol are two instruments: their ticks never meet in one state.

Semantics (docs/core.md has the long version):

- Timeframe ``tick``: every accepted tick in event order updates the tick indicators, the
  fixed rules and the tick strategies and yields one :class:`IndicatorSnapshot`.
- Candle timeframes (``config.candle_timeframes``): tumbling windows ``[start, start+L)``
  aligned to the epoch. A window closes when the **stream time** reaches its end + grace, or,
  at the latest, when the instrument's first tick of a later UTC day arrives (a UTC midnight
  closes the day: grace never reaches across it). The stream time is the instrument's own
  latest event time, or — when the runner passes it (:mod:`processors.core.stream_time`) — the
  highest event time accepted among its venue's ticks on its input partition, so other
  instruments' ticks close a quiet instrument's windows (:meth:`SymbolProcessor.advance`). A closed window yields a
  final :class:`Candle`, then indicators and rules run on its close (volume = candle volume) with
  ``ts_event`` = the candle's ``ts_close``; the candles a step closes are then handed to the
  compiled strategies in one call (:meth:`CompiledStrategies.on_candles`: no look-ahead). Only
  closed candles ever reach indicators and strategies.
- A tick whose window (any candle timeframe) has closed, or whose UTC day has closed, or —
  without candle timeframes — that is older than the stream time minus grace, is
  rejected with reason ``late``. An older tick that is still within grace is folded into its
  open candle(s) and the daily aggregate but not into the tick indicators (their
  recurrences need event order); ``StepOutput.out_of_order`` is then True.
- Daily aggregate per UTC day: the final :class:`DailySummary` when the first tick of a later UTC
  day arrives, or when the stream time of its venue on its partition passes the next midnight + grace. Running ones
  (``final=False``): with ``live_update_ms`` 0, whenever a window of the smallest candle timeframe
  closes (every ``summary_every_ticks`` ticks when there is no candle timeframe); with
  ``live_update_ms`` set, as live updates (next item). Signals count into the day that is open
  when they are emitted.
- Live updates (``live_update_ms`` > 0, :mod:`processors.core.live`): the forming candles
  (``final=False``) and the running summary that changed, at most once per ``live_update_ms`` of
  stream time per instrument; a window or day that closes first sends its final event instead.
- Signals (:mod:`processors.core.signal_sources`) name their strategy, its version and the
  condition that fired; the fixed rules' signals carry their built-in strategy's.
- Scorecards (:mod:`processors.core.outcomes`, when ``config.horizons_ms`` is set): every
  signal's outcome at each horizon is the first accepted tick of the instrument *processed
  after the signal was emitted* whose event time is ≥ signal time + horizon (a close's signals
  are emitted before the tick that reached the close is folded in: that tick may score them).
- Derived events of the tick timeframe and outcomes carry the tick's ``ts_init`` and ``lineage``;
  what a close or a live update emits carries its window's or day's origin instead, the last tick
  folded into it (:mod:`processors.core.origin`), so it is the same whichever record closed it. Signal
  ids come from :func:`schemas.events.make_signal_id` over that lineage. Windows close one end at a
  time, and a tick's own time closes what it reaches before the tick is folded in. Nothing reads the
  wall clock, so the same input sequence always yields the same events.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from processors.core import derived
from processors.core.candles import CandleWindow, fold
from processors.core.daily import DayAggregate
from processors.core.indicators import STATE_LENGTH, IndicatorEngine, IndicatorSpec, IndicatorState, Value
from processors.core.live import LiveUpdates
from processors.core.origin import Origin
from processors.core.outcomes import Pending, PendingOutcomes, horizon_label
from processors.core.plain import StateFormatError, as_int, as_items, as_list
from processors.core.rules import BUY, RuleEngine, RuleSpec, RuleState
from processors.core.signal_sources import SignalSource, SignalSources
from processors.core.strategies.engine import ClosedCandle, Fired, IncompatibleStrategyStateError
from processors.core.strategies.ir import StrategyDefinition
from processors.core.timeutil import DAY_US, day_date, from_us, to_us
from schemas.events import (
    Candle,
    DailySummary,
    DeadLetter,
    IndicatorSnapshot,
    Lineage,
    Signal,
    SignalOutcome,
    Tick,
    make_outcome_id,
    signal_id_of,
)
from schemas.instruments import Instrument
from schemas.timeframes import TICK, timeframe_ms

SymbolState = dict[str, Any]
"""The JSON-compatible state of one symbol (see the module docstring)."""

STATE_VERSION = 5  # bump whenever the plain layout changes (3: per instrument; 4: strategies, outcomes; 5: stream time, live)
SegmentReader = Callable[[int], object]
LATE = "late"
PRICE_OUT_OF_RANGE = "price_out_of_range"
VOLUME_OUT_OF_RANGE = "volume_out_of_range"
TIME_OUT_OF_RANGE = "time_out_of_range"


class IncompatibleStateError(ValueError):
    """A stored state was written for another indicator set, timeframes or state version.

    Raised by :func:`step`; the runner decides (typically: log it and start the symbol
    afresh, or refuse to start with the changed strategy).
    """


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides a symbol's outputs. Frozen; build one per strategy and symbol.

    ``candle_timeframes`` are candle timeframes only (``tick`` is always on). ``grace_ms`` is
    how long after a window's end late ticks are still accepted. The price/volume bounds
    reject absurd values before they can overflow the arithmetic (volume 0 means unknown).
    ``strategies`` run beside the fixed ``rules`` (the strategy file's ``[strategies.NAME]``);
    ``horizons_ms`` are the scorecard horizons (none: no outcomes) and ``fee`` the round-trip
    cost an outcome's net return subtracts (a fraction, ``SCORECARD_FEE``). ``live_update_ms``
    (``LIVE_UPDATE_INTERVAL``) throttles the live updates per instrument in stream time; 0: none
    (the batch and backfill runners), running summaries then follow ``summary_every_ticks``' rule.
    """

    indicators: IndicatorSpec = field(default_factory=IndicatorSpec)
    rules: RuleSpec = field(default_factory=RuleSpec)
    strategies: tuple[StrategyDefinition, ...] = ()
    horizons_ms: tuple[int, ...] = ()
    fee: float = 0.0
    candle_timeframes: tuple[str, ...] = ("1m",)
    grace_ms: int = 5_000
    summary_every_ticks: int = 100
    live_update_ms: int = 0
    min_price: float = 1e-12
    max_price: float = 1e12
    min_volume: float = 1e-12
    max_volume: float = 1e15
    plan: _Plan = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(set(self.candle_timeframes)) != len(self.candle_timeframes):
            raise ValueError("candle timeframes must not repeat")
        if TICK in self.candle_timeframes:
            raise ValueError("'tick' is always on; list candle timeframes only")
        for timeframe in self.candle_timeframes:
            timeframe_ms(timeframe)
        if not 0 <= self.grace_ms <= 86_400_000:
            raise ValueError("grace_ms must be between 0 and one day")
        if not 0 <= self.live_update_ms <= 86_400_000:
            raise ValueError("live_update_ms must be between 0 (no live updates) and one day")
        if self.summary_every_ticks < 1:
            raise ValueError("summary_every_ticks must be at least 1")
        if not (0 < self.min_price < self.max_price and 0 < self.min_volume < self.max_volume):
            raise ValueError("price/volume bounds must be positive with min < max")
        if any(h <= 0 for h in self.horizons_ms) or len(set(self.horizons_ms)) != len(self.horizons_ms):
            raise ValueError("scorecard horizons must be positive and distinct")
        if not (math.isfinite(self.fee) and 0 <= self.fee < 1):
            raise ValueError("the scorecard fee must be a fraction in [0, 1)")
        object.__setattr__(self, "plan", _Plan(self))

    def accepts(self, tick: Tick) -> bool:
        """Whether ``tick`` passes the bounds :meth:`SymbolProcessor.process` tests first (inlined there: the hot
        path); a tick out of them is rejected and moves no stream time."""
        plan = self.plan
        ts = to_us(tick.ts_event)
        volume = tick.volume or 0.0
        return (plan.earliest <= ts <= plan.latest and self.min_price <= tick.price <= self.max_price
                and (not volume or self.min_volume <= volume <= self.max_volume))


class _Plan:
    """Compiled, shareable parts of a config: engines, names, window lengths in µs."""

    def __init__(self, config: PipelineConfig) -> None:
        self.indicators = IndicatorEngine(config.indicators)
        self.names = self.indicators.names
        self.rules = RuleEngine(config.rules, self.names)
        self.frames = tuple((name, timeframe_ms(name) * 1000) for name in config.candle_timeframes)
        self.smallest = min(range(len(self.frames)), key=lambda i: self.frames[i][1], default=-1)
        self.grace = config.grace_ms * 1000
        # Event times whose windows (and the day after) still fit in datetime: a candle near year 9999
        # or year 1 would overflow when its bounds become datetimes.
        margin = max((length for _, length in self.frames), default=0) + 2 * DAY_US
        self.earliest = to_us(datetime.min.replace(tzinfo=UTC)) + margin
        self.latest = to_us(datetime.max.replace(tzinfo=UTC)) - margin
        self.sources = SignalSources(config.rules, config.indicators.macd, config.candle_timeframes,
                                     config.strategies)
        self.compiled = self.sources.compiled
        # Without [strategies] the key is the one version 3 wrote, so those states load (warm indicators).
        strategies_key = f"|{self.sources.key}" if self.sources.key else ""
        self.key = f"{config.indicators.key()}|{','.join(config.candle_timeframes)}{strategies_key}"
        self.horizon_labels = {h: horizon_label(h) for h in config.horizons_ms}
        # Derived events skip re-validation only when every timeframe name they carry is valid.
        self.trusted = derived.valid_timeframes((TICK, *config.candle_timeframes))


@dataclass(slots=True, init=False)
class StepOutput:
    """What one tick (or a flush) produced, each list in emission order.

    ``rejections`` are ready-made dead letters (the tick as ``raw``, ``origin`` = its
    lineage). ``out_of_order`` marks an accepted tick that was older than the symbol's
    latest one: folded into candles and the daily aggregate, not into tick indicators.
    """

    snapshots: list[IndicatorSnapshot] = field(default_factory=list)
    candles: list[Candle] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    summaries: list[DailySummary] = field(default_factory=list)
    outcomes: list[SignalOutcome] = field(default_factory=list)
    rejections: list[DeadLetter] = field(default_factory=list)
    out_of_order: bool = False

    # One per tick: written out, this is half the cost of the generated one (its default factories).
    def __init__(self, snapshots: list[IndicatorSnapshot] | None = None, candles: list[Candle] | None = None,
                 signals: list[Signal] | None = None, summaries: list[DailySummary] | None = None,
                 outcomes: list[SignalOutcome] | None = None, rejections: list[DeadLetter] | None = None,
                 out_of_order: bool = False) -> None:
        self.snapshots = [] if snapshots is None else snapshots
        self.candles = [] if candles is None else candles
        self.signals = [] if signals is None else signals
        self.summaries = [] if summaries is None else summaries
        self.outcomes = [] if outcomes is None else outcomes
        self.rejections = [] if rejections is None else rejections
        self.out_of_order = out_of_order


LATE_DAY = -1
""":func:`late_at`: the tick's UTC day has closed."""
LATE_STREAM = -2
""":func:`late_at`: no candle timeframes, and the tick is older than the stream time by the grace or more."""


def late_at(ts: int, clock: int | None, open_day: int | None, grace: int, lengths: Sequence[int]) -> int | None:
    """Whether a tick in bounds at ``ts`` (µs) is late for an instrument brought to the stream time ``clock``.

    ``open_day``: the day number of its open daily aggregate (None: none open); ``lengths``: its candle
    timeframes' lengths (µs), in order. Returns :data:`LATE_DAY` when the tick's UTC day closed (older than the
    open day, or its next midnight + grace reached), else the index in ``lengths`` of the first timeframe whose
    window holding ``ts`` closed (its end + grace reached), else :data:`LATE_STREAM` when there are no
    timeframes and ``ts`` + grace is reached; None: not late (also when ``ts`` ≥ ``clock``). The one rule of
    :meth:`SymbolProcessor.process` and of the backfill's columnar replay of it
    (spark_jobs/backfill/columnar.py, ``in_order_accepted``).
    """
    if clock is None or ts >= clock:
        return None
    day = ts // DAY_US
    if (open_day is not None and day < open_day) or (day + 1) * DAY_US + grace <= clock:
        return LATE_DAY
    for index, length in enumerate(lengths):
        if ts - ts % length + length + grace <= clock:
            return index
    if not lengths and ts + grace <= clock:
        return LATE_STREAM
    return None


_NO_TIME = datetime.min.replace(tzinfo=UTC)
_UNKNOWN = -(2**63)  # SymbolProcessor._closes_at not known: earlier than any time, so every "reached?" test says yes


class _Frame:
    """One candle timeframe of one symbol: its open windows and indicator/rule state."""

    __slots__ = ("name", "length", "windows", "indicators", "rules", "_bounds")

    def __init__(self, name: str, length: int, indicators: IndicatorState, rules: RuleState) -> None:
        self.name = name
        self.length = length
        self.windows: list[CandleWindow] = []
        self.indicators = indicators
        self.rules = rules
        self._bounds: tuple[int, datetime, datetime] = (-1, _NO_TIME, _NO_TIME)

    def bounds(self, start: int) -> tuple[datetime, datetime]:
        """The window starting at ``start`` (µs) as datetimes; the latest one is kept: a forming window is sent
        once a second, each time with the same bounds."""
        cached = self._bounds
        if cached[0] != start:
            cached = self._bounds = (start, from_us(start), from_us(start + self.length))
        return cached[1], cached[2]


class SymbolProcessor:
    """The pipeline of one symbol as a mutable object (what :func:`step` runs inside).

    In-memory runners may keep one per symbol and call :meth:`process` per tick; the
    result is identical to threading :func:`step` through every tick.
    """

    __slots__ = ("config", "instrument", "symbol", "venue", "last", "clock", "live", "tick_indicators", "tick_rules",
                 "frames", "day", "strategies", "outcomes", "_plan", "_trusted", "_new", "_iso_of", "_iso", "_id_prefix",
                 "_closes_at")

    def __init__(self, config: PipelineConfig, instrument: Instrument, state: SymbolState | None = None,
                 read_segment: SegmentReader | None = None) -> None:
        self.config = config
        self.instrument = instrument
        symbol = self.symbol = instrument.symbol
        self.venue = instrument.venue
        plan = self._plan = config.plan
        # see processors/core/derived.py
        self._trusted = plan.trusted and derived.valid_instrument(symbol, instrument.venue)
        self.last: int | None = None  # event time (µs) of the latest tick applied to the tick timeframe
        self.clock: int | None = None  # the stream time (µs) this instrument has been brought to (≥ last)
        self.live = LiveUpdates(config.live_update_ms * 1000) if config.live_update_ms else None
        self.day: DayAggregate | None = None
        self._new: list[Pending] = []  # the current step's signals, waiting for their outcomes after it
        self._iso_of: datetime | None = None  # the event time whose isoformat() ``_iso`` holds (signal ids)
        self._iso = ""
        self._id_prefix = f"{symbol}@{instrument.venue}"  # what make_signal_id writes first
        # The earliest stream time (µs) at which a window or the day closes, as :meth:`deadline` last found it;
        # _UNKNOWN after any step (a step may open or close windows and days). Lets :meth:`process` skip
        # :meth:`_advance` when the stream time moved on but reached nothing.
        self._closes_at: int | None = _UNKNOWN
        compiled = plan.compiled
        self.strategies = None if compiled is None else compiled.new_state(symbol)
        self.outcomes = PendingOutcomes(config.horizons_ms, config.fee)
        if state is None:
            self.tick_indicators = plan.indicators.new_state()
            self.tick_rules = plan.rules.new_state()
            self.frames = [_Frame(name, length, plan.indicators.new_state(), plan.rules.new_state())
                           for name, length in plan.frames]
            return
        if not isinstance(state, dict):
            raise StateFormatError(f"state of {symbol} is a {type(state).__name__}, not a dict")
        version = state.get("version")
        if version not in (3, 4, STATE_VERSION) or state.get("key") != plan.key:
            raise IncompatibleStateError(
                f"state of {symbol} was written for {state.get('key')!r} (version {version!r}),"
                f" this config needs {plan.key!r} (version {STATE_VERSION})"
            )
        if state.get("instrument") != instrument.text:
            raise ValueError(f"state of {state.get('instrument')!r} used for {instrument.text!r}")
        try:
            self.last = None if state["last"] is None else as_int(state["last"], "last")
            indicators, rules = as_list(state["tick"], 2, "tick")
            self.tick_indicators = plan.indicators.load(as_list(indicators, STATE_LENGTH, "tick indicators"))
            self.tick_rules = plan.rules.load(rules)
            frames = state["frames"]
            self.frames = []
            for name, length in plan.frames:
                windows, indicators, rules = as_list(frames[name], 3, name)
                frame = _Frame(name, length, plan.indicators.load(as_list(indicators, STATE_LENGTH, name)),
                               plan.rules.load(rules))
                frame.windows = [CandleWindow.load(window) for window in as_items(windows, name)]
                self.frames.append(frame)
            self.day = None if state["day"] is None else DayAggregate.load(state["day"])
            self.clock = self.last  # versions 3 and 4 closed windows by the instrument's own event time
            if version == STATE_VERSION:
                self.clock = None if state["clock"] is None else as_int(state["clock"], "clock")
                if self.live is not None and state["live"] is not None:
                    self.live = LiveUpdates.load(state["live"], self.live.interval)
            if version != 3:  # version 3 had neither: strategies warm up, nothing was pending
                if compiled is not None:
                    self.strategies = compiled.load(symbol, state["strategies"])
                self.outcomes = PendingOutcomes.load(state["outcomes"], config.horizons_ms, config.fee, read_segment)
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, (StateFormatError, IncompatibleStrategyStateError)):
                raise
            raise StateFormatError(f"state of {symbol} is malformed: {error}") from error

    def state(self, segments: bool = True) -> SymbolState:
        """The current state as a fresh JSON-compatible dict.

        ``segments=False`` leaves the pending outcomes' segments out: a store that keeps them apart
        (processors/stream/states.py) writes :meth:`PendingOutcomes.changes` itself and passes
        ``read_segment`` when it loads the state.
        """
        plan = self._plan
        dump = plan.indicators.dump
        compiled = plan.compiled
        return {
            "version": STATE_VERSION,
            "key": self._plan.key,
            "instrument": self.instrument.text,
            "last": self.last,
            "clock": self.clock,
            "live": None if self.live is None else self.live.dump(),
            "tick": [dump(self.tick_indicators), list(self.tick_rules)],
            "frames": {
                frame.name: [[w.dump() for w in frame.windows], dump(frame.indicators), list(frame.rules)]
                for frame in self.frames
            },
            "day": None if self.day is None else self.day.dump(),
            "strategies": None if compiled is None or self.strategies is None else compiled.dump(self.strategies),
            "outcomes": self.outcomes.dump() if segments else self.outcomes.main(),
        }

    def process(self, tick: Tick, lineage: Lineage, stream_time: int | None = None) -> StepOutput:
        """Apply one tick of this symbol; see the module docstring for the semantics.

        ``stream_time``: the stream time (µs) of the instrument's venue on its partition before this tick,
        when the runner keeps one (:func:`processors.core.stream_time.process_in_partition`); the instrument is
        first brought to it (what it closes is emitted before the tick's own events). None: the
        instrument's own latest event time is its stream time (batch, backfill). Then the tick's own
        event time closes what it reaches, still before the tick is folded in: the same closes, in the
        same order and with the same events, as when another record's stream time got there first.
        """
        if tick.symbol != self.symbol or tick.venue != self.venue:
            raise ValueError(f"tick of {tick.symbol}@{tick.venue} given to the pipeline of {self.instrument}")
        out = StepOutput()
        price = tick.price
        volume = tick.volume or 0.0
        ts = to_us(tick.ts_event)
        day = ts // DAY_US
        plan = self._plan
        config = self.config
        closes_at = self._closes_at  # when known: nothing closes before it (None: nothing open)
        # PipelineConfig.accepts, inlined (a call per tick costs)
        if (plan.earliest <= ts <= plan.latest and config.min_price <= price <= config.max_price
                and (not volume or config.min_volume <= volume <= config.max_volume)):
            if stream_time is not None and (self.clock is None or stream_time > self.clock):
                if closes_at is not None and stream_time >= closes_at:
                    self._advance(stream_time, tick, lineage, out)
                    closes_at = _UNKNOWN
                else:  # _advance would only move the clock
                    self.clock = stream_time
            clock = self.clock
            reason = None if clock is None or ts >= clock else self._lateness(ts, day)
        else:
            reason = self._out_of_bounds(ts, price, volume)
        self._closes_at = _UNKNOWN
        if reason is not None:
            out.rejections.append(DeadLetter(
                source=tick.source, reason=reason[0], detail=reason[1], raw=tick.model_dump_json(),
                ts_init=tick.ts_init, origin=lineage,
            ))
            return out

        origin = Origin(tick.ts_event, tick.ts_init, lineage)
        last = self.last
        in_order = last is None or ts >= last
        clock = self.clock
        watermark = self.clock = ts if clock is None or ts > clock else clock
        new_day = self.day is not None and day > self.day.day
        if self.frames and (new_day or (closes_at is not None and watermark >= closes_at)):
            self._close(watermark, day * DAY_US if new_day else None, tick, lineage, out)
        if new_day:
            self._close_day(tick, lineage, out)
        if self._new:  # what the tick's time closed is before the tick: the tick may score its signals
            self._add_pending()

        live = self.live
        for index, frame in enumerate(self.frames):
            start = fold(frame.windows, frame.length, ts, price, volume, origin)
            if live is not None:
                live.windows.add((index, start))
        if self.day is None:
            self.day = DayAggregate(day, ts, price, volume, origin)
        else:
            self.day.add(ts, price, volume, origin)
        if live is not None:
            live.day = True

        if in_order:
            self.last = ts
            self._tick_timeframe(price, volume, day, tick, lineage, out)
            if self.strategies is not None:
                self._tick_strategies(ts, price, volume, origin, out)
        else:
            out.out_of_order = True
        next_due = self.outcomes.next_due
        if next_due is not None and ts >= next_due:
            self._mature(ts, price, tick, lineage, out)
        if self._new:
            self._add_pending()

        if live is not None:
            sent = live.sent  # = live.ready(watermark): this tick changed the day, so an update is pending
            if sent is None or watermark >= sent + live.interval:
                self._send_live(watermark, out)
        elif not self.frames and self.day.count % self.config.summary_every_ticks == 0:
            out.summaries.append(self._summary(False, self.day.origin or origin))
        return out

    def advance(self, stream_time: int, tick: Tick, lineage: Lineage) -> StepOutput:
        """The stream time of its venue on its partition reached ``stream_time`` (µs) with ``tick``, another
        instrument's record.

        Closes the windows and the day that stream time has reached and sends the live update that is
        due. What it emits carries its windows' and day's origins (:mod:`processors.core.origin`), not
        ``tick``'s: ``tick`` and ``lineage`` only stand in for a window restored from a state that kept no
        origin. Called by :func:`processors.core.stream_time.advance_partition` when :meth:`deadline` is reached.
        """
        out = StepOutput()
        self._closes_at = _UNKNOWN
        if self.clock is None or stream_time > self.clock:
            self._advance(stream_time, tick, lineage, out)
        live = self.live
        if live is not None and live.ready(stream_time):
            self._send_live(stream_time, out)
        return out

    def deadline(self) -> int | None:
        """The earliest stream time (µs) at which :meth:`advance` has something to do (None: nothing)."""
        closes_at = self._closes_at
        if closes_at == _UNKNOWN:
            grace = self._plan.grace
            closes_at = None
            for frame in self.frames:
                if frame.windows:
                    due = frame.windows[0].start + frame.length + grace  # sorted by start: the first ends first
                    if closes_at is None or due < closes_at:
                        closes_at = due
            if self.day is not None:
                due = (self.day.day + 1) * DAY_US + grace
                if closes_at is None or due < closes_at:
                    closes_at = due
            self._closes_at = closes_at
        live = self.live
        if live is None:
            return closes_at
        sends_at = live.due()
        if sends_at is None or (closes_at is not None and closes_at <= sends_at):
            return closes_at
        return sends_at

    def flush(self, tick: Tick, lineage: Lineage) -> StepOutput:
        """End of input: close every open window and emit a running (not final) summary.

        ``tick`` and ``lineage`` are the symbol's last processed tick and its position; they only stand in
        for a window restored from a state that kept no origin. Only for finite inputs (the batch CLI); a
        stream never flushes, it waits for the next tick.
        """
        out = StepOutput()
        self._closes_at = _UNKNOWN
        if self.frames:
            self._close(None, None, tick, lineage, out)
        self._add_pending()
        if self.day is not None:  # also after a close's running summary: a runner that closed it earlier sends this
            out.summaries.append(self._summary(False, self.day.origin or Origin(tick.ts_event, tick.ts_init, lineage)))
        if self.live is not None:
            self.live.taken(self.clock if self.clock is not None else 0)
        return out

    # -- internals -------------------------------------------------------------------------

    def _out_of_bounds(self, ts: int, price: float, volume: float) -> tuple[str, str] | None:
        config = self.config
        plan = self._plan
        if not plan.earliest <= ts <= plan.latest:
            return TIME_OUT_OF_RANGE, f"event time {from_us(ts).isoformat()} is too close to the calendar's ends"
        if not config.min_price <= price <= config.max_price:
            return PRICE_OUT_OF_RANGE, f"price {price!r} outside [{config.min_price!r}, {config.max_price!r}]"
        if volume and not config.min_volume <= volume <= config.max_volume:
            return VOLUME_OUT_OF_RANGE, (
                f"volume {volume!r} outside [{config.min_volume!r}, {config.max_volume!r}] (0 = unknown)"
            )
        return None

    def _lateness(self, ts: int, day: int) -> tuple[str, str] | None:
        """Why a tick in bounds is late: its day or a window of it closed at the stream time (None: not late).

        Decided by :func:`late_at` (which the backfill's columnar path replays); the detail names the window or
        day and the grace, not the stream time: a runner that closes by another clock (the per-instrument batch
        and backfill) writes the same dead letter for the same refusal.
        """
        grace = self._plan.grace
        frames = self.frames
        found = late_at(ts, self.clock, None if self.day is None else self.day.day, grace,
                        [frame.length for frame in frames])
        if found is None:
            return None
        if found == LATE_DAY:
            return LATE, (f"tick of {day_date(day)} arrived after that UTC day closed"
                          f" (at the next midnight + grace {grace / 1e6:g}s)")
        if found == LATE_STREAM:
            return LATE, f"older than the stream time (the newest event time seen) by the grace {grace / 1e6:g}s or more"
        frame = frames[found]
        end = ts - ts % frame.length + frame.length
        return LATE, (f"its {frame.name} window [{from_us(end - frame.length).isoformat()},"
                      f" {from_us(end).isoformat()}) closed (at its end + grace {grace / 1e6:g}s)")

    def _tick_timeframe(self, price: float, volume: float, day: int, tick: Tick, lineage: Lineage,
                        out: StepOutput) -> None:
        """The tick timeframe's indicators and rules for an in-order tick (its snapshot and signals).

        A seam for the backfill's columnar runner (spark_jobs/backfill/columnar.py), which takes these
        values from the vectorized kernel instead and overrides this method alone.
        """
        values = self._plan.indicators.update(self.tick_indicators, price, volume, day)
        self._derive(TICK, self.tick_rules, values, price, tick.ts_event, tick.ts_init, lineage, out)

    def _tick_strategies(self, ts: int, price: float, volume: float, origin: Origin, out: StepOutput) -> None:
        """The compiled strategies on ``tick`` for an in-order tick (after the fixed rules); ``origin``: the tick's."""
        compiled = self._plan.compiled
        assert compiled is not None and self.strategies is not None  # noqa: S101 - the caller checks
        fired = compiled.on_tick(self.strategies, ts, price, volume)
        if fired:
            self._strategy_signals(fired, {TICK: origin}, out, {ts: origin.ts_event})

    def _strategy_signals(self, fired: Sequence[Fired], origins: dict[str, Origin], out: StepOutput,
                          moments: dict[int, datetime] | None = None) -> None:
        """The signals of the compiled strategies' sides that fired (indicators: their timeframe's values).

        ``origins``: per timeframe, the origin of what fired (the tick, or the closed window of that
        timeframe). ``moments``: event times (µs) already known as datetimes (the tick's own); the others
        are made once per step, so one instant's signals share one datetime (and one isoformat for their ids).
        """
        compiled = self._plan.compiled
        assert compiled is not None and self.strategies is not None  # noqa: S101 - the callers check
        label = self._plan.sources.strategy
        values: dict[str, dict[str, Value]] = {}
        if moments is None:
            moments = {}
        for one in fired:
            timeframe = one.strategy.definition.timeframe
            named = values.get(timeframe)
            if named is None:
                named = values[timeframe] = compiled.values(self.strategies, timeframe)
            ts_us = one.ts_us
            moment = moments.get(ts_us)
            if moment is None:
                moment = moments[ts_us] = from_us(ts_us)
            origin = origins[timeframe]
            self._signal(timeframe, label(one), one.side, one.price, named, moment, origin.ts_init, origin.lineage,
                         out, ts_us)

    def _advance(self, stream_time: int, tick: Tick, lineage: Lineage, out: StepOutput) -> None:
        """Bring the instrument to ``stream_time``: close the windows and the day it has reached."""
        self.clock = stream_time
        if self.frames:
            self._close(stream_time, None, tick, lineage, out)
        day = self.day
        if day is not None and stream_time >= (day.day + 1) * DAY_US + self._plan.grace:
            self._close_day(tick, lineage, out)
        self._add_pending()

    def _close_day(self, tick: Tick, lineage: Lineage, out: StepOutput) -> None:
        """The open day's final summary; the day is gone (``tick``/``lineage``: a stand-in origin, see advance)."""
        day = self.day
        assert day is not None  # noqa: S101 - callers check
        out.summaries.append(self._summary(True, day.origin or Origin(tick.ts_event, tick.ts_init, lineage)))
        self.day = None
        if self.live is not None:
            self.live.day = False

    def _send_live(self, now: int, out: StepOutput) -> None:
        """The forming candles and the running summary changed since the last send (stream time ``now``).

        Each carries its window's or day's origin (the last tick folded in), whichever record sends it.
        """
        live = self.live
        assert live is not None  # noqa: S101 - callers check
        frames = self.frames
        changed: Collection[tuple[int, int]] = live.windows
        if len(changed) > 1:  # oldest end first
            changed = sorted(changed, key=lambda item: (item[1] + frames[item[0]].length, item[0]))
        for index, start in changed:
            frame = frames[index]
            window = next((w for w in reversed(frame.windows) if w.start == start), None)
            if window is None or window.origin is None:  # closed meanwhile: its final candle went out instead
                continue
            origin = window.origin
            ts_open, ts_close = frame.bounds(start)
            out.candles.append(derived.candle(
                self._trusted, self.symbol, self.venue, frame.name, ts_open, ts_close,
                window.open, window.high, window.low, window.close, window.volume, window.count, False,
                from_us(window.close_ts), origin.ts_init, origin.lineage,
            ))
        day = self.day
        if live.day and day is not None and day.origin is not None:
            out.summaries.append(self._summary(False, day.origin))
        live.taken(now)

    def _close(self, watermark: int | None, day_start: int | None, tick: Tick, lineage: Lineage,
               out: StepOutput) -> None:
        """Close due windows (all of them when ``watermark`` is None), one window end at a time, oldest first.

        The windows ending at one instant close together: candles, snapshots and rule signals in timeframe
        order, then the strategies on them (:meth:`CompiledStrategies.on_candles`), then — without live
        updates — a running summary when the smallest timeframe's window was among them. So how many ends
        one call closes (one record's stream time may reach several) never changes what is emitted.
        ``tick``/``lineage`` stand in for a window restored without an origin.
        """
        grace = self._plan.grace
        due: list[tuple[int, int, CandleWindow]] = []
        for index, frame in enumerate(self.frames):
            windows = frame.windows
            closing = 0
            for window in windows:  # sorted by start, so the due ones are a prefix
                end = window.start + frame.length
                if (watermark is None or end + grace <= watermark
                        or (day_start is not None and end <= day_start)):
                    due.append((end, index, window))
                    closing += 1
                else:
                    break
            if closing:
                del windows[:closing]
        if not due:
            return
        due.sort(key=lambda item: (item[0], item[1]))
        plan = self._plan
        engine = plan.indicators
        compiled = plan.compiled
        strategies = self.strategies
        live = self.live
        stand_in: Origin | None = None
        position, count = 0, len(due)
        while position < count:
            end = due[position][0]
            closed: list[ClosedCandle] = []
            origins: dict[str, Origin] = {}
            smallest = False
            while position < count and due[position][0] == end:
                _, index, window = due[position]
                position += 1
                frame = self.frames[index]
                ts_open, ts_close = frame.bounds(window.start)
                origin = window.origin
                if origin is None:
                    origin = stand_in = stand_in or Origin(tick.ts_event, tick.ts_init, lineage)
                if live is not None:
                    live.windows.discard((index, window.start))
                if strategies is not None:
                    closed.append(ClosedCandle(frame.name, window.start, end, window.open, window.high, window.low,
                                               window.close, window.volume))
                    origins[frame.name] = origin
                out.candles.append(derived.candle(
                    self._trusted, self.symbol, self.venue, frame.name, ts_open, ts_close, window.open,
                    window.high, window.low, window.close, window.volume, window.count, True, ts_close,
                    origin.ts_init, origin.lineage,
                ))
                values = engine.update(frame.indicators, window.close, window.volume, window.start // DAY_US)
                self._derive(frame.name, frame.rules, values, window.close, ts_close, origin.ts_init, origin.lineage,
                             out)
                smallest = smallest or index == plan.smallest
            if closed:
                assert compiled is not None and strategies is not None  # noqa: S101 - closed says so
                fired = compiled.on_candles(strategies, closed)
                if fired:
                    self._strategy_signals(fired, origins, out)
            day = self.day
            if smallest and live is None and day is not None:
                out.summaries.append(self._summary(False, day.origin or Origin(tick.ts_event, tick.ts_init, lineage)))

    def _derive(self, timeframe: str, rule_state: RuleState, values: list[Value], price: float,
                ts_event: datetime, ts_init: datetime, lineage: Lineage, out: StepOutput) -> None:
        """Snapshot + rules for one evaluation (``ts_init``/``lineage``: its origin's); signals count into the open day."""
        named = self._plan.indicators.named(values)  # dict(zip(names, values, strict=True)), generated
        trusted = self._trusted
        out.snapshots.append(derived.snapshot(trusted, self.symbol, self.venue, timeframe, price, named, ts_event, ts_init,
                                              lineage))
        fired = self._plan.rules.evaluate(rule_state, values, price)
        if not fired:
            return
        sources = self._plan.sources
        for rule, side in fired:
            self._signal(timeframe, sources.rule(rule, timeframe, side), side, price, named, ts_event, ts_init, lineage,
                         out)

    def _signal(self, timeframe: str, source: SignalSource, side: str, price: float, named: dict[str, Value],
                ts_event: datetime, ts_init: datetime, lineage: Lineage, out: StepOutput,
                ts_us: int | None = None) -> None:
        """One :class:`Signal`: emitted, counted into the open day and waiting for its outcomes.

        ``ts_init``/``lineage``: its origin's (the tick, or the last tick of the closed window); the id is
        made from that lineage. ``ts_us``: ``ts_event`` in µs when the caller has it.
        """
        if ts_event is not self._iso_of:  # a step's signals mostly share their instant: format it once
            self._iso_of = ts_event
            self._iso = ts_event.isoformat()
        signal_id = signal_id_of(self._id_prefix, timeframe, source.name, side, self._iso, lineage.partition,
                                 lineage.offset)
        out.signals.append(derived.signal(
            self._trusted, signal_id, self.symbol, self.venue, timeframe, source.name, source.version,
            source.condition, side, price, named, ts_event, ts_init, lineage,
        ))
        if self.outcomes.horizons:
            self._new.append(Pending(signal_id, source.name, source.version, timeframe, side, price,
                                     to_us(ts_event) if ts_us is None else ts_us))
        day = self.day
        if day is not None:
            if side == BUY:
                day.buys += 1
            else:
                day.sells += 1
            if self.live is not None:
                self.live.day = True

    def _add_pending(self) -> None:
        """The step's signals start waiting for their outcomes (after the step's own tick was looked at)."""
        if self._new:
            add = self.outcomes.add
            for pending in self._new:
                add(pending)
            self._new = []

    def _mature(self, ts: int, price: float, tick: Tick, lineage: Lineage, out: StepOutput) -> None:
        """The outcomes an accepted tick at ``ts`` completes (signals of earlier steps only)."""
        outcomes = self.outcomes
        if outcomes.next_due is None or ts < outcomes.next_due:
            return
        labels = self._plan.horizon_labels
        fee = self.config.fee
        for matured in outcomes.mature(ts, price):
            signal = matured.signal
            label = labels[matured.horizon_ms]
            out.outcomes.append(derived.outcome(
                self._trusted, make_outcome_id(signal.signal_id, label), signal.signal_id, self.symbol, self.venue,
                signal.strategy, signal.version, signal.timeframe, signal.side, label, signal.price,
                from_us(signal.ts_us), price, matured.return_gross, matured.return_net, fee, tick.ts_event,
                tick.ts_init, lineage,
            ))

    def _summary(self, final: bool, origin: Origin) -> DailySummary:
        """The open day's summary, carrying ``origin`` (the day's: its last tick)."""
        day = self.day
        assert day is not None  # noqa: S101 - callers check; a bug otherwise
        vwap = day.vwap
        return derived.summary(
            self._trusted, self.symbol, self.venue, day_date(day.day), day.open, day.high, day.low, day.close, day.mean_price,
            vwap if vwap is not None and math.isfinite(vwap) and vwap > 0.0 else None,
            day.volume, day.count, day.buys, day.sells, final, origin.ts_event, origin.ts_init, origin.lineage,
        )


def step(config: PipelineConfig, state: SymbolState | None, tick: Tick,
         lineage: Lineage) -> tuple[SymbolState, StepOutput]:
    """Apply one tick to a symbol's state: the new state (a fresh dict) and the derived events.

    ``state`` is None for a symbol never seen, else the state a previous call returned (or
    its JSON round trip); it is not modified. Raises :class:`IncompatibleStateError` when the
    state belongs to another indicator set or timeframes. Bad input never raises: it comes
    back in ``StepOutput.rejections``.
    """
    processor = SymbolProcessor(config, Instrument(tick.symbol, tick.venue), state)
    output = processor.process(tick, lineage)
    return processor.state(), output


def flush(config: PipelineConfig, state: SymbolState, tick: Tick,
          lineage: Lineage) -> tuple[SymbolState, StepOutput]:
    """End of a finite input: :meth:`SymbolProcessor.flush` on a stored state."""
    processor = SymbolProcessor(config, Instrument(tick.symbol, tick.venue), state)
    output = processor.flush(tick, lineage)
    return processor.state(), output
