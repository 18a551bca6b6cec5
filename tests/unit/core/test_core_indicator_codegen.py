"""IndicatorEngine.update (generated for the spec) equals reference_update (the loops) bit for bit, state included."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.core.indicators import BollingerSpec, IndicatorEngine, IndicatorSpec, MacdSpec

DAY_US = 86_400_000_000


@st.composite
def specs(draw: st.DrawFn) -> IndicatorSpec:
    periods = st.lists(st.integers(1, 40), unique=True, max_size=3).map(tuple)
    fast = draw(st.integers(1, 20))
    macd = draw(st.none() | st.builds(MacdSpec, st.just(fast), st.integers(fast + 1, 40), st.integers(1, 12)))
    bands = draw(st.none() | st.builds(BollingerSpec, st.integers(1, 40), st.sampled_from([0.5, 1, 2.0, 2.5])))
    return IndicatorSpec(sma=draw(periods), ema=draw(periods), rsi=draw(periods), macd=macd, bollinger=bands,
                         vwap=draw(st.booleans()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), seed=st.integers(0, 2**32 - 1), count=st.integers(1, 400))
def test_generated_update_equals_the_reference(spec: IndicatorSpec, seed: int, count: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data
    engine = IndicatorEngine(spec)
    ours, reference = engine.new_state(), engine.new_state()
    price, ts = 100.0, 19_000 * DAY_US
    for _ in range(count):  # flat runs, spikes (cancellation), BTC-level prices, days without volume
        roll = rng.random()
        price = price if roll < 0.2 else price * 1000.0 if roll < 0.22 else round(price * rng.uniform(0.97, 1.03), 2)
        if price > 1e6:
            price = 64_000.0
        ts += rng.choice((1_000_000, 3_600_000_000))
        volume = 0.0 if rng.random() < 0.3 else rng.uniform(0.0, 5.0)
        got = engine.update(ours, price, volume, ts // DAY_US)
        expected = engine.reference_update(reference, price, volume, ts // DAY_US)
        assert repr(got) == repr(expected)
    assert repr(engine.dump(ours)) == repr(engine.dump(reference))


def test_the_generated_update_is_shared_and_has_no_builtins() -> None:
    first, second = IndicatorEngine(IndicatorSpec()), IndicatorEngine(IndicatorSpec())
    assert first.update is second.update  # compiled once per distinct spec
    assert first.update.__globals__["__builtins__"] == {}  # type: ignore[attr-defined]
    assert IndicatorEngine(IndicatorSpec(sma=(5,))).update is not first.update


@pytest.mark.parametrize("spec", [IndicatorSpec(sma=(), ema=(), rsi=(), macd=None, bollinger=None, vwap=False),
                                  IndicatorSpec(sma=(), ema=(), rsi=(), macd=None, bollinger=None, vwap=True)])
def test_small_specs(spec: IndicatorSpec) -> None:
    engine = IndicatorEngine(spec)
    state = engine.new_state()
    assert engine.update(state, 10.0, 1.0, 0) == engine.reference_update(engine.new_state(), 10.0, 1.0, 0)


@settings(max_examples=30, deadline=None)
@given(spec=specs())
def test_named_is_dict_of_zip_strict(spec: IndicatorSpec) -> None:
    engine = IndicatorEngine(spec)
    values = engine.update(engine.new_state(), 10.0, 1.0, 0)
    named = engine.named(values)
    assert named == dict(zip(engine.names, values, strict=True)) and list(named) == list(engine.names)
    for wrong in (values[:-1], [*values, 1.0]) if values else ([1.0],):
        with pytest.raises(ValueError, match="unpack"):
            engine.named(wrong)
