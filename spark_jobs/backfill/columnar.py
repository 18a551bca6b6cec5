"""The backfill's columnar fast path: the tick timeframe from the vectorized kernel, the rest from the core step.

Called by :func:`spark_jobs.backfill.runner.run_group` for every group whose output is Parquet only
(events for topics or Redis need each event's JSON: those groups take the per-tick path).

Why it equals the per-tick run. In :class:`processors.core.pipeline.SymbolProcessor` the tick
timeframe's indicators and rules only ever see the *in-order accepted* ticks, and which ticks those
are is known before running anything: a tick within the price/volume/calendar bounds is accepted
in order exactly when its event time is ≥ every earlier in-bounds tick's (a tick at or after the
latest event time is never late; an older one never moves the latest time). So the kernel
(:mod:`processors.core.vector`) computes the tick indicators and rule signals of the whole group
at once, and :class:`ColumnarProcessor` — the core step with only its tick-timeframe seam
(``_tick_timeframe``) overridden — runs everything else per tick (rejections, candles with grace,
candle-timeframe indicators, daily aggregates, whose BUY/SELL counts take the kernel's signals at
the moment the core would count them). It checks, tick by tick, that the k-th in-order tick it
sees is the kernel's k-th (a mismatch is a bug and raises). The tick snapshots go into the frame as
columns; the tick signals as rows built like the core builds them (same ids, same values).
Indicator values equal the engine's bit for bit, SMA/Bollinger to ~1e-15 (docs/core.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from processors.core.outcomes import Pending
from processors.core.pipeline import PipelineConfig, StepOutput, SymbolProcessor, late_at
from processors.core.rules import BUY
from processors.core.timeutil import DAY_US, day_date, to_us
from processors.core.vector import indicators as kernel
from processors.core.vector import rules as vector_rules
from schemas.events import Lineage, Tick, make_signal_id
from schemas.instruments import Instrument
from schemas.timeframes import TICK
from spark_jobs.backfill.rows import KIND_INDICATORS, indicator_column, union_columns

_NAT = np.iinfo(np.int64).min


def in_order_accepted(config: PipelineConfig, stamps: Sequence[int], valid: Sequence[bool],
                      stream_times: Sequence[int | None]) -> list[bool]:
    """Which ticks :meth:`SymbolProcessor.process` applies to the tick timeframe when each is given the
    stream time in ``stream_times`` (its partition's, before the record; None: none), its own decisions
    replayed on event times alone: the advance to the stream time (which may close the open day), the
    lateness rule of :func:`~processors.core.pipeline.late_at` (the step's own) against the resulting clock,
    then in order = at or after the latest tick applied. ``valid``: within the price/volume/calendar bounds
    (refused before anything).
    """
    plan = config.plan
    grace = plan.grace
    lengths = [length for _, length in plan.frames]
    clock: int | None = None  # the instrument's stream time (≥ its latest accepted event time)
    last: int | None = None  # the latest event time applied to the tick timeframe
    open_day: int | None = None  # the day of the open daily aggregate
    found: list[bool] = []
    for ts, ok, stream_time in zip(stamps, valid, stream_times, strict=True):
        if not ok:
            found.append(False)
            continue
        if stream_time is not None and (clock is None or stream_time > clock):
            clock = stream_time
            if open_day is not None and stream_time >= (open_day + 1) * DAY_US + grace:
                open_day = None  # the advance closed the day
        if late_at(ts, clock, open_day, grace, lengths) is not None:
            found.append(False)  # late
            continue
        day = ts // DAY_US
        if clock is None or ts > clock:
            clock = ts
        if open_day is None or day > open_day:
            open_day = day
        applied = last is None or ts >= last
        if applied:
            last = ts
        found.append(applied)
    return found


class TickTimeframe:
    """The kernel's tick-timeframe results for one group's processed ticks (in processing order).

    ``stream_times``: each tick's stream time as the runner gives it to the step (None or absent: the
    instrument's own event time), which decides the ticks that are late and so the series.
    """

    def __init__(self, config: PipelineConfig, ticks: list[Tick],
                 stream_times: Sequence[int | None] | None = None) -> None:
        size = len(ticks)
        stamps = np.fromiter((to_us(tick.ts_event) for tick in ticks), dtype=np.int64, count=size)
        prices = np.fromiter((tick.price for tick in ticks), dtype=np.float64, count=size)
        volumes = np.fromiter((tick.volume or 0.0 for tick in ticks), dtype=np.float64, count=size)
        plan = config.plan
        valid = ((stamps >= plan.earliest) & (stamps <= plan.latest)
                 & (prices >= config.min_price) & (prices <= config.max_price)
                 & ((volumes == 0.0) | ((volumes >= config.min_volume) & (volumes <= config.max_volume))))
        if stream_times is not None and any(time is not None for time in stream_times):
            in_order = np.array(in_order_accepted(config, stamps.tolist(), valid.tolist(), stream_times), dtype=bool)
        else:  # by its own event time no tick in bounds is late: in order = at or after every earlier one
            latest = np.maximum.accumulate(np.where(valid, stamps, _NAT))
            before = np.empty_like(latest)
            before[:1] = _NAT
            before[1:] = latest[:-1]
            in_order = valid & (stamps >= before)
        self.stamps = stamps[in_order]
        self.prices = prices[in_order]
        self.sources = plan.sources
        days = self.stamps // DAY_US
        self.names = plan.names
        self.values = kernel.compute(config.indicators, self.prices, volumes[in_order], days)
        self.signals: dict[int, list[tuple[str, str]]] = {}
        for fired in vector_rules.evaluate(config.rules, self.values, self.prices):
            for evaluation in np.flatnonzero(fired.mask).tolist():
                self.signals.setdefault(evaluation, []).append((fired.rule, fired.side))
        # Within one evaluation the engine's order is the order of ``evaluate``'s list: appended in that order.

    def __len__(self) -> int:
        return len(self.prices)

    def named(self, evaluation: int) -> dict[str, float | None]:
        """The indicator values of one evaluation as the core's ``named`` dict (None = undefined)."""
        found: dict[str, float | None] = {}
        for name in self.names:
            value = float(self.values[name][evaluation])
            found[name] = None if value != value else value
        return found


class ColumnarProcessor(SymbolProcessor):
    """The core step with the tick timeframe taken from :class:`TickTimeframe` (see the module docstring).

    After each :meth:`process`, :attr:`evaluation` is the index of the tick's evaluation in the kernel's
    arrays, or -1 when the tick was not evaluated on the tick timeframe (rejected or out of order).
    """

    __slots__ = ("kernel", "evaluation", "_next")

    def __init__(self, config: PipelineConfig, instrument: Instrument, tick_timeframe: TickTimeframe) -> None:
        super().__init__(config, instrument)
        self.kernel = tick_timeframe
        self.evaluation = -1
        self._next = 0

    def process(self, tick: Tick, lineage: Lineage, stream_time: int | None = None) -> StepOutput:
        self.evaluation = -1
        return super().process(tick, lineage, stream_time)

    def _tick_timeframe(self, price: float, volume: float, day: int, tick: Tick, lineage: Lineage,
                        out: StepOutput) -> None:
        evaluation = self._next
        self._next += 1
        kernel_ticks = self.kernel
        if evaluation >= len(kernel_ticks) or kernel_ticks.prices[evaluation] != price:
            raise RuntimeError(f"columnar backfill of {self.symbol}: in-order tick {evaluation} is not the kernel's"
                               f" (price {price!r}); the per-tick path must be used")
        self.evaluation = evaluation
        fired = kernel_ticks.signals.get(evaluation)
        if not fired:
            return
        if self.outcomes.horizons:  # the kernel's signals wait for their outcomes as the core's do (same ids)
            ts = to_us(tick.ts_event)
            for rule, side in fired:
                source = kernel_ticks.sources.rule(rule, TICK, side)
                signal_id = make_signal_id(self.symbol, self.venue, TICK, source.name, side, tick.ts_event,
                                           lineage.partition, lineage.offset)
                self._new.append(Pending(signal_id, source.name, source.version, TICK, side, price, ts))
        if self.day is not None:
            for _, side in fired:
                if side == BUY:
                    self.day.buys += 1
                else:
                    self.day.sells += 1


class TickRows:
    """The emitted tick snapshots as columns (evaluation index and position per row), and the tick signals."""

    def __init__(self, instrument: Instrument, tick_timeframe: TickTimeframe,
                 indicator_names: tuple[str, ...], signal_values: tuple[str, ...] = ()) -> None:
        self.instrument = instrument
        self.kernel = tick_timeframe
        self.indicator_names = indicator_names
        self.signal_values = signal_values
        self.evaluations: list[int] = []
        self.partitions: list[int] = []
        self.offsets: list[int] = []
        self.seqs: list[int] = []
        self.inits: list[int] = []

    def snapshot(self, evaluation: int, lineage: Lineage, seq: int, ts_init: int) -> None:
        self.evaluations.append(evaluation)
        self.partitions.append(lineage.partition)
        self.offsets.append(lineage.offset)
        self.seqs.append(seq)
        self.inits.append(ts_init)

    def signal_rows(self, evaluation: int, tick: Tick, lineage: Lineage, seq: int) -> list[dict[str, Any]]:
        """The rows of this evaluation's signals, as the per-tick emitter writes a core ``Signal``."""
        fired = self.kernel.signals.get(evaluation)
        if not fired:
            return []
        named = self.kernel.named(evaluation)
        values = {indicator_column(name): value for name, value in named.items()}
        moment = to_us(tick.ts_event)
        init = to_us(tick.ts_init)
        rows = []
        for rule, side in fired:
            source = self.kernel.sources.rule(rule, TICK, side)
            rows.append({
                "date": tick.ts_event.date(), "partition": lineage.partition, "offset": lineage.offset, "seq": seq,
                "timeframe": TICK, "rule": source.name, "strategy": source.name, "strategy_version": source.version,
                "condition": source.condition, "side": side, "price": tick.price, "ts_event": moment,
                "ts_init": init, **values,
                "signal_id": make_signal_id(self.instrument.symbol, self.instrument.venue, TICK, source.name, side,
                                            tick.ts_event, lineage.partition, lineage.offset),
            })
            seq += 1
        return rows

    def frame(self, key: str | None) -> pd.DataFrame:
        """The tick snapshot rows in the union layout (same dtypes as the per-tick emitter's frame)."""
        chosen = np.array(self.evaluations, dtype=np.int64)
        length = len(chosen)
        stamps = self.kernel.stamps[chosen]
        cache: dict[int, date] = {}
        dates = [cache.setdefault(day, day_date(day)) for day in (stamps // DAY_US).tolist()]
        given: dict[str, Any] = {
            "kind": [KIND_INDICATORS] * length, "instrument": [key] * length,
            "symbol": [self.instrument.symbol] * length, "venue": [self.instrument.venue] * length, "date": dates,
            "timeframe": [TICK] * length, "partition": np.array(self.partitions, dtype=np.int64),
            "offset": np.array(self.offsets, dtype=np.int64), "seq": np.array(self.seqs, dtype=np.int64),
            "ts_event": stamps, "ts_init": np.array(self.inits, dtype=np.int64),
            "price": self.kernel.prices[chosen],
        }
        for name in self.indicator_names:
            if name in self.kernel.values:
                given[indicator_column(name)] = self.kernel.values[name][chosen]
        return typed_frame(given, length, self.indicator_names, self.signal_values)


def typed_frame(given: dict[str, Any], length: int, indicator_names: tuple[str, ...],
                signal_values: tuple[str, ...] = ()) -> pd.DataFrame:
    """A union-layout frame from column arrays (NaN → null for doubles); absent columns are all null."""
    data: dict[str, Any] = {}
    nulls = np.ones(length, dtype=bool)
    for name, kind in union_columns(indicator_names, signal_values):
        values = given.get(name)
        if kind == "double":
            array = np.zeros(length) if values is None else np.asarray(values, dtype=np.float64)
            data[name] = pd.arrays.FloatingArray(array, nulls if values is None else np.isnan(array))
        elif kind in ("int", "long"):
            dtype = np.int64 if kind == "long" else np.int32
            array = np.zeros(length, dtype=dtype) if values is None else np.asarray(values).astype(dtype)
            data[name] = pd.arrays.IntegerArray(array, nulls if values is None else np.zeros(length, dtype=bool))
        elif kind == "boolean":
            data[name] = pd.arrays.BooleanArray(np.zeros(length, dtype=bool), nulls)
        elif kind == "timestamp":
            micros = np.full(length, _NAT, dtype=np.int64) if values is None else np.asarray(values, dtype=np.int64)
            data[name] = pd.Series(micros.view("datetime64[us]")).dt.tz_localize("UTC").array
        else:
            array = np.empty(length, dtype=object)
            if values is not None:
                array[:] = values
            data[name] = pd.arrays.NumpyExtensionArray(array)
    return pd.DataFrame(data)


def merge_snapshots(frame: pd.DataFrame, tick_frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (the per-tick emitter's layout) with ``tick_frame``'s rows among its snapshot rows.

    The snapshot rows come first, in emission order — ``(partition, offset, seq)`` — as the per-tick
    emitter leaves them; then the other kinds' rows unchanged. Column by column on the arrays
    (``pd.concat`` checks every all-null column of object dtype element by element).
    """
    is_snapshot = (frame["kind"] == KIND_INDICATORS).to_numpy()
    snapshots = np.flatnonzero(is_snapshot)
    others = np.flatnonzero(~is_snapshot)
    keys = [np.concatenate([frame[name].array.take(snapshots).to_numpy(dtype=np.int64),
                            tick_frame[name].to_numpy(dtype=np.int64)])
            for name in ("seq", "offset", "partition")]
    order = np.lexsort(keys)
    data: dict[str, Any] = {}
    for name in frame.columns:
        own = frame[name].array
        pieces = [own.take(snapshots), tick_frame[name].array]
        merged = type(own)._concat_same_type(pieces).take(order)
        data[name] = type(own)._concat_same_type([merged, own.take(others)])
    return pd.DataFrame(data)
