"""Property tests: our engine against TA-Lib (the reference) and exact rational arithmetic.

Tolerances (also in docs/core.md):
- SMA, EMA, VWAP: relative 1e-9 of the value.
- Bollinger bands (mean ± k·σ): 1e-9 × (|mean| + k·σ), the magnitudes a band is computed
  from; a lower band can sit near 0, where a tolerance relative to its own value is meaningless.
- RSI (a 0–100 quantity): absolute 1e-9.
- MACD, signal, histogram (differences of price-level EMAs, often near 0): absolute
  1e-9 × the larger of the two EMAs at that point.
- SMA and Bollinger: ours is additionally within 1e-10 (same scales) of the exact value
  computed with fractions; where TA-Lib differs from ours by more than 1e-9 it must be
  TA-Lib that is farther from the exact value (TA-Lib keeps a running sum and a running
  sum of squares, which lose digits after spikes and at high price levels).
- The contract's RSI is 50 when average gain and loss are both 0 (flat start); TA-Lib
  returns 0 there. That is the only special case.
- MACD: TA-Lib's MACD function seeds the fast EMA in line with the slow one, so we
  compare with talib.EMA(fast) − talib.EMA(slow) and talib.EMA over the defined macd values.

TA-Lib is a test-only dependency; the engine never imports it.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.core.indicators import BollingerSpec, IndicatorEngine, IndicatorSpec, MacdSpec

LEVELS = {"btc": (64_000.0, 0.01), "stock": (150.0, 0.01), "subcent": (0.000_5, 1e-8)}
TALIB_WORSE: list[tuple[str, float, float]] = []  # (indicator, |talib − exact|, |ours − exact|), for the docs


@st.composite
def price_series(draw: st.DrawFn) -> list[float]:
    """Realistic and nasty series: walks, flat start, flat stretches, one-tick spikes, jumps, on a price grid."""
    level, grid = LEVELS[draw(st.sampled_from(sorted(LEVELS)))]
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    price = level * draw(st.floats(0.5, 2.0))
    prices = [price] * draw(st.integers(0, 40))  # flat start
    segments = draw(st.lists(st.tuples(st.sampled_from(["walk", "walk", "flat", "spike", "jump", "noise"]),
                                       st.integers(1, 50)), min_size=1, max_size=8))
    for kind, length in segments:
        for _ in range(length if kind != "spike" else 1):
            if kind == "walk":
                price *= math.exp(rng.gauss(0.0, 0.003))
            elif kind == "jump":
                price *= rng.choice((0.7, 1.4))
            elif kind == "noise":
                price += rng.choice((-grid, grid))
            if kind == "spike":
                prices.append(max(grid, round(price * rng.choice((0.01, 100.0)) / grid) * grid))
            else:
                price = max(grid, round(price / grid) * grid)
                prices.append(price)
    return prices


@st.composite
def specs(draw: st.DrawFn) -> IndicatorSpec:
    if draw(st.booleans()):
        return IndicatorSpec()
    fast = draw(st.integers(2, 15))
    return IndicatorSpec(
        sma=tuple(draw(st.lists(st.integers(2, 60), min_size=1, max_size=2, unique=True))),
        ema=tuple(draw(st.lists(st.integers(2, 40), min_size=1, max_size=2, unique=True))),
        rsi=(draw(st.integers(2, 30)),),
        macd=MacdSpec(fast, draw(st.integers(fast + 1, 35)), draw(st.integers(2, 12))),
        bollinger=BollingerSpec(draw(st.integers(2, 40)), draw(st.sampled_from([1.0, 2.0, 2.5]))),
        vwap=True,
    )


def run_engine(spec: IndicatorSpec, prices: list[float], volumes: list[float], days: list[int]) -> dict[str, np.ndarray]:
    engine = IndicatorEngine(spec)
    state = engine.new_state()
    rows = [engine.update(state, p, v, d) for p, v, d in zip(prices, volumes, days, strict=True)]
    return {name: np.array([np.nan if row[i] is None else row[i] for row in rows])
            for i, name in enumerate(engine.names)}


def check_relative(name: str, ours: np.ndarray, reference: np.ndarray, tolerance: float = 1e-9) -> None:
    assert np.array_equal(np.isnan(ours), np.isnan(reference)), f"{name}: defined at different points"
    defined = ~np.isnan(reference)
    error = np.abs(ours[defined] - reference[defined])
    assert np.all(error <= tolerance * np.abs(reference[defined])), (name, float(np.max(error)))


def check_against_exact(name: str, ours: np.ndarray, reference: np.ndarray, exact: np.ndarray,
                        scale: np.ndarray) -> None:
    """Ours within 1e-10·scale of exact; within 1e-9·scale of TA-Lib unless TA-Lib is the less accurate side."""
    assert np.array_equal(np.isnan(ours), np.isnan(reference)), f"{name}: defined at different points"
    for i in np.flatnonzero(~np.isnan(reference)):
        ours_error = abs(ours[i] - exact[i])
        assert ours_error <= 1e-10 * scale[i], (name, i, ours[i], exact[i])
        if abs(ours[i] - reference[i]) > 1e-9 * scale[i]:
            talib_error = abs(reference[i] - exact[i])
            assert talib_error > ours_error, (name, i, ours[i], reference[i], exact[i])
            TALIB_WORSE.append((name, talib_error / scale[i], ours_error / scale[i]))


def exact_window_stats(prices: list[float], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and population σ of every full window (fractions; σ correctly rounded)."""
    means = np.full(len(prices), np.nan)
    sigmas = np.full(len(prices), np.nan)
    exact = [Fraction(p) for p in prices]
    for i in range(n - 1, len(prices)):
        window = exact[i - n + 1 : i + 1]
        mean = sum(window, Fraction(0)) / n
        variance = sum(((x - mean) ** 2 for x in window), Fraction(0)) / n
        means[i] = float(mean)
        sigmas[i] = math.sqrt(float(variance))
    return means, sigmas


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prices=price_series(), spec=specs(), data=st.data())
def test_engine_equals_talib_and_exact_arithmetic(prices: list[float], spec: IndicatorSpec, data: st.DataObject) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1)))  # noqa: S311
    volumes = [0.0 if rng.random() < 0.2 else round(rng.lognormvariate(0, 1), 6) for _ in prices]
    days, day = [], 19_000
    for _ in prices:
        day += rng.random() < 0.02  # a UTC midnight now and then
        days.append(day)
    ours = run_engine(spec, prices, volumes, days)
    close = np.array(prices)

    for n in spec.sma:
        exact_mean, _ = exact_window_stats(prices, n)
        check_against_exact(f"sma_{n}", ours[f"sma_{n}"], talib.SMA(close, n), exact_mean, np.abs(exact_mean))
    for n in spec.ema:
        check_relative(f"ema_{n}", ours[f"ema_{n}"], talib.EMA(close, n))
    for n in spec.rsi:
        reference = talib.RSI(close, n)
        flat_start = np.array([all(p == prices[0] for p in prices[: i + 1]) for i in range(len(prices))])
        defined = ~np.isnan(reference)
        assert np.array_equal(np.isnan(ours[f"rsi_{n}"]), ~defined)
        # Contract: 50 when average gain and loss are both 0 (only on a flat start); TA-Lib says 0.
        assert np.all(ours[f"rsi_{n}"][defined & flat_start] == 50.0)
        assert np.all(reference[defined & flat_start] == 0.0)
        moving = defined & ~flat_start
        assert np.all(np.abs(ours[f"rsi_{n}"][moving] - reference[moving]) <= 1e-9)
    if spec.macd is not None:
        m = spec.macd
        fast, slow = talib.EMA(close, m.fast), talib.EMA(close, m.slow)
        macd = fast - slow
        signal = np.full(len(prices), np.nan)
        if len(prices) >= m.slow:
            signal[m.slow - 1 :] = talib.EMA(macd[m.slow - 1 :], m.signal)
        scale = np.fmax(np.abs(fast), np.abs(slow))
        for name, reference in (("macd", macd), ("macd_signal", signal), ("macd_hist", macd - signal)):
            assert np.array_equal(np.isnan(ours[name]), np.isnan(reference)), name
            defined = ~np.isnan(reference)
            assert np.all(np.abs(ours[name][defined] - reference[defined]) <= 1e-9 * scale[defined]), name
    if spec.bollinger is not None:
        b = spec.bollinger
        upper, middle, lower = talib.BBANDS(close, b.period, b.deviations, b.deviations, 0)
        exact_mean, exact_sigma = exact_window_stats(prices, b.period)
        # A band is mean ± k·σ: its error scale is |mean| + k·σ (a lower band may sit near 0).
        scale = np.abs(exact_mean) + b.deviations * exact_sigma
        check_against_exact("bb_middle", ours["bb_middle"], middle, exact_mean, scale)
        check_against_exact("bb_upper", ours["bb_upper"], upper, exact_mean + b.deviations * exact_sigma, scale)
        check_against_exact("bb_lower", ours["bb_lower"], lower, exact_mean - b.deviations * exact_sigma, scale)
        ours_sigma = (ours["bb_upper"] - ours["bb_middle"]) / b.deviations
        defined = ~np.isnan(exact_sigma)
        assert np.all(ours_sigma[defined] >= 0.0)
        # σ itself: 1e-9 relative, floored at 1e-12 of the price level (σ of prices that agree to
        # 16 digits is below what a float mean can resolve).
        assert np.all(np.abs(ours_sigma[defined] - exact_sigma[defined])
                      <= 1e-9 * exact_sigma[defined] + 1e-12 * np.abs(exact_mean[defined]))
    # VWAP has no TA-Lib counterpart (anchored at UTC midnight): exact sums per day.
    expected = []
    for i in range(len(prices)):
        today = [j for j in range(i + 1) if days[j] == days[i] and volumes[j] > 0]
        volume = math.fsum(volumes[j] for j in today)
        expected.append(math.fsum(prices[j] * volumes[j] for j in today) / volume if today else np.nan)
    check_relative("vwap", ours["vwap"], np.array(expected), tolerance=1e-12)
