"""High/low/close nodes: rolling highest/lowest, ATR, directional movement (+DI, −DI, ADX), stochastic
fast %K, Williams %R, CCI — each with TA-Lib's definition and operation order (docs/core.md).

On the ``tick`` timeframe high = low = close = the price, so these read the price series;
on a candle timeframe they read the candle's high, low and close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from processors.core.nodes.base import FLOAT, INT, Bar, Node, Output, Source, Update, check_period

HIGH = Bar("high")
LOW = Bar("low")
CLOSE = Bar("close")
DX_ZERO = 1e-8
"""TA-Lib's ``TA_IS_ZERO`` bound, used where it is scale-free: on +DI + −DI (0–200), not on price ranges."""


@dataclass(frozen=True, slots=True)
class Extreme(Node):
    """The highest (``highest=True``) or lowest value of the last n values of ``source`` (TA-Lib ``MAX``/``MIN``).

    Keeps the extreme and when it entered; only when it leaves the window is the ring
    scanned again (at C speed), so an update is O(1) amortized on real series.
    """

    period: int
    source: Source
    highest: bool

    def __post_init__(self) -> None:
        check_period("highest/lowest", self.period)

    def key(self) -> str:
        return f"{'highest' if self.highest else 'lowest'}({self.period},{self.source.key()})"

    def inputs(self) -> tuple[Source, ...]:
        return (self.source,)

    def state_kinds(self) -> str:
        return INT + INT + FLOAT + INT + FLOAT * self.period  # count, position, extreme, its count, ring

    def initial_state(self) -> list[Any]:
        return [0, 0, 0.0, 0] + [0.0] * self.period

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        (source,) = sources
        n = self.period
        count_at, position_at, extreme_at, entered_at = state, state + 1, state + 2, state + 3
        ring = state + 4
        ring_end = ring + n
        highest = self.highest

        def update(v: list[Any]) -> None:
            x = v[source]
            if x is None:
                v[out] = None
                return
            count = v[count_at] + 1
            v[count_at] = count
            position = v[position_at]
            v[ring + position] = x
            v[position_at] = position + 1 if position + 1 < n else 0
            extreme = v[extreme_at]
            if count == 1 or (x >= extreme if highest else x <= extreme):
                v[extreme_at] = x
                v[entered_at] = count
                extreme = x
            elif v[entered_at] <= count - n:  # the extreme left the window: scan the ring again
                window = v[ring:ring_end]
                extreme = max(window) if highest else min(window)
                where = window.index(extreme)
                v[extreme_at] = extreme
                v[entered_at] = count - ((count - 1 - where) % n)  # ring slot p holds counts ≡ p + 1 (mod n)
            v[out] = extreme if count >= n else None

        return update


def _true_range(high: float, low: float, previous_close: float) -> float:
    """max(high − low, |high − previous close|, |low − previous close|), TA-Lib's ``TRUE_RANGE``."""
    value = high - low
    other = abs(high - previous_close)
    if other > value:
        value = other
    other = abs(low - previous_close)
    if other > value:
        value = other
    return value


@dataclass(frozen=True, slots=True)
class Atr(Node):
    """Wilder ATR: first value = mean of the first n true ranges (from the 2nd bar), then ``(atr·(n−1) + tr)/n``."""

    period: int

    def __post_init__(self) -> None:
        check_period("ATR", self.period)

    def key(self) -> str:
        return f"atr({self.period})"

    def inputs(self) -> tuple[Source, ...]:
        return (HIGH, LOW, CLOSE)

    def state_kinds(self) -> str:
        return INT + FLOAT + FLOAT  # count, previous close, TR sum then the ATR

    def initial_state(self) -> list[Any]:
        return [0, 0.0, 0.0]

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        high_at, low_at, close_at = sources
        n = self.period
        count_at, previous_at, value_at = state, state + 1, state + 2

        def update(v: list[Any]) -> None:
            count = v[count_at] + 1
            v[count_at] = count
            if count == 1:
                v[previous_at] = v[close_at]
                return
            true_range = _true_range(v[high_at], v[low_at], v[previous_at])
            v[previous_at] = v[close_at]
            ranges = count - 1
            if ranges < n:
                v[value_at] += true_range
            elif ranges == n:
                v[out] = v[value_at] = (v[value_at] + true_range) / n
            else:
                v[out] = v[value_at] = ((v[value_at] * (n - 1)) + true_range) / n

        return update


@dataclass(frozen=True, slots=True)
class Directional(Node):
    """Wilder's directional movement, TA-Lib's ``PLUS_DI``, ``MINUS_DI`` and ``ADX`` in one node.

    +DM/−DM/TR are summed over the first n − 1 moves, then smoothed ``s − s/n + x``;
    ±DI = 100·DM/TR (0 when TR is 0), defined from the (n+1)-th bar. DX = 100·|−DI − +DI|/(−DI + +DI);
    ADX = the mean of the first n DX, then ``(adx·(n−1) + dx)/n``, defined from bar 2n. A DX
    that cannot be computed (TR = 0, or DI sum below 1e-8) is left out, as TA-Lib does.
    TA-Lib also treats |TR| < 1e-8 as 0 — an absolute bound on a price quantity; here only an
    exact 0 is (docs/core.md, findings).
    """

    period: int
    outputs = ("plus_di", "minus_di", "adx")

    def __post_init__(self) -> None:
        check_period("ADX/DI", self.period, least=2)

    def key(self) -> str:
        return f"dmi({self.period})"

    def inputs(self) -> tuple[Source, ...]:
        return (HIGH, LOW, CLOSE)

    def state_kinds(self) -> str:
        # count, previous high, low, close, +DM, −DM, TR, ΣDX, ADX
        return INT + FLOAT * 8

    def initial_state(self) -> list[Any]:
        return [0] + [0.0] * 8

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        high_at, low_at, close_at = sources
        n = self.period
        n_less_one = n - 1
        count_at, high_before, low_before, close_before, plus_at, minus_at, range_at, dx_sum_at, adx_at = (
            state + i for i in range(9))
        plus_out, minus_out, adx_out = out, out + 1, out + 2

        def update(v: list[Any]) -> None:
            count = v[count_at] + 1
            v[count_at] = count
            high = v[high_at]
            low = v[low_at]
            if count == 1:
                v[high_before] = high
                v[low_before] = low
                v[close_before] = v[close_at]
                return
            up = high - v[high_before]
            down = v[low_before] - low
            v[high_before] = high
            v[low_before] = low
            true_range = _true_range(high, low, v[close_before])
            v[close_before] = v[close_at]
            plus = v[plus_at]
            minus = v[minus_at]
            total = v[range_at]
            if count > n:
                plus -= plus / n
                minus -= minus / n
                total = total - (total / n) + true_range
            else:
                total += true_range
            if down > 0 and up < down:
                minus += down
            elif up > 0 and up > down:
                plus += up
            v[plus_at] = plus
            v[minus_at] = minus
            v[range_at] = total
            if count <= n:
                return
            if total != 0.0:
                plus_di = 100.0 * (plus / total)
                minus_di = 100.0 * (minus / total)
            else:
                plus_di = minus_di = 0.0
            v[plus_out] = plus_di
            v[minus_out] = minus_di
            both = minus_di + plus_di
            dx = 100.0 * (abs(minus_di - plus_di) / both) if total != 0.0 and both >= DX_ZERO else None
            seen = count - n  # DI values so far
            if seen < n:
                if dx is not None:
                    v[dx_sum_at] += dx
            elif seen == n:
                if dx is not None:
                    v[dx_sum_at] += dx
                v[adx_out] = v[adx_at] = v[dx_sum_at] / n
            elif dx is not None:
                v[adx_out] = v[adx_at] = ((v[adx_at] * n_less_one) + dx) / n

        return update


@dataclass(frozen=True, slots=True)
class FastK(Node):
    """Stochastic fast %K = 100·(close − lowest low)/(highest high − lowest low); 0 when the range is 0 (TA-Lib)."""

    highest: Extreme
    lowest: Extreme

    def key(self) -> str:
        return f"fastk({self.highest.key()},{self.lowest.key()})"

    def inputs(self) -> tuple[Source, ...]:
        return (Output(self.highest), Output(self.lowest), CLOSE)

    def state_kinds(self) -> str:
        return ""

    def initial_state(self) -> list[Any]:
        return []

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        highest_at, lowest_at, close_at = sources

        def update(v: list[Any]) -> None:
            highest = v[highest_at]
            lowest = v[lowest_at]
            if highest is None or lowest is None:
                v[out] = None
                return
            scale = (highest - lowest) / 100.0
            v[out] = (v[close_at] - lowest) / scale if scale != 0.0 else 0.0

        return update


@dataclass(frozen=True, slots=True)
class WilliamsR(Node):
    """Williams %R = −100·(highest high − close)/(highest high − lowest low); 0 when the range is 0 (TA-Lib)."""

    highest: Extreme
    lowest: Extreme

    def key(self) -> str:
        return f"willr({self.highest.key()},{self.lowest.key()})"

    def inputs(self) -> tuple[Source, ...]:
        return (Output(self.highest), Output(self.lowest), CLOSE)

    def state_kinds(self) -> str:
        return ""

    def initial_state(self) -> list[Any]:
        return []

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        highest_at, lowest_at, close_at = sources

        def update(v: list[Any]) -> None:
            highest = v[highest_at]
            lowest = v[lowest_at]
            if highest is None or lowest is None:
                v[out] = None
                return
            scale = (highest - lowest) / (-100.0)
            v[out] = (highest - v[close_at]) / scale if scale != 0.0 else 0.0

        return update


@dataclass(frozen=True, slots=True)
class Cci(Node):
    """Commodity channel index over the typical price tp = (high + low + close)/3:

    ``(tp − mean)/(0.015·mean|tp − mean|)`` over the last n typical prices; 0 when either
    factor is 0 (TA-Lib). The mean deviation around a moving mean has no O(1) update: each
    update is O(n) at C speed, computed on deviations from the current tp (exact for values
    within 2× of it) with exact sums, so it stays accurate where a plain sum cancels.
    """

    period: int

    def __post_init__(self) -> None:
        check_period("CCI", self.period, least=2)

    def key(self) -> str:
        return f"cci({self.period})"

    def inputs(self) -> tuple[Source, ...]:
        return (HIGH, LOW, CLOSE)

    def state_kinds(self) -> str:
        return INT + INT + FLOAT * self.period  # count, position, ring of typical prices

    def initial_state(self) -> list[Any]:
        return [0, 0] + [0.0] * self.period

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        high_at, low_at, close_at = sources
        n = self.period
        count_at, position_at, ring = state, state + 1, state + 2
        ring_end = ring + n

        def update(v: list[Any]) -> None:
            typical = (v[high_at] + v[low_at] + v[close_at]) / 3
            count = v[count_at] + 1
            v[count_at] = count
            position = v[position_at]
            v[ring + position] = typical
            v[position_at] = position + 1 if position + 1 < n else 0
            if count < n:
                return
            deviations = [x - typical for x in v[ring:ring_end]]
            mean = math.fsum(deviations) / n  # = mean(tp) − tp
            spread = math.fsum([abs(d - mean) for d in deviations])
            v[out] = -mean / (0.015 * (spread / n)) if mean != 0.0 and spread != 0.0 else 0.0

        return update
