"""The node graph computes the classic indicators bit for bit like IndicatorEngine (one definition, two layouts).

Both the tick path (``on_tick``) and the candle path (``on_candle``, VWAP anchored at the candle's
open day) are held to the engine on hypothesis series with random indicator sets, spikes and
UTC midnights. Exact equality, not a tolerance: the nodes use the engine's operation order.
"""

from __future__ import annotations

import math
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.core.indicators import BollingerSpec, IndicatorEngine, IndicatorSpec, MacdSpec
from processors.core.strategies.builtin import indicator_outputs
from processors.core.strategies.engine import ClosedCandle, CompiledStrategies
from processors.core.timeutil import DAY_US

MINUTE_US = 60_000_000


@st.composite
def specs(draw: st.DrawFn) -> IndicatorSpec:
    if draw(st.booleans()):
        return IndicatorSpec()
    fast = draw(st.integers(1, 15))
    return IndicatorSpec(
        sma=tuple(draw(st.lists(st.integers(1, 200), max_size=3, unique=True))),
        ema=tuple(draw(st.lists(st.integers(1, 40), max_size=2, unique=True))),
        rsi=tuple(draw(st.lists(st.integers(1, 30), max_size=2, unique=True))),
        macd=draw(st.none() | st.just(MacdSpec(fast, draw(st.integers(fast + 1, 35)), draw(st.integers(1, 12))))),
        bollinger=draw(st.none() | st.builds(BollingerSpec, st.integers(1, 150), st.sampled_from([1.0, 2.0, 2.5]))),
        vwap=draw(st.booleans()),
    )


@st.composite
def series(draw: st.DrawFn) -> list[tuple[int, float, float]]:
    """(event time µs, price, volume) rows: walks, spikes, flat stretches, ×100 jumps, midnights."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    grid = draw(st.sampled_from([0.01, 1e-8]))
    price = draw(st.sampled_from([64_000.0, 150.0, 0.0005]))
    rows, ts = [], 19_000 * DAY_US + DAY_US - 30 * MINUTE_US
    for _ in range(draw(st.integers(1, 700))):
        kind = rng.random()
        if kind < 0.02:
            value = price * rng.choice((0.01, 100.0))
        else:
            if kind < 0.8:
                price *= math.exp(rng.gauss(0.0, 0.003))
            value = price
        value = max(grid, round(value / grid) * grid)
        ts += rng.choice((MINUTE_US // 4, MINUTE_US, 7 * MINUTE_US))
        rows.append((ts, value, 0.0 if rng.random() < 0.3 else round(rng.lognormvariate(0, 1), 6)))
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), rows=series())
def test_nodes_equal_the_engine_bit_for_bit_on_ticks(spec: IndicatorSpec, rows: list[tuple[int, float, float]]) -> None:
    engine = IndicatorEngine(spec)
    engine_state = engine.new_state()
    compiled = CompiledStrategies((), candle_timeframes=(), outputs={"tick": indicator_outputs(spec)})
    state = compiled.new_state("TEST")
    for ts, price, volume in rows:
        expected = engine.update(engine_state, price, volume, ts // DAY_US)
        compiled.on_tick(state, ts, price, volume)
        got = compiled.values(state, "tick")
        assert list(got) == list(engine.names)
        assert list(got.values()) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), rows=series())
def test_nodes_equal_the_engine_bit_for_bit_on_candles(spec: IndicatorSpec,
                                                         rows: list[tuple[int, float, float]]) -> None:
    engine = IndicatorEngine(spec)
    engine_state = engine.new_state()
    compiled = CompiledStrategies((), candle_timeframes=("5m",), outputs={"5m": indicator_outputs(spec, "5m")})
    state = compiled.new_state("TEST")
    for ts, price, volume in rows:  # one candle per row: open/high/low around the close
        start = ts - ts % (5 * MINUTE_US)
        expected = engine.update(engine_state, price, volume, start // DAY_US)
        compiled.on_candle(state, ClosedCandle("5m", start, start + 5 * MINUTE_US, price, price * 1.01,
                                               price * 0.99, price, volume))
        assert list(compiled.values(state, "5m").values()) == expected
