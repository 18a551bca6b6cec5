"""Compiled whole-array kernels of the indicator nodes (:mod:`processors.core.nodes`), one per node kind.

Called by :mod:`processors.core.vector.nodes`, which feeds each kernel the defined values of its
inputs (a node never sees an undefined input: it skips it and its output is undefined there).
Each kernel is the node's update written as a loop over the whole series, in the node's
operation order and with its exact re-derivations (:mod:`processors.core.vector.exact`), so the
outputs are the engine's **bits** (tests/unit/core/test_core_vector_strategies.py). NaN = undefined.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from processors.core.indicators import CANCELLATION, RESYNC_EVERY, VARIANCE_CANCELLATION
from processors.core.vector.exact import exact_sum, square
from processors.core.vector.jit import njit

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@njit
def window_sums(values: Floats, n: int, partials: Floats) -> Floats:  # pragma: no cover - compiled
    """The :class:`~processors.core.nodes.averages.Window` node's running sum at each index (NaN before n values).

    ``total += x − leaving`` (0 leaves while the ring fills), re-derived exactly every 128 values
    and when it falls below 1/1000 of its peak; the SMA is this divided by n.
    """
    size = values.shape[0]
    out = np.full(size, np.nan)
    total = 0.0
    peak = 0.0
    for index in range(size):
        count = index + 1
        leaving = values[index - n] if index >= n else 0.0
        total = total + (values[index] - leaving)
        if count % RESYNC_EVERY == 0 or total < peak * CANCELLATION:
            total = exact_sum(values, max(0, index - n + 1), index + 1, partials)
            peak = total
        elif total > peak:
            peak = total
        if count >= n:
            out[index] = total
    return out


@njit
def bands(values: Floats, sums: Floats, n: int, width: float, partials: Floats, deviations: Floats,
          two: Floats) -> tuple[Floats, Floats, Floats]:  # pragma: no cover - compiled
    """Bollinger (upper, middle, lower) of :class:`~processors.core.nodes.averages.Bands` over ``values``.

    ``sums`` are :func:`window_sums` of the same values; ``deviations`` is scratch of length n.
    Shifted running sums with the node's exact re-derivations.
    """
    size = values.shape[0]
    upper = np.full(size, np.nan)
    middle = np.full(size, np.nan)
    lower = np.full(size, np.nan)
    shift = 0.0
    s1 = 0.0
    s2 = 0.0
    peak = 0.0
    for index in range(n - 1, size):
        count = index + 1
        mean = sums[index] / n
        price = values[index]
        exact = count == n or count % RESYNC_EVERY == 0
        m2 = 0.0
        if not exact:
            entering = price - shift
            outgoing = values[index - n] - shift
            t1 = s1 + (entering - outgoing)
            t2 = s2 + (entering * entering - outgoing * outgoing)
            m2 = t2 - t1 * t1 / n
            if m2 < peak * VARIANCE_CANCELLATION:
                exact = True
            else:
                s1 = t1
                s2 = t2
                if t2 > peak:
                    peak = t2
        if exact:
            start = index - n + 1
            shift = price
            for j in range(n):
                deviations[j] = values[start + j] - price
            s1 = exact_sum(deviations, 0, n, partials)
            for j in range(n):
                deviations[j] = deviations[j] * deviations[j]
            s2 = exact_sum(deviations, 0, n, partials)
            peak = s2
            for j in range(n):
                deviations[j] = values[start + j] - mean
            first = exact_sum(deviations, 0, n, partials)
            for j in range(n):
                deviations[j] = deviations[j] * deviations[j]
            m2 = exact_sum(deviations, 0, n, partials) - square(first, two) / n
            if not m2 > 0.0:
                m2 = 0.0
        deviation = width * math.sqrt(m2 / n)
        upper[index] = mean + deviation
        middle[index] = mean
        lower[index] = mean - deviation
    return upper, middle, lower


@njit
def ema(values: Floats, n: int) -> Floats:  # pragma: no cover - compiled
    """EMA(n) seeded with the mean of the first n values, then ``ema += k·(x − ema)``."""
    size = values.shape[0]
    out = np.full(size, np.nan)
    k = 2.0 / (n + 1)
    value = 0.0
    for index in range(size):
        count = index + 1
        x = values[index]
        if count > n:
            value = ((x - value) * k) + value
        elif count == n:
            value = (value + x) / n
        else:
            value += x
        if count >= n:
            out[index] = value
    return out


@njit
def rsi(values: Floats, n: int) -> Floats:  # pragma: no cover - compiled
    """Wilder RSI(n); 50 when average gain and loss are both 0."""
    size = values.shape[0]
    out = np.full(size, np.nan)
    gains = 0.0
    losses = 0.0
    n_less_one = n - 1
    for index in range(1, size):
        changes = index
        change = values[index] - values[index - 1]
        if changes > n:
            gain = gains * n_less_one
            loss = losses * n_less_one
        else:
            gain = gains
            loss = losses
        if change < 0.0:
            loss -= change
        else:
            gain += change
        if changes >= n:
            gain /= n
            loss /= n
        gains = gain
        losses = loss
        if changes >= n:
            both = gain + loss
            out[index] = 100.0 * (gain / both) if both else 50.0
    return out


@njit
def macd(fast: Floats, slow: Floats, signal_n: int) -> tuple[Floats, Floats, Floats]:  # pragma: no cover - compiled
    """(line, signal, histogram) where both EMAs are defined; the signal seeded with the mean of its first values."""
    size = fast.shape[0]
    line = np.full(size, np.nan)
    signal = np.full(size, np.nan)
    hist = np.full(size, np.nan)
    k = 2.0 / (signal_n + 1)
    value = 0.0
    seen = 0
    for index in range(size):
        a = fast[index]
        b = slow[index]
        if a != a or b != b:
            continue
        difference = a - b
        line[index] = difference
        seen += 1
        if seen > signal_n:
            value = ((difference - value) * k) + value
        elif seen == signal_n:
            value = (value + difference) / signal_n
        else:
            value += difference
            continue
        signal[index] = value
        hist[index] = difference - value
    return line, signal, hist


@njit
def vwap(price: Floats, volume: Floats, day: Ints) -> Floats:  # pragma: no cover - compiled
    """Σ(price·volume)/Σ(volume) since each UTC midnight; NaN while the day has no volume."""
    size = price.shape[0]
    out = np.full(size, np.nan)
    pv = 0.0
    total = 0.0
    current = np.int64(-(2**62))
    for index in range(size):
        if day[index] != current:
            current = day[index]
            pv = 0.0
            total = 0.0
        v = volume[index]
        if v > 0.0:
            pv += price[index] * v
            total += v
        if total > 0.0:
            out[index] = pv / total
    return out


@njit
def wma(values: Floats, n: int, partials: Floats, products: Floats) -> Floats:  # pragma: no cover - compiled
    """Linearly weighted mean of the last n values (TA-Lib's running sums, re-derived like the node)."""
    size = values.shape[0]
    out = np.full(size, np.nan)
    divider = n * (n + 1) // 2
    sub = 0.0
    weighted = 0.0
    peak = 0.0
    for index in range(size):
        count = index + 1
        x = values[index]
        if count < n:
            sub += x
            weighted += x * count
            continue
        leaving = values[index - n] if index >= n else 0.0
        sub = (sub + x) - leaving
        weighted = weighted + x * n
        if count % RESYNC_EVERY == 0 or sub < peak * CANCELLATION:
            start = index - n + 1
            sub = exact_sum(values, start, index + 1, partials)
            for j in range(n):
                products[j] = values[start + j] * (j + 1)
            weighted = exact_sum(products, 0, n, partials)
            peak = sub
        elif sub > peak:
            peak = sub
        out[index] = weighted / divider
        weighted = weighted - sub
    return out


@njit
def roc(values: Floats, n: int) -> Floats:  # pragma: no cover - compiled
    """Rate of change in percent against the value n updates back (0 when that value is 0)."""
    size = values.shape[0]
    out = np.full(size, np.nan)
    for index in range(n, size):
        before = values[index - n]
        out[index] = ((values[index] / before) - 1.0) * 100.0 if before != 0.0 else 0.0
    return out


@njit
def obv(price: Floats, volume: Floats) -> Floats:  # pragma: no cover - compiled
    """On-balance volume: the first volume, then ± each volume as the price rises/falls."""
    size = price.shape[0]
    out = np.empty(size)
    total = 0.0
    for index in range(size):
        if index == 0:
            total = volume[0]
        elif price[index] > price[index - 1]:
            total += volume[index]
        elif price[index] < price[index - 1]:
            total -= volume[index]
        out[index] = total
    return out


@njit
def extreme(values: Floats, n: int, highest: bool) -> Floats:  # pragma: no cover - compiled
    """Highest/lowest of the last n values, with the node's bookkeeping (rescan of its ring in ring order)."""
    size = values.shape[0]
    out = np.full(size, np.nan)
    best = 0.0
    entered = 0
    for index in range(size):
        count = index + 1
        x = values[index]
        if count == 1 or (x >= best if highest else x <= best):
            best = x
            entered = count
        elif entered <= count - n:
            # The ring's slot p holds the value of count ≡ p + 1 (mod n): index ≡ p (mod n).
            found = 0.0
            where = 0
            for slot in range(n):
                item = values[index - ((index - slot) % n)]
                if slot == 0:
                    found = item
                elif (item > found) if highest else (item < found):
                    found = item
            for slot in range(n):
                if values[index - ((index - slot) % n)] == found:
                    where = slot
                    break
            best = found
            entered = count - ((count - 1 - where) % n)
        if count >= n:
            out[index] = best
    return out


@njit
def _true_range(high: float, low: float, previous_close: float) -> float:  # pragma: no cover - compiled
    value = high - low
    other = abs(high - previous_close)
    if other > value:
        value = other
    other = abs(low - previous_close)
    if other > value:
        value = other
    return value


@njit
def atr(high: Floats, low: Floats, close: Floats, n: int) -> Floats:  # pragma: no cover - compiled
    """Wilder ATR: mean of the first n true ranges (from the 2nd bar), then ``(atr·(n−1) + tr)/n``."""
    size = close.shape[0]
    out = np.full(size, np.nan)
    previous = 0.0
    value = 0.0
    for index in range(size):
        count = index + 1
        if count == 1:
            previous = close[index]
            continue
        true_range = _true_range(high[index], low[index], previous)
        previous = close[index]
        ranges = count - 1
        if ranges < n:
            value += true_range
        elif ranges == n:
            value = (value + true_range) / n
            out[index] = value
        else:
            value = ((value * (n - 1)) + true_range) / n
            out[index] = value
    return out


@njit
def directional(high: Floats, low: Floats, close: Floats, n: int,
                dx_zero: float) -> tuple[Floats, Floats, Floats]:  # pragma: no cover - compiled
    """(+DI, −DI, ADX) of :class:`~processors.core.nodes.ranges.Directional` (ADX holds its last value)."""
    size = close.shape[0]
    plus_out = np.full(size, np.nan)
    minus_out = np.full(size, np.nan)
    adx_out = np.full(size, np.nan)
    high_before = 0.0
    low_before = 0.0
    close_before = 0.0
    plus = 0.0
    minus = 0.0
    total = 0.0
    dx_sum = 0.0
    adx = np.nan
    n_less_one = n - 1
    for index in range(size):
        count = index + 1
        h = high[index]
        lo = low[index]
        if count == 1:
            high_before = h
            low_before = lo
            close_before = close[index]
            continue
        up = h - high_before
        down = low_before - lo
        high_before = h
        low_before = lo
        true_range = _true_range(h, lo, close_before)
        close_before = close[index]
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
        if count <= n:
            continue
        if total != 0.0:
            plus_di = 100.0 * (plus / total)
            minus_di = 100.0 * (minus / total)
        else:
            plus_di = 0.0
            minus_di = 0.0
        plus_out[index] = plus_di
        minus_out[index] = minus_di
        both = minus_di + plus_di
        has_dx = total != 0.0 and both >= dx_zero
        dx = 100.0 * (abs(minus_di - plus_di) / both) if has_dx else 0.0
        seen = count - n
        if seen < n:
            if has_dx:
                dx_sum += dx
        elif seen == n:
            if has_dx:
                dx_sum += dx
            adx = dx_sum / n
        elif has_dx:
            adx = ((adx * n_less_one) + dx) / n
        adx_out[index] = adx
    return plus_out, minus_out, adx_out


@njit
def stochastic_k(highest: Floats, lowest: Floats, close: Floats, williams: bool) -> Floats:  # pragma: no cover
    """Fast %K (or Williams %R): the close's place in the [lowest, highest] range; 0 when the range is 0."""
    size = close.shape[0]
    out = np.full(size, np.nan)
    for index in range(size):
        top = highest[index]
        bottom = lowest[index]
        if top != top or bottom != bottom:
            continue
        if williams:
            scale = (top - bottom) / (-100.0)
            out[index] = (top - close[index]) / scale if scale != 0.0 else 0.0
        else:
            scale = (top - bottom) / 100.0
            out[index] = (close[index] - bottom) / scale if scale != 0.0 else 0.0
    return out


@njit
def cci(high: Floats, low: Floats, close: Floats, n: int, partials: Floats,
        deviations: Floats) -> Floats:  # pragma: no cover - compiled
    """CCI over typical prices: ``(tp − mean)/(0.015·mean|tp − mean|)`` with the node's exact sums; 0 when a factor is 0."""
    size = close.shape[0]
    out = np.full(size, np.nan)
    typical = np.empty(size)
    for index in range(size):
        typical[index] = (high[index] + low[index] + close[index]) / 3
    for index in range(n - 1, size):
        now = typical[index]
        start = index - n + 1
        for j in range(n):
            deviations[j] = typical[start + j] - now
        mean = exact_sum(deviations, 0, n, partials) / n
        for j in range(n):
            deviations[j] = abs(deviations[j] - mean)
        spread = exact_sum(deviations, 0, n, partials)
        out[index] = -mean / (0.015 * (spread / n)) if mean != 0.0 and spread != 0.0 else 0.0
    return out
