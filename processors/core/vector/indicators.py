"""The indicators of :mod:`processors.core.indicators` over whole arrays (the kernel for history).

Called by the Spark backfill (per group), the backtests and the sweeps. Same definitions as the
O(1) engine (docs/core.md), held equal to it by tests/unit/core/test_core_vector_kernel.py:

- EMA, RSI (Wilder), MACD and VWAP are recurrences: compiled loops (:mod:`.jit`) written in the
  engine's operation order, so they give the engine's bits (strict IEEE, no fused multiply-add).
- SMA: a running window sum re-derived from the window every 128 prices and whenever it falls
  below 1/1000 of its peak (the engine's rule); the re-derivation here is a compensated
  (Neumaier) sum where the engine uses ``math.fsum``, so values agree to ~1e-15 relative.
- Bollinger: mean = that SMA; σ from the corrected two-pass formula over each window
  (Σd² − (Σd)²/n with d = x − mean, never negative), where the engine keeps shifted running
  sums with an exact re-derivation on cancellation. Both are within ~1e-12 of the exact value.

Rule signals only read RSI, EMA and MACD values, which are bit-identical to the engine's, so the
signals of :mod:`.rules` are identical to the engine's, ties included.

Undefined values (the engine's ``None``) are NaN. Inputs: ``price`` float64, ``volume`` float64
(0 = unknown), ``day`` int64 UTC day numbers (VWAP anchor).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from processors.core.indicators import CANCELLATION, RESYNC_EVERY, IndicatorSpec
from processors.core.vector.jit import njit

Floats = npt.NDArray[np.float64]
Days = npt.NDArray[np.int64]


@njit
def _window_sum(price: Floats, end: int, n: int) -> float:  # pragma: no cover - compiled
    """Σ price[end − n + 1 .. end] by Neumaier's compensated summation."""
    total = 0.0
    compensation = 0.0
    for index in range(end - n + 1, end + 1):
        value = price[index]
        moved = total + value
        if abs(total) >= abs(value):
            compensation += (total - moved) + value
        else:
            compensation += (value - moved) + total
        total = moved
    return total + compensation


@njit
def window_sums(price: Floats, n: int) -> Floats:  # pragma: no cover - compiled
    """Σ of the last n prices at every index (NaN before n prices), the engine's running-sum rule."""
    size = price.shape[0]
    out = np.full(size, np.nan)
    total = 0.0
    peak = 0.0
    for index in range(size):
        count = index + 1
        leaving = price[index - n] if index >= n else 0.0
        total = total + (price[index] - leaving)
        if count % RESYNC_EVERY == 0 or total < peak * CANCELLATION:
            total = _window_sum(price, index, min(n, count))
            peak = total
        elif total > peak:
            peak = total
        if count >= n:
            out[index] = total
    return out


def sma(price: Floats, n: int) -> Floats:
    """SMA(n): mean of the last n prices."""
    return window_sums(price, n) / n


@njit
def ema(price: Floats, n: int) -> Floats:  # pragma: no cover - compiled
    """EMA(n) seeded with the SMA of the first n prices, then ``ema += k·(p − ema)``."""
    size = price.shape[0]
    out = np.full(size, np.nan)
    k = 2.0 / (n + 1)
    value = 0.0
    for index in range(size):
        count = index + 1
        p = price[index]
        if count > n:
            value = ((p - value) * k) + value
        elif count == n:
            value = (value + p) / n
        else:
            value += p
        if count >= n:
            out[index] = value
    return out


@njit
def rsi(price: Floats, n: int) -> Floats:  # pragma: no cover - compiled
    """Wilder RSI(n); 50 when average gain and loss are both 0."""
    size = price.shape[0]
    out = np.full(size, np.nan)
    gains = 0.0
    losses = 0.0
    n_less_one = float(n - 1)
    for index in range(1, size):
        changes = index
        change = price[index] - price[index - 1]
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
def macd_signal(fast: Floats, slow: Floats, slow_n: int, signal_n: int) -> tuple[Floats, Floats, Floats]:  # pragma: no cover
    """(macd, signal, histogram) from the two EMA arrays, the signal seeded with the mean of its first values."""
    size = fast.shape[0]
    macd = np.full(size, np.nan)
    signal = np.full(size, np.nan)
    hist = np.full(size, np.nan)
    k = 2.0 / (signal_n + 1)
    value = 0.0
    for index in range(slow_n - 1, size):
        difference = fast[index] - slow[index]
        macd[index] = difference
        seen = index - slow_n + 2
        if seen > signal_n:
            value = ((difference - value) * k) + value
        elif seen == signal_n:
            value = (value + difference) / signal_n
        else:
            value += difference
            continue
        signal[index] = value
        hist[index] = difference - value
    return macd, signal, hist


@njit
def band_deviation(price: Floats, mean: Floats, n: int) -> Floats:  # pragma: no cover - compiled
    """Population σ of each window of n prices around its mean (corrected two-pass, never negative)."""
    size = price.shape[0]
    out = np.full(size, np.nan)
    for index in range(n - 1, size):
        centre = mean[index]
        total = 0.0
        squares = 0.0
        for inner in range(index - n + 1, index + 1):
            deviation = price[inner] - centre
            total += deviation
            squares += deviation * deviation
        m2 = squares - total * total / n
        out[index] = np.sqrt(m2 / n) if m2 > 0.0 else 0.0
    return out


@njit
def vwap(price: Floats, volume: Floats, day: Days) -> Floats:  # pragma: no cover - compiled
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


def compute(spec: IndicatorSpec, price: Floats, volume: Floats | None = None,
            day: Days | None = None) -> dict[str, Floats]:
    """Every indicator of ``spec`` over one series, keyed by :meth:`IndicatorSpec.names` (in that order).

    ``volume`` and ``day`` are needed only for VWAP (missing: no volume, one day). The series is one
    symbol's prices in event order, as the engine would be fed them from a fresh state.
    """
    price = np.ascontiguousarray(price, dtype=np.float64)
    size = price.shape[0]
    out: dict[str, Floats] = {}
    sums: dict[int, Floats] = {}

    def window(n: int) -> Floats:
        if n not in sums:
            sums[n] = window_sums(price, n)
        return sums[n]

    for n in spec.sma:
        out[f"sma_{n}"] = window(n) / n
    emas: dict[int, Floats] = {}
    for n in spec.ema:
        out[f"ema_{n}"] = emas[n] = ema(price, n)
    for n in spec.rsi:
        out[f"rsi_{n}"] = rsi(price, n)
    if spec.macd is not None:
        m = spec.macd
        fast = emas[m.fast] if m.fast in emas else ema(price, m.fast)
        slow = emas[m.slow] if m.slow in emas else ema(price, m.slow)
        out["macd"], out["macd_signal"], out["macd_hist"] = macd_signal(fast, slow, m.slow, m.signal)
    if spec.bollinger is not None:
        b = spec.bollinger
        mean = window(b.period) / b.period
        deviation = b.deviations * band_deviation(price, mean, b.period)
        out["bb_upper"], out["bb_middle"], out["bb_lower"] = mean + deviation, mean, mean - deviation
    if spec.vwap:
        volumes = np.zeros(size) if volume is None else np.ascontiguousarray(volume, dtype=np.float64)
        days = np.zeros(size, dtype=np.int64) if day is None else np.ascontiguousarray(day, dtype=np.int64)
        out["vwap"] = vwap(price, volumes, days)
    return {name: out[name] for name in spec.names()}
