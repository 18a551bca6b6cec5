"""Numerical care: no drift over 10 million updates, no negative variance, exact after spikes.

The reference is always a fresh exact recomputation (fractions) of the window in question.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import talib

from processors.core.indicators import BollingerSpec, IndicatorEngine, IndicatorSpec

BANDS_ONLY = IndicatorSpec(sma=(), ema=(), rsi=(), macd=None, bollinger=BollingerSpec(20, 2.0), vwap=False)


def exact_variance(window: list[float]) -> Fraction:
    values = [Fraction(x) for x in window]
    mean = sum(values, Fraction(0)) / len(values)
    return sum(((x - mean) ** 2 for x in values), Fraction(0)) / len(values)


def test_rolling_variance_does_not_drift_over_ten_million_updates_at_btc_prices() -> None:
    """10M BTC-level prices with flat stretches, one-cent noise, spikes and level shifts.

    At ~420 sampled points (regular ones and around every regime change) the engine's
    variance of the 20-price window equals a fresh exact recomputation to 1e-11 relative,
    and it is never negative.
    """
    engine = IndicatorEngine(BANDS_ONLY)
    state = engine.new_state()
    update = engine.update
    rng = np.random.default_rng(20240309)
    checked = 0
    worst = 0.0
    for chunk in range(10):
        prices = 64_000.0 * np.exp(np.cumsum(rng.normal(0.0, 2e-4, 1_000_000)))
        base = 100_000 + 7_919 * chunk
        prices[base : base + 400] = prices[base]  # flat stretch
        prices[base + 1000 : base + 1400] = prices[base + 1000] + rng.choice([-0.01, 0.0, 0.01], 400)  # one-cent noise
        prices[base + 2000] *= 10.0  # a one-tick spike
        prices[base + 3000 :] *= 0.5  # a level shift
        series = np.round(prices, 2).tolist()
        checks = sorted(set(range(20, 1_000_000, 25_000)) | {
            base + regime + k for regime in (0, 1000, 2000, 3000) for k in (5, 19, 20, 21, 25, 50, 150, 399)
        })
        done = 0
        for i in checks:
            for price in series[done : i + 1]:
                update(state, price, 0.0, 0)
            done = i + 1
            exact = exact_variance(series[i - 19 : i + 1])
            ours = state.m2 / 20
            assert ours >= 0.0
            assert abs(Fraction(ours) - exact) <= Fraction(1, 10**11) * exact, (chunk, i)
            if exact:
                worst = max(worst, abs(ours - float(exact)) / float(exact))
            checked += 1
        for price in series[done:]:
            update(state, price, 0.0, 0)
        assert state.count == 1_000_000 * (chunk + 1)
    assert checked > 400
    assert worst < 1e-11


def test_flat_window_after_movement_has_exactly_zero_width_bands() -> None:
    engine = IndicatorEngine(BANDS_ONLY)
    state = engine.new_state()
    for price in [64_000.0 + (i % 7) * 13.37 for i in range(100)] + [64_123.45] * 20:
        upper, middle, lower = engine.update(state, price, 0.0, 0)
    assert upper == middle == lower
    assert abs(middle - 64_123.45) <= 1e-14 * 64_123.45


def test_sma_and_bands_are_exact_after_a_huge_spike_leaves_a_sub_cent_window() -> None:
    """A 1e5 spike among 1e-4 prices: a plain running sum keeps ~1e-11 of garbage, we do not."""
    spec = IndicatorSpec(sma=(20,), ema=(), rsi=(), macd=None, bollinger=BollingerSpec(20, 2.0), vwap=False)
    engine = IndicatorEngine(spec)
    state = engine.new_state()
    prices = [0.000_123_45 + 1e-8 * (i % 5) for i in range(60)]
    prices[30] = 100_000.0
    for i, price in enumerate(prices):
        sma, upper, middle, lower = engine.update(state, price, 0.0, 0)
        if i >= 50:  # the spike has left the window
            window = prices[i - 19 : i + 1]
            assert sma == math.fsum(window) / 20
            sigma = math.sqrt(float(exact_variance(window)))
            assert abs(upper - (middle + 2 * sigma)) <= 1e-12 * middle
            assert abs(lower - (middle - 2 * sigma)) <= 1e-12 * middle
    # TA-Lib keeps a running sum without resynchronisation: the spike leaves a residue in its
    # SMA and hence in its Bollinger middle and bands (its σ itself stays exact here).
    exact_mean = math.fsum(prices[-20:]) / 20
    upper, middle, _ = talib.BBANDS(np.array(prices), 20, 2.0, 2.0, 0)
    assert abs(talib.SMA(np.array(prices), 20)[-1] - exact_mean) > 1e-9 * exact_mean
    assert abs(middle[-1] - exact_mean) > 1e-9 * exact_mean
    assert talib.STDDEV(np.array(prices), 20, 1.0)[-1] == math.sqrt(float(exact_variance(prices[-20:])))


def test_rsi_of_tiny_moves_is_a_real_ratio_not_a_special_case() -> None:
    """Average gain/loss far below 1e-14 (sub-satoshi moves) still give 100·G/(G+L) exactly."""
    spec = IndicatorSpec(sma=(), ema=(), rsi=(3,), macd=None, bollinger=None, vwap=False)
    engine = IndicatorEngine(spec)
    state = engine.new_state()
    prices = [1e-4, 1e-4 + 3e-17, 1e-4 + 1e-17, 1e-4 + 2e-17]
    for price in prices:
        rsi = engine.update(state, price, 0.0, 0)[0]
    changes = [Fraction(b) - Fraction(a) for a, b in zip(prices, prices[1:], strict=False)]
    gain = sum((c for c in changes if c > 0), Fraction(0))
    loss = -sum((c for c in changes if c < 0), Fraction(0))
    assert rsi is not None and abs(rsi - float(100 * gain / (gain + loss))) < 1e-9
    assert abs(talib.RSI(np.array(prices), 3)[-1] - rsi) < 1e-9  # TA-Lib agrees here


def test_vwap_over_a_million_ticks_equals_exact_sums() -> None:
    engine = IndicatorEngine(IndicatorSpec(sma=(), ema=(), rsi=(), macd=None, bollinger=None, vwap=True))
    state = engine.new_state()
    rng = np.random.default_rng(7)
    prices = np.round(64_000 * np.exp(np.cumsum(rng.normal(0, 2e-4, 1_000_000))), 2).tolist()
    volumes = np.round(rng.lognormal(0, 1, 1_000_000), 6).tolist()
    for price, volume in zip(prices, volumes, strict=True):
        vwap = engine.update(state, price, volume, 7)[0]
    exact = math.fsum(p * v for p, v in zip(prices, volumes, strict=True)) / math.fsum(volumes)
    assert vwap is not None and abs(vwap - exact) <= 1e-12 * exact
