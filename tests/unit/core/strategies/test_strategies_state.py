"""Strategy state: JSON-compatible, exact through JSON text, and a stream split anywhere continues exactly."""

from __future__ import annotations

import json
import math
import random

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_support import compile_text, expressions

from processors.core.plain import StateFormatError
from processors.core.strategies import ir
from processors.core.strategies.engine import ClosedCandle, CompiledStrategies, IncompatibleStrategyStateError

MINUTE = 60_000_000
LEAVES: list[ir.PriceField | ir.Indicator] = [
    ir.PriceField("close", "tick"), ir.Indicator("ema", (3,), None, "tick"), ir.Indicator("rsi", (2,), None, "tick"),
    ir.Indicator("stoch", (3, 2, 2), "k", "tick"), ir.Indicator("sma", (2,), None, "1m"),
    ir.Indicator("adx", (2,), None, "1m"), ir.Indicator("wma", (3,), None, "tick"),
]
_, CONDITIONS = expressions(LEAVES)
TEXT = """
[strategies.trend]
params = { fast = 3, slow = 8 }
buy = "crosses_above(ema(fast), ema(slow)) and rsi(5) < 70 and close > sma(3)@1m"
sell = "crosses_below(ema(fast), ema(slow))"
confirm = 2
cooldown = "30s"

[strategies.levels]
timeframe = "1m"
buy = "close < donchian(4).lower[1] or cci(4) < -100"
sell = "rising(close, 3) and willr(4) > -20"
"""


def events(seed: int, count: int) -> list[tuple[str, tuple[object, ...]]]:
    """Ticks every 7 s with the 1m candles they close (the pipeline's order: candles first)."""
    rng = random.Random(seed)  # noqa: S311 - test data
    price, out, minute = 100.0, [], None
    high = low = opening = closing = price
    volume = 0.0
    for i in range(count):
        ts = i * 7_000_000
        start = ts - ts % MINUTE
        if minute is not None and start != minute:
            out.append(("candle", (ClosedCandle("1m", minute, minute + MINUTE, opening, high, low, closing, volume),)))
        if start != minute:
            minute, opening, high, low, volume = start, price, price, price, 0.0
        price = round(price * math.exp(rng.gauss(0, 0.005)), 2)
        high, low, closing, volume = max(high, price), min(low, price), price, volume + 1.0
        out.append(("tick", (ts, price, 1.0)))
    return out


def play(compiled: CompiledStrategies, state: object, items: list[tuple[str, tuple[object, ...]]]) -> list[object]:
    fired = []
    for kind, arguments in items:
        if kind == "tick":
            fired += compiled.on_tick(state, *arguments)  # type: ignore[arg-type]
        else:
            fired += compiled.on_candles(state, arguments)  # type: ignore[arg-type]
    return [(f.strategy.name, f.side, f.ts_us) for f in fired]  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), split=st.integers(0, 400), buy=CONDITIONS, sell=CONDITIONS)
def test_splitting_anywhere_through_json_text_changes_nothing(seed: int, split: int, buy: ir.Condition,
                                                              sell: ir.Condition) -> None:
    definitions = [*compile_text(TEXT, ("1m",)).strategies]
    extra = ir.StrategyDefinition("random", "tick", buy, sell, confirm=2)
    compiled = CompiledStrategies([*(s.definition for s in definitions), extra], candle_timeframes=("1m",))
    items = events(seed, 400)
    whole_state = compiled.new_state("BTC-USD")
    whole = play(compiled, whole_state, items)

    state = compiled.new_state("BTC-USD")
    first = play(compiled, state, items[:split])
    stored = orjson.loads(orjson.dumps(compiled.dump(state)))
    assert json.loads(json.dumps(stored)) == stored  # plain JSON types only
    resumed = compiled.load("BTC-USD", stored)
    assert first + play(compiled, resumed, items[split:]) == whole
    assert compiled.dump(resumed) == compiled.dump(whole_state)


def test_strict_load_refuses_other_strategies_and_partial_keeps_shared_nodes_warm() -> None:
    compiled = compile_text(TEXT, ("1m",))
    state = compiled.new_state("BTC-USD")
    play(compiled, state, events(1, 300))
    stored = compiled.dump(state)
    grown = compile_text(TEXT + '\n[strategies.extra]\nbuy = "ema(3) > wma(5)"', ("1m",))
    with pytest.raises(IncompatibleStrategyStateError, match="other strategies"):
        grown.load("BTC-USD", stored)
    warm = grown.load("BTC-USD", stored, partial=True)
    # ema(3) is shared with the stored strategies: warm. wma(5) is new: cold until it has 5 prices.
    assert grown.values(warm, "tick")["ema_3"] == compiled.values(state, "tick")["ema_3"] is not None
    assert grown.values(warm, "tick")["wma_5"] is None


@pytest.mark.parametrize(("change", "error"), [
    (lambda plain: plain.update(regions=[]), StateFormatError),
    (lambda plain: plain.update(version=99), IncompatibleStrategyStateError),
    (lambda plain: plain["regions"].update({next(iter(plain["regions"])): ["x"]}), StateFormatError),
    (lambda plain: plain["regions"]["tick|ema(3,close)"].__setitem__(1, "three"), StateFormatError),
    (lambda plain: plain["regions"]["tick|ema(3,close)"].__setitem__(1, True), StateFormatError),
])
def test_malformed_states_fail_loudly(change: object, error: type[Exception]) -> None:
    compiled = compile_text(TEXT, ("1m",))
    state = compiled.new_state("BTC-USD")
    play(compiled, state, events(2, 50))
    plain = compiled.dump(state)
    change(plain)  # type: ignore[operator]
    with pytest.raises(error):
        compiled.load("BTC-USD", plain)


def test_a_state_belongs_to_its_symbol() -> None:
    compiled = compile_text(TEXT, ("1m",))
    with pytest.raises(ValueError, match="used for"):
        compiled.load("ETH-USD", compiled.dump(compiled.new_state("BTC-USD")))
