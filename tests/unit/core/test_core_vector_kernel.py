"""The vectorized kernel (processors/core/vector) equals the O(1) engine and rule engine.

- EMA, RSI, MACD (line, signal, histogram) and VWAP: bit-identical (the kernel's loops are the
  engine's recurrences in the same operation order, compiled without fused multiply-add).
- SMA and Bollinger bands: within 1e-9 relative of the engine's value (the Bollinger scale is
  |mean| + k·σ, as in test_core_indicator_talib.py: a lower band can sit near 0).
- Signals: identical — the same rules fire with the same side at the same evaluations, ties
  included (the rules read only the bit-identical indicators).

On hypothesis series (walks, flat stretches, spikes, jumps, UTC midnights, missing volume) and on
one 1,000,000-tick series with all of those.
"""

from __future__ import annotations

import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.core.indicators import BollingerSpec, IndicatorEngine, IndicatorSpec
from processors.core.rules import EmaCross, RsiReversal, RuleEngine, RuleSpec, SeedRsiEma
from processors.core.vector import indicators as kernel
from processors.core.vector import rules as vector_rules
from tests.unit.core.test_core_indicator_talib import price_series, specs

EXACT = ("ema_", "rsi_", "macd", "vwap")


def run_engine(spec: IndicatorSpec, rule_spec: RuleSpec, prices: list[float], volumes: list[float],
               days: list[int]) -> tuple[dict[str, np.ndarray], list[list[tuple[str, str]]]]:
    engine = IndicatorEngine(spec)
    state = engine.new_state()
    rules = RuleEngine(rule_spec, engine.names)
    rule_state = rules.new_state()
    rows, fired = [], []
    for price, volume, day in zip(prices, volumes, days, strict=True):
        values = engine.update(state, price, volume, day)
        rows.append(values)
        fired.append(rules.evaluate(rule_state, values, price))
    columns = {name: np.array([np.nan if row[i] is None else row[i] for row in rows])
               for i, name in enumerate(engine.names)}
    return columns, fired


def kernel_fired(rule_spec: RuleSpec, values: dict[str, np.ndarray], prices: np.ndarray) -> list[list[tuple[str, str]]]:
    arrays = vector_rules.evaluate(rule_spec, values, prices)
    fired: list[list[tuple[str, str]]] = [[] for _ in range(len(prices))]
    for item in arrays:
        for index in np.flatnonzero(item.mask):
            fired[index].append((item.rule, item.side))
    # the engine's order within one evaluation is the order of ``arrays``; appending array by array keeps it
    return fired


def assert_kernel_equals_engine(spec: IndicatorSpec, rule_spec: RuleSpec, prices: list[float],
                                volumes: list[float], days: list[int]) -> None:
    reference, reference_fired = run_engine(spec, rule_spec, prices, volumes, days)
    price_array = np.array(prices)
    ours = kernel.compute(spec, price_array, np.array(volumes), np.array(days, dtype=np.int64))
    assert list(ours) == list(reference)
    bands = None
    if spec.bollinger is not None:
        middle = reference["bb_middle"]
        bands = np.abs(middle) + (reference["bb_upper"] - middle)
    for name, expected in reference.items():
        got = ours[name]
        assert np.array_equal(np.isnan(got), np.isnan(expected)), f"{name}: defined at different points"
        defined = ~np.isnan(expected)
        if name.startswith(EXACT):
            assert np.array_equal(got[defined], expected[defined]), name  # same bits
            continue
        scale = bands if name.startswith("bb_") and bands is not None else np.abs(expected)
        error = np.abs(got[defined] - expected[defined])
        assert np.all(error <= 1e-9 * scale[defined]), (name, float(np.max(error / scale[defined])))
    assert kernel_fired(rule_spec, ours, price_array) == reference_fired


@st.composite
def rule_specs(draw: st.DrawFn, spec: IndicatorSpec) -> RuleSpec:
    """Rules that refer to indicators of ``spec`` (thresholds drawn, sometimes on price-grid-like values)."""
    oversold = draw(st.sampled_from([20.0, 30.0, 45.0, 50.0]))
    overbought = draw(st.sampled_from([50.0, 55.0, 70.0, 80.0]))
    emas = spec.ema
    return RuleSpec(
        rsi_reversal=RsiReversal(spec.rsi[0], oversold, overbought) if spec.rsi else None,
        ema_cross=EmaCross(min(emas), max(emas)) if len(emas) == 2 else None,
        macd_cross=None if spec.macd is None else RuleSpec().macd_cross,
        seed_rsi_ema=SeedRsiEma(spec.rsi[0], emas[0], oversold, overbought) if spec.rsi else None,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prices=price_series(), spec=specs(), data=st.data())
def test_kernel_equals_engine_on_hypothesis_series(prices: list[float], spec: IndicatorSpec,
                                                   data: st.DataObject) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    volumes = [0.0 if rng.random() < 0.2 else round(rng.lognormvariate(0, 1), 6) for _ in prices]
    days, day = [], 19_000
    for _ in prices:
        day += rng.random() < 0.02
        days.append(day)
    assert_kernel_equals_engine(spec, data.draw(rule_specs(spec)), prices, volumes, days)


def test_kernel_equals_engine_on_flat_series_ties() -> None:
    """A flat market: every EMA difference is exactly 0 (ties), RSI 50, σ 0; nothing fires, as in the engine."""
    prices = [100.0] * 300 + [100.01, 100.0] * 100 + [100.0] * 200
    assert_kernel_equals_engine(IndicatorSpec(), RuleSpec(), prices, [1.0] * len(prices), [19_000] * len(prices))


def million_tick_series(size: int = 1_000_000, seed: int = 17) -> tuple[list[float], list[float], list[int]]:
    """A BTC-like series with flat stretches, one-tick spikes, jumps, volume-less ticks and ~12 UTC midnights."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 3e-4, size)
    flat = np.zeros(size, dtype=bool)
    for start in rng.integers(0, size - 5_000, 60):
        flat[start : start + rng.integers(50, 5_000)] = True
    steps[flat] = 0.0
    steps[rng.integers(0, size, 40)] += rng.choice([-0.3, 0.3], 40)  # jumps
    prices = np.round(64_000.0 * np.exp(np.cumsum(steps)), 2)
    spikes = rng.integers(0, size, 200)
    prices[spikes] = np.round(prices[spikes] * rng.choice([0.01, 100.0], 200), 2)  # one-tick spikes
    volumes = np.where(rng.random(size) < 0.1, 0.0, np.round(rng.lognormal(0.0, 1.0, size), 6))
    days = (19_000 + np.arange(size) // 86_400).astype(np.int64)  # one tick a second
    return prices.tolist(), volumes.tolist(), days.tolist()


def test_kernel_equals_engine_on_a_million_ticks() -> None:
    prices, volumes, days = million_tick_series()
    spec = IndicatorSpec(sma=(20, 50), ema=(9, 21, 12, 26), rsi=(14,), bollinger=BollingerSpec(20, 2.0))
    rules = RuleSpec(ema_cross=EmaCross(9, 21))
    assert_kernel_equals_engine(spec, rules, prices, volumes, days)
