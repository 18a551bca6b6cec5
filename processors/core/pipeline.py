"""The per-instrument pipeline step: one tick in, every derived event out. One definition, many runners.

Every runner (the Quix stream processor, ``stockstream indicators``, the Spark backfill,
the replay tool) calls :func:`step` once per tick of an instrument (a venue's symbol,
:mod:`schemas.instruments`), in log order, carrying the returned :data:`SymbolState` to the next call::

    state, output = step(config, state, tick, lineage)   # state is None for a new instrument

:data:`SymbolState` is a JSON-compatible ``dict`` (only dict/list/str/int/float/bool/None)
that survives ``json``/``orjson`` text exactly and is never mutated by :func:`step`, so it can go
straight into a Quix state store or a Spark state. :class:`SymbolProcessor` is the same logic as a
long-lived mutable object for runners that keep it between ticks; :func:`step` is exactly
``SymbolProcessor(config, instrument, state).process(tick, lineage)`` plus :meth:`SymbolProcessor.state`.
Two venues of one symbol are two instruments: their ticks never meet in one state.

Semantics (docs/core.md has the long version):

- Timeframe ``tick``: every accepted tick in event order updates the tick indicators and the
  tick strategies and yields one :class:`IndicatorSnapshot`.
- Candle timeframes (``config.candle_timeframes``): tumbling windows ``[start, start+L)``
  aligned to the epoch. A window closes when the **stream time** reaches its end + grace — the
  instrument's own latest event time, or, when the runner passes it, the highest event time
  accepted on the instrument's input partition (so other instruments' ticks close a quiet
  instrument's windows: :meth:`SymbolProcessor.advance`, :mod:`processors.core.stream_time`) — or,
  at the latest, when the instrument's first tick of a later UTC day arrives (grace never reaches
  across a midnight). A closed window yields a final :class:`Candle`, then the timeframe's
  indicators and strategies run on it, with ``ts_event`` = the candle's ``ts_close``.
- A tick whose window (any candle timeframe) reached end + grace, or whose UTC day has closed, or
  — without candle timeframes — that is grace or more older than the instrument's latest tick, is
  rejected with reason ``late``. An older tick that is still within grace is folded into its
  open candle(s) and the daily aggregate but not into the tick indicators (their
  recurrences need event order); ``StepOutput.out_of_order`` is then True.
- Live updates (:mod:`processors.core.live`): the forming candles (``final=False``) and the running
  daily summary, at most one send per ``live_update_ms`` of stream time per instrument, the latest
  state never held back once the stream time moves past the interval.
- Daily aggregate per UTC day: the final :class:`DailySummary` when the day closes (the instrument's
  first tick of a later day, or the stream time reaching the next midnight + grace). Signals count
  into the day that is open when they are emitted.
- Scorecards (:mod:`processors.core.outcomes`): every signal's outcome at each horizon, from the
  first accepted tick of the instrument processed after it with event time ≥ signal time + horizon.
- Derived events carry the causing tick's ``ts_init`` and ``lineage``; signal ids come from
  :func:`schemas.events.make_signal_id`. Nothing reads the wall clock, so the same input
  sequence always yields the same events.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from processors.core import derived
from processors.core.candles import CandleWindow, fold
from processors.core.daily import DayAggregate
from processors.core.indicators import STATE_LENGTH, IndicatorState, Value
from processors.core.live import LiveUpdates
from processors.core.outcomes import Pending, PendingOutcomes
from processors.core.pipeline_config import (
    LATE,
    PRICE_OUT_OF_RANGE,
    TIME_OUT_OF_RANGE,
    VOLUME_OUT_OF_RANGE,
    PipelineConfig,
    SignalSource,
)
from processors.core.plain import StateFormatError, as_int, as_items, as_list
from processors.core.strategies.engine import BUY, ClosedCandle, IncompatibleStrategyStateError
from processors.core.step_output import StepOutput
from processors.core.timeutil import DAY_US, day_date, from_us, to_us
from schemas.events import (
    DeadLetter,
    Lineage,
    Tick,
    make_outcome_id,
    make_signal_id,
)
from schemas.instruments import Instrument
from schemas.timeframes import TICK

__all__ = ["LATE", "PRICE_OUT_OF_RANGE", "STATE_VERSION", "TIME_OUT_OF_RANGE", "VOLUME_OUT_OF_RANGE",
           "IncompatibleStateError", "PipelineConfig", "StepOutput", "SymbolProcessor", "SymbolState", "flush",
           "step"]

SymbolState = dict[str, Any]
"""The JSON-compatible state of one instrument (see the module docstring)."""

STATE_VERSION = 4  # bump whenever the plain layout changes (3: per instrument; 4: strategies, stream time, outcomes)
SegmentReader = Callable[[int], object]


class IncompatibleStateError(ValueError):
    """A stored state was written for another indicator set, timeframes or state version.

    Raised by :func:`step`; the runner decides (typically: log it and start the instrument
    afresh, or refuse to start with the changed strategy).
    """


class _Frame:
    """One candle timeframe of one instrument: its open windows and indicator state."""

    __slots__ = ("index", "name", "length", "windows", "indicators")

    def __init__(self, index: int, name: str, length: int, indicators: IndicatorState) -> None:
        self.index = index
        self.name = name
        self.length = length
        self.windows: list[CandleWindow] = []
        self.indicators = indicators


class SymbolProcessor:
    """The pipeline of one instrument as a mutable object (what :func:`step` runs inside).

    Runners may keep one per instrument and call :meth:`process` per tick (and :meth:`advance` when
    the partition's stream time reaches :meth:`deadline`); the result is identical to threading
    :func:`step` through every tick. ``read_segment`` loads the pending-outcome segments a stored
    state names when they are stored apart (the stream's state store; see :meth:`state`).
    """

    __slots__ = ("config", "instrument", "symbol", "venue", "last", "clock", "closed_day", "tick_indicators",
                 "frames", "day", "strategies", "outcomes", "live", "_plan", "_trusted", "_new", "_extras")

    def __init__(self, config: PipelineConfig, instrument: Instrument, state: SymbolState | None = None,
                 read_segment: SegmentReader | None = None) -> None:
        self.config = config
        self.instrument = instrument
        symbol = self.symbol = instrument.symbol
        self.venue = instrument.venue
        plan = self._plan = config.plan
        # see processors/core/derived.py
        self._trusted = plan.trusted and derived.valid_instrument(symbol, instrument.venue)
        self._new: list[Pending] = []  # signals of the current step, for the pending outcomes
        self.last: int | None = None  # event time (µs) of the latest tick applied to the tick timeframe
        self.clock: int | None = None  # the stream time (µs) this instrument has been brought to
        self.closed_day: int | None = None  # the latest UTC day closed (its late ticks are refused)
        self.day: DayAggregate | None = None
        self.live = LiveUpdates(config.live_update_ms * 1000)
        if state is None:
            self.tick_indicators = plan.indicators.new_state()
            self.frames = [_Frame(i, name, length, plan.indicators.new_state())
                           for i, (name, length) in enumerate(plan.frames)]
            self.strategies = plan.strategies.new_state(symbol)
            self.outcomes = PendingOutcomes(config.horizons_ms, config.fee)
            self._extras = plan.extras(self.strategies.plan)
            return
        if not isinstance(state, dict):
            raise StateFormatError(f"state of {symbol} is a {type(state).__name__}, not a dict")
        version = state.get("version")
        if version not in (3, STATE_VERSION) or state.get("key") != plan.key:
            raise IncompatibleStateError(
                f"state of {symbol} was written for {state.get('key')!r} (version {version!r}),"
                f" this config needs {plan.key!r} (version {STATE_VERSION})"
            )
        if state.get("instrument") != instrument.text:
            raise ValueError(f"state of {state.get('instrument')!r} used for {instrument.text!r}")
        try:
            self._load(state, version == 3, read_segment)
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, StateFormatError):
                raise
            raise StateFormatError(f"state of {symbol} is malformed: {error}") from error
        self._extras = plan.extras(self.strategies.plan)

    def _load(self, state: SymbolState, v3: bool, read_segment: SegmentReader | None) -> None:
        """Restore from a state dict; version 3 (the rule engine's) keeps indicators, windows and day."""
        plan = self._plan
        config = self.config
        self.last = None if state["last"] is None else as_int(state["last"], "last")
        tick = state["tick"]
        indicators = as_list(tick, 2, "tick")[0] if v3 else tick
        self.tick_indicators = plan.indicators.load(as_list(indicators, STATE_LENGTH, "tick indicators"))
        frames = state["frames"]
        self.frames = []
        for index, (name, length) in enumerate(plan.frames):
            stored = as_list(frames[name], 3 if v3 else 2, name)
            frame = _Frame(index, name, length, plan.indicators.load(as_list(stored[1], STATE_LENGTH, name)))
            frame.windows = [CandleWindow.load(window) for window in as_items(stored[0], name)]
            self.frames.append(frame)
        self.day = None if state["day"] is None else DayAggregate.load(state["day"])
        if v3:  # strategies warm up from here; nothing was pending
            self.clock = self.last
            self.strategies = plan.strategies.new_state(self.symbol)
            self.outcomes = PendingOutcomes(config.horizons_ms, config.fee)
            return
        self.clock = None if state["clock"] is None else as_int(state["clock"], "clock")
        self.closed_day = None if state["closed_day"] is None else as_int(state["closed_day"], "closed day")
        self.live = LiveUpdates.load(state["live"], config.live_update_ms * 1000)
        stored_strategies = state["strategies"]
        compiled = plan.strategies
        same = isinstance(stored_strategies, dict) and stored_strategies.get("key") == compiled.key
        try:
            self.strategies = compiled.load(self.symbol, stored_strategies.get("state"), partial=not same)
        except (IncompatibleStrategyStateError, StateFormatError):
            if same:
                raise
            self.strategies = compiled.new_state(self.symbol)  # another strategy set: what fits is gone
        self.outcomes = PendingOutcomes.load(state["outcomes"], config.horizons_ms, config.fee, read_segment)

    def state(self, segments: bool = True) -> SymbolState:
        """The current state as a fresh JSON-compatible dict.

        ``segments=False`` leaves the pending outcomes' segments out (a store that keeps them apart
        writes :meth:`PendingOutcomes.changes` itself and passes ``read_segment`` when loading).
        """
        plan = self._plan
        dump = plan.indicators.dump
        return {
            "version": STATE_VERSION,
            "key": plan.key,
            "instrument": self.instrument.text,
            "last": self.last,
            "clock": self.clock,
            "closed_day": self.closed_day,
            "tick": dump(self.tick_indicators),
            "frames": {frame.name: [[w.dump() for w in frame.windows], dump(frame.indicators)]
                       for frame in self.frames},
            "day": None if self.day is None else self.day.dump(),
            "live": self.live.dump(),
            "strategies": {"key": plan.strategies.key, "state": plan.strategies.dump(self.strategies)},
            "outcomes": self.outcomes.dump() if segments else self.outcomes.main(),
        }

    # -- the step --------------------------------------------------------------------------------

    def process(self, tick: Tick, lineage: Lineage, stream_time: int | None = None) -> StepOutput:
        """Apply one tick of this instrument; see the module docstring for the semantics.

        ``stream_time``: the stream time of the instrument's partition before this tick (µs), when the
        runner keeps one (:class:`processors.core.stream_time.PartitionClock`); None: the instrument's own.
        """
        if tick.symbol != self.symbol or tick.venue != self.venue:
            raise ValueError(f"tick of {tick.symbol}@{tick.venue} given to the pipeline of {self.instrument}")
        out = StepOutput()
        price = tick.price
        volume = tick.volume or 0.0
        ts = to_us(tick.ts_event)
        day = ts // DAY_US
        bounds = self._out_of_bounds(ts, price, volume)
        if bounds is not None:
            out.rejections.append(self._dead_letter(tick, lineage, bounds))
            return out
        if stream_time is not None and (self.clock is None or stream_time > self.clock):
            self._advance(stream_time, tick, lineage, out)  # what the partition's stream time has closed already
        late = self._lateness(ts, day)
        if late is not None:
            out.rejections.append(self._dead_letter(tick, lineage, late))
            self._add_pending()
            return out

        last = self.last
        in_order = last is None or ts >= last
        clock = self.clock
        watermark = ts if clock is None or ts > clock else clock
        self.clock = watermark
        new_day = self.day is not None and day > self.day.day
        if self.frames:
            self._close(watermark, day * DAY_US if new_day else None, tick, lineage, out)
        if new_day:
            self._close_day(tick, lineage, out)
        live = self.live
        for frame in self.frames:
            start = fold(frame.windows, frame.length, ts, price, volume)
            live.windows.add((frame.index, start))
        if self.day is None:
            self.day = DayAggregate(day, ts, price, volume)
        else:
            self.day.add(ts, price, volume)
        live.day = True

        if in_order:
            self.last = ts
            self._tick_timeframe(price, volume, day, tick, lineage, out)
        else:
            out.out_of_order = True
        self._mature(ts, price, tick, lineage, out)
        self._add_pending()
        if live.ready(watermark):
            self._send_live(watermark, tick, lineage, out)
        return out

    def advance(self, stream_time: int, tick: Tick, lineage: Lineage) -> StepOutput:
        """The partition's stream time reached ``stream_time`` (µs) with ``tick`` (another instrument's).

        Closes the windows and the day that stream time has reached and sends due live updates; the
        events carry ``tick``'s ``ts_init`` and ``lineage`` (the record that moved the stream time).
        """
        out = StepOutput()
        if self.clock is None or stream_time > self.clock:
            self._advance(stream_time, tick, lineage, out)
        self._add_pending()
        if self.live.ready(stream_time):
            self._send_live(stream_time, tick, lineage, out)
        return out

    def deadline(self) -> int | None:
        """The earliest stream time (µs) at which :meth:`advance` has something to do (None: nothing)."""
        grace = self._plan.grace
        found = self.live.due()
        for frame in self.frames:
            if frame.windows:
                due = frame.windows[0].start + frame.length + grace
                if found is None or due < found:
                    found = due
        if self.day is not None:
            due = (self.day.day + 1) * DAY_US + grace
            if found is None or due < found:
                found = due
        return found

    def flush(self, tick: Tick, lineage: Lineage) -> StepOutput:
        """End of input: close every open window and emit a running (not final) summary.

        ``tick`` and ``lineage`` are the instrument's last processed tick and its position; the
        flushed events carry them. Only for finite inputs (the batch CLI); a stream never
        flushes, it waits for the next tick (or for the stream time to move).
        """
        out = StepOutput()
        if self.frames:
            self._close(None, None, tick, lineage, out)
        self._add_pending()
        self.live.windows = set()
        if self.day is not None:
            out.summaries.append(self._summary(False, self.day.close_ts, tick, lineage))
            self.live.day = False
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
        clock = self.clock
        if clock is None or ts >= clock:
            return None
        closed = self.closed_day
        if (self.day is not None and day < self.day.day) or (closed is not None and day <= closed):
            return LATE, (f"tick of {day_date(day)} arrived after that UTC day closed"
                          f" (stream time {from_us(clock).isoformat()})")
        grace = self._plan.grace
        for frame in self.frames:
            end = ts - ts % frame.length + frame.length
            if end + grace <= clock:
                return LATE, (f"its {frame.name} window [{from_us(end - frame.length).isoformat()},"
                              f" {from_us(end).isoformat()}) closed: stream time"
                              f" {from_us(clock).isoformat()}, grace {grace / 1e6:g}s")
        last = self.last
        if not self.frames and last is not None and ts + grace <= last:
            return LATE, (f"{(last - ts) / 1e6:g}s older than the latest event time"
                          f" {from_us(last).isoformat()} (grace {grace / 1e6:g}s)")
        return None

    def _dead_letter(self, tick: Tick, lineage: Lineage, reason: tuple[str, str]) -> DeadLetter:
        return DeadLetter(source=tick.source, reason=reason[0], detail=reason[1], raw=tick.model_dump_json(),
                          ts_init=tick.ts_init, origin=lineage)

    def _advance(self, stream_time: int, tick: Tick, lineage: Lineage, out: StepOutput) -> None:
        """Bring the instrument to ``stream_time``: close the windows and the day it has reached."""
        self.clock = stream_time
        if self.frames:
            self._close(stream_time, None, tick, lineage, out)
        day = self.day
        if day is not None and stream_time >= (day.day + 1) * DAY_US + self._plan.grace:
            self._close_day(tick, lineage, out)

    def _close_day(self, tick: Tick, lineage: Lineage, out: StepOutput) -> None:
        day = self.day
        assert day is not None  # noqa: S101 - callers check
        out.summaries.append(self._summary(True, to_us(tick.ts_event), tick, lineage))
        self.closed_day = day.day
        self.day = None
        self.live.day = False

    def _tick_timeframe(self, price: float, volume: float, day: int, tick: Tick, lineage: Lineage,
                        out: StepOutput) -> None:
        """The tick timeframe's indicators and strategies for an in-order tick (its snapshot and signals).

        A seam for the backfill's columnar runner (spark_jobs/backfill/columnar.py), which takes these
        values from the vectorized kernel instead and overrides this method alone.
        """
        plan = self._plan
        values = plan.indicators.update(self.tick_indicators, price, volume, day)
        fired = plan.strategies.on_tick(self.strategies, self.last, price, volume, values)  # type: ignore[arg-type]
        self._derive(TICK, values, fired, price, tick.ts_event, tick, lineage, out)

    def _close(self, watermark: int | None, day_start: int | None, tick: Tick, lineage: Lineage,
               out: StepOutput) -> None:
        """Close due windows (all of them when ``watermark`` is None): end time first, shortest timeframe first.

        Windows ending together are folded into their indicators and handed to the strategies in one
        call before any strategy reads them (no look-ahead, whatever the order).
        """
        grace = self._plan.grace
        due: list[tuple[int, int, _Frame, CandleWindow]] = []
        for frame in self.frames:
            windows = frame.windows
            closing = 0
            for window in windows:  # sorted by start, so the due ones are a prefix
                end = window.start + frame.length
                if (watermark is None or end + grace <= watermark
                        or (day_start is not None and end <= day_start)):
                    due.append((end, frame.length, frame, window))
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
        live_windows = self.live.windows
        start = 0
        while start < len(due):
            end = due[start][0]
            stop = start + 1
            while stop < len(due) and due[stop][0] == end:
                stop += 1
            group = due[start:stop]
            ts_close = from_us(end)
            closed: list[ClosedCandle] = []
            values_of: list[list[Value]] = []
            for _, _, frame, window in group:
                live_windows.discard((frame.index, window.start))
                values = engine.update(frame.indicators, window.close, window.volume, window.start // DAY_US)
                values_of.append(values)
                closed.append(ClosedCandle(frame.name, window.start, end, window.open, window.high, window.low,
                                           window.close, window.volume, values))
            fired = plan.strategies.on_candles(self.strategies, closed)
            for (_, _, frame, window), values in zip(group, values_of, strict=True):
                out.candles.append(derived.candle(
                    self._trusted, self.symbol, self.venue, frame.name, from_us(window.start), ts_close, window.open,
                    window.high, window.low, window.close, window.volume, window.count, True, ts_close, tick.ts_init,
                    lineage,
                ))
                mine = [f for f in fired if f.strategy.timeframe == frame.name] if fired else ()
                self._derive(frame.name, values, mine, window.close, ts_close, tick, lineage, out)
            start = stop

    def _derive(self, timeframe: str, values: list[Value], fired: Any, price: float, ts_event: datetime,
                tick: Tick, lineage: Lineage, out: StepOutput) -> None:
        """Snapshot + signals for one evaluation; signals are counted into the open day."""
        plan = self._plan
        named = dict(zip(plan.names, values, strict=True))
        extra = self._extras.get(timeframe)
        if extra is not None:
            named.update(zip(extra[0], extra[1](self.strategies.values), strict=True))
        trusted = self._trusted
        out.snapshots.append(derived.snapshot(trusted, self.symbol, self.venue, timeframe, price, named, ts_event,
                                              tick.ts_init, lineage))
        if fired:
            self._signals(timeframe, fired, named, price, ts_event, tick, lineage, out)

    def _signals(self, timeframe: str, fired: Any, named: dict[str, Value], price: float, ts_event: datetime,
                 tick: Tick, lineage: Lineage, out: StepOutput) -> None:
        """The :class:`Signal` of every side that fired (and their pending outcomes, counts in the day)."""
        day = self.day
        sources = self._plan.sources
        ts_us = to_us(ts_event)
        for one in fired:
            source: SignalSource = sources[(one.strategy.position, one.side)]
            signal_id = make_signal_id(self.symbol, self.venue, timeframe, source.name, one.side, ts_event,
                                       lineage.partition, lineage.offset)
            out.signals.append(derived.signal(
                self._trusted, signal_id, self.symbol, self.venue, timeframe, source.name, source.version,
                source.condition, one.side, price, named, ts_event, tick.ts_init, lineage,
            ))
            self._new.append(Pending(signal_id, source.name, source.version, timeframe, one.side, price, ts_us))
            if day is not None:
                if one.side == BUY:
                    day.buys += 1
                else:
                    day.sells += 1

    def _add_pending(self) -> None:
        """The step's signals start waiting for their outcomes (after the step's own tick was looked at)."""
        if self._new:
            add = self.outcomes.add
            for pending in self._new:
                add(pending)
            self._new = []

    def _mature(self, ts: int, price: float, tick: Tick, lineage: Lineage, out: StepOutput) -> None:
        """The outcomes an accepted tick completes (signals of earlier steps only)."""
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
                signal.strategy, signal.version, signal.timeframe, signal.side, label,  # type: ignore[arg-type]
                signal.price, from_us(signal.ts_us), price, matured.return_gross, matured.return_net, fee,
                tick.ts_event, tick.ts_init, lineage,
            ))

    def _send_live(self, now: int, tick: Tick, lineage: Lineage, out: StepOutput) -> None:
        """The forming candles and running summary that changed, as of now (stream time)."""
        live = self.live
        frames = self.frames
        for index, start in sorted(live.windows):
            frame = frames[index]
            window = next((w for w in frame.windows if w.start == start), None)
            if window is None:
                continue
            out.candles.append(derived.candle(
                self._trusted, self.symbol, self.venue, frame.name, from_us(start), from_us(start + frame.length),
                window.open, window.high, window.low, window.close, window.volume, window.count, False,
                from_us(window.close_ts), tick.ts_init, lineage,
            ))
        if live.day and self.day is not None:
            out.summaries.append(self._summary(False, self.day.close_ts, tick, lineage))
        live.sent(now)

    def _summary(self, final: bool, ts_us: int, tick: Tick, lineage: Lineage) -> Any:
        day = self.day
        assert day is not None  # noqa: S101 - callers check; a bug otherwise
        vwap = day.vwap
        return derived.summary(
            self._trusted, self.symbol, self.venue, day_date(day.day), day.open, day.high, day.low, day.close,
            day.mean_price, vwap if vwap is not None and math.isfinite(vwap) and vwap > 0.0 else None,
            day.volume, day.count, day.buys, day.sells, final, from_us(ts_us), tick.ts_init, lineage,
        )


def step(config: PipelineConfig, state: SymbolState | None, tick: Tick,
         lineage: Lineage) -> tuple[SymbolState, StepOutput]:
    """Apply one tick to an instrument's state: the new state (a fresh dict) and the derived events.

    ``state`` is None for an instrument never seen, else the state a previous call returned (or
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

