"""Price-series nodes: moving window (SMA), Bollinger bands, EMA, WMA, RSI, MACD, VWAP.

SMA, Bollinger, EMA, RSI, MACD and VWAP use exactly the arithmetic of
:class:`processors.core.indicators.IndicatorEngine` (same operation order, same exact
re-derivations), so a node graph and the engine give bit-identical values — a hypothesis
test holds them to that (tests/unit/core/nodes/test_nodes_engine.py). WMA
follows TA-Lib's operation order; definitions are in docs/core.md. ROC and OBV: :mod:`.momentum`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from processors.core.indicators import CANCELLATION, RESYNC_EVERY, VARIANCE_CANCELLATION
from processors.core.nodes.base import FLOAT, INT, MAYBE_INT, Bar, Node, Output, Source, Update, check_period

CLOSE = Bar("close")
VOLUME = Bar("volume")
DAY = Bar("day")


def _exact_m2(values: list[float], mean: float) -> float:
    """Σ(x − mean)² by the corrected two-pass formula with exact sums (as the engine does); never negative."""
    deviations = [x - mean for x in values]
    m2 = math.fsum(d * d for d in deviations) - math.fsum(deviations) ** 2 / len(values)
    return m2 if m2 > 0.0 else 0.0


@dataclass(frozen=True, slots=True)
class Window(Node):
    """The mean of the last ``period`` values of ``source`` (SMA), from the ``period``-th value.

    State: count, ring position, running sum, its peak since the last exact derivation, the
    value that left the window at the last update, and the ring of the last ``period`` values.
    The sum is re-derived exactly (``math.fsum``) every 128 values and whenever it falls
    below 1/1000 of its peak (a spike left the window), as the engine does.
    """

    period: int
    source: Source = CLOSE
    COUNT = 0
    POSITION = 1
    SUM = 2
    PEAK = 3
    OUTGOING = 4
    RING = 5

    def __post_init__(self) -> None:
        check_period("SMA", self.period)

    def key(self) -> str:
        return f"sma({self.period},{self.source.key()})"

    def inputs(self) -> tuple[Source, ...]:
        return (self.source,)

    def state_kinds(self) -> str:
        return INT + INT + FLOAT * 3 + FLOAT * self.period

    def initial_state(self) -> list[Any]:
        return [0, 0, 0.0, 0.0, 0.0] + [0.0] * self.period

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        (source,) = sources
        n = self.period
        count_at, position_at, sum_at, peak_at, outgoing_at = (state + i for i in range(5))
        ring = state + self.RING
        ring_end = ring + n

        def update(v: list[Any]) -> None:
            x = v[source]
            if x is None:
                v[out] = None
                return
            count = v[count_at] + 1
            v[count_at] = count
            position = v[position_at]
            slot = ring + position
            leaving = v[slot]
            v[slot] = x
            v[position_at] = position + 1 if position + 1 < n else 0
            v[outgoing_at] = leaving
            total = v[sum_at] + (x - leaving)
            peak = v[peak_at]
            if count % RESYNC_EVERY == 0 or total < peak * CANCELLATION:
                total = math.fsum(v[ring:ring_end])
                v[peak_at] = total
            elif total > peak:
                v[peak_at] = total
            v[sum_at] = total
            v[out] = total / n if count >= n else None

        return update


@dataclass(frozen=True, slots=True)
class Bands(Node):
    """Bollinger bands over a :class:`Window`: mean ± deviations·σ (population σ).

    Reads the window's region directly (its count, outgoing value and ring), so it shares
    the window with an ``sma`` of the same period. σ comes from shifted sums re-derived
    exactly like the engine's (see docs/core.md, "Numerics").
    """

    window: Window
    deviations: float
    outputs = ("upper", "middle", "lower")

    def __post_init__(self) -> None:
        if not (math.isfinite(self.deviations) and self.deviations > 0):
            raise ValueError("Bollinger deviations must be a positive number")

    def key(self) -> str:
        return f"bb({self.window.period},{self.deviations!r},{self.window.source.key()})"

    def inputs(self) -> tuple[Source, ...]:
        return (Output(self.window), self.window.source)

    def state_kinds(self) -> str:
        return FLOAT * 5  # shift, s1, s2, s2 peak, m2

    def initial_state(self) -> list[Any]:
        return [0.0] * 5

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        mean_at, price_at = sources
        window_state = mean_at + 1  # the window's region: its one output, then its state
        count_at = window_state + Window.COUNT
        outgoing_at = window_state + Window.OUTGOING
        ring = window_state + Window.RING
        n = self.window.period
        ring_end = ring + n
        width = self.deviations
        upper, middle, lower = out, out + 1, out + 2
        shift_at, s1_at, s2_at, peak_at, m2_at = (state + i for i in range(5))

        def update(v: list[Any]) -> None:
            mean = v[mean_at]
            if mean is None:
                v[upper] = v[middle] = v[lower] = None
                return
            price = v[price_at]
            count = v[count_at]
            exact = count == n or count % RESYNC_EVERY == 0
            if not exact:
                shift = v[shift_at]
                entering = price - shift
                outgoing = v[outgoing_at] - shift
                s1 = v[s1_at] + (entering - outgoing)
                s2 = v[s2_at] + (entering * entering - outgoing * outgoing)
                m2 = s2 - s1 * s1 / n
                if m2 < v[peak_at] * VARIANCE_CANCELLATION:
                    exact = True
                else:
                    v[s1_at] = s1
                    v[s2_at] = s2
                    if s2 > v[peak_at]:
                        v[peak_at] = s2
            if exact:
                window = v[ring:ring_end]
                v[shift_at] = price
                deviations = [x - price for x in window]
                v[s1_at] = math.fsum(deviations)
                v[s2_at] = v[peak_at] = math.fsum(d * d for d in deviations)
                m2 = _exact_m2(window, mean)
            v[m2_at] = m2
            deviation = width * math.sqrt(m2 / n)
            v[upper] = mean + deviation
            v[middle] = mean
            v[lower] = mean - deviation

        return update


@dataclass(frozen=True, slots=True)
class Ema(Node):
    """EMA: k = 2/(n+1), seeded with the mean of the first n values, then ``ema += k·(x − ema)``."""

    period: int
    source: Source = CLOSE

    def __post_init__(self) -> None:
        check_period("EMA", self.period)

    def key(self) -> str:
        return f"ema({self.period},{self.source.key()})"

    def inputs(self) -> tuple[Source, ...]:
        return (self.source,)

    def state_kinds(self) -> str:
        return INT + FLOAT  # count, seed sum then the EMA

    def initial_state(self) -> list[Any]:
        return [0, 0.0]

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        (source,) = sources
        n = self.period
        k = 2.0 / (n + 1)
        count_at, value_at = state, state + 1

        def update(v: list[Any]) -> None:
            x = v[source]
            if x is None:
                v[out] = None
                return
            count = v[count_at] + 1
            v[count_at] = count
            if count > n:
                ema = v[value_at]
                v[out] = v[value_at] = ((x - ema) * k) + ema
            elif count == n:
                v[out] = v[value_at] = (v[value_at] + x) / n
            else:
                v[value_at] += x

        return update


@dataclass(frozen=True, slots=True)
class Rsi(Node):
    """Wilder RSI: first averages = means of the first n changes, then ``(avg·(n−1) + x)/n``; 50 when flat."""

    period: int
    source: Source = CLOSE

    def __post_init__(self) -> None:
        check_period("RSI", self.period)

    def key(self) -> str:
        return f"rsi({self.period},{self.source.key()})"

    def inputs(self) -> tuple[Source, ...]:
        return (self.source,)

    def state_kinds(self) -> str:
        return INT + FLOAT * 3  # count, previous value, gain, loss

    def initial_state(self) -> list[Any]:
        return [0, 0.0, 0.0, 0.0]

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        (source,) = sources
        n = self.period
        n_less_one = n - 1
        count_at, previous_at, gain_at, loss_at = state, state + 1, state + 2, state + 3

        def update(v: list[Any]) -> None:
            x = v[source]
            if x is None:
                v[out] = None
                return
            count = v[count_at] + 1
            v[count_at] = count
            changes = count - 1
            if changes:
                change = x - v[previous_at]
                if changes > n:
                    gain = v[gain_at] * n_less_one
                    loss = v[loss_at] * n_less_one
                else:
                    gain = v[gain_at]
                    loss = v[loss_at]
                if change < 0.0:
                    loss -= change
                else:
                    gain += change
                if changes >= n:
                    gain /= n
                    loss /= n
                v[gain_at] = gain
                v[loss_at] = loss
                if changes < n:
                    v[out] = None
                else:
                    both = gain + loss
                    v[out] = 100.0 * (gain / both) if both else 50.0
            v[previous_at] = x

        return update


@dataclass(frozen=True, slots=True)
class Macd(Node):
    """MACD over two EMA nodes: line = fast − slow; signal = EMA(signal) of the line seeded with its mean."""

    fast: Ema
    slow: Ema
    signal: int
    outputs = ("line", "signal", "hist")

    def __post_init__(self) -> None:
        check_period("MACD signal", self.signal)
        if self.fast.period >= self.slow.period:
            raise ValueError(f"MACD fast period ({self.fast.period}) must be shorter than the slow one"
                             f" ({self.slow.period})")

    def key(self) -> str:
        return f"macd({self.fast.period},{self.slow.period},{self.signal},{self.fast.source.key()})"

    def inputs(self) -> tuple[Source, ...]:
        return (Output(self.fast), Output(self.slow))

    def state_kinds(self) -> str:
        return INT + FLOAT  # line values seen, seed sum then the signal EMA

    def initial_state(self) -> list[Any]:
        return [0, 0.0]

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        fast_at, slow_at = sources
        m = self.signal
        k = 2.0 / (m + 1)
        seen_at, signal_at = state, state + 1
        line_out, signal_out, hist_out = out, out + 1, out + 2

        def update(v: list[Any]) -> None:
            fast = v[fast_at]
            slow = v[slow_at]
            if fast is None or slow is None:
                v[line_out] = v[signal_out] = v[hist_out] = None
                return
            macd = fast - slow
            v[line_out] = macd
            seen = v[seen_at] + 1
            v[seen_at] = seen
            if seen > m:
                signal = v[signal_at]
                signal = ((macd - signal) * k) + signal
            elif seen == m:
                signal = (v[signal_at] + macd) / m
            else:
                v[signal_at] += macd
                v[signal_out] = v[hist_out] = None
                return
            v[signal_at] = v[signal_out] = signal
            v[hist_out] = macd - signal

        return update


@dataclass(frozen=True, slots=True)
class Vwap(Node):
    """Σ(price·volume)/Σ(volume) since the UTC midnight of the evaluation (undefined until the day has volume)."""

    def key(self) -> str:
        return "vwap()"

    def inputs(self) -> tuple[Source, ...]:
        return (CLOSE, VOLUME, DAY)

    def state_kinds(self) -> str:
        return MAYBE_INT + FLOAT + FLOAT  # anchor day, Σ price·volume, Σ volume

    def initial_state(self) -> list[Any]:
        return [None, 0.0, 0.0]

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        price_at, volume_at, day_at = sources
        anchor_at, pv_at, total_at = state, state + 1, state + 2

        def update(v: list[Any]) -> None:
            day = v[day_at]
            if day != v[anchor_at]:
                v[anchor_at] = day
                v[pv_at] = 0.0
                v[total_at] = 0.0
            volume = v[volume_at]
            if volume > 0.0:
                v[pv_at] += v[price_at] * volume
                v[total_at] += volume
            total = v[total_at]
            v[out] = v[pv_at] / total if total > 0.0 else None

        return update


@dataclass(frozen=True, slots=True)
class Wma(Node):
    """Linearly weighted mean of the last n values (weights 1..n, newest heaviest), TA-Lib's ``WMA``.

    TA-Lib's running sums (Σx and Σ i·x), re-derived exactly every 128 values and whenever
    Σx falls below 1/1000 of its peak (a spike left the window), like :class:`Window`.
    """

    period: int
    source: Source = CLOSE

    def __post_init__(self) -> None:
        check_period("WMA", self.period)

    def key(self) -> str:
        return f"wma({self.period},{self.source.key()})"

    def inputs(self) -> tuple[Source, ...]:
        return (self.source,)

    def state_kinds(self) -> str:
        return INT + INT + FLOAT * 3 + FLOAT * self.period  # count, position, Σx, Σ i·x, Σx peak, ring

    def initial_state(self) -> list[Any]:
        return [0, 0, 0.0, 0.0, 0.0] + [0.0] * self.period

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        (source,) = sources
        n = self.period
        divider = n * (n + 1) // 2
        count_at, position_at, sub_at, weighted_at, peak_at = (state + i for i in range(5))
        ring = state + 5

        def update(v: list[Any]) -> None:
            x = v[source]
            if x is None:
                v[out] = None
                return
            count = v[count_at] + 1
            v[count_at] = count
            position = v[position_at]
            slot = ring + position
            leaving = v[slot]
            v[slot] = x
            position = position + 1 if position + 1 < n else 0
            v[position_at] = position
            if count < n:
                v[sub_at] += x
                v[weighted_at] += x * count
                v[out] = None
                return
            sub = (v[sub_at] + x) - leaving
            weighted = v[weighted_at] + x * n
            peak = v[peak_at]
            if count % RESYNC_EVERY == 0 or sub < peak * CANCELLATION:
                ordered = v[ring + position:ring + n] + v[ring:ring + position]  # oldest first
                sub = math.fsum(ordered)
                weighted = math.fsum([value * weight for weight, value in enumerate(ordered, 1)])
                v[peak_at] = sub
            elif sub > peak:
                v[peak_at] = sub
            v[out] = weighted / divider
            v[sub_at] = sub
            v[weighted_at] = weighted - sub

        return update
