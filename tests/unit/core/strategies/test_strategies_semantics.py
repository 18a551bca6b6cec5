"""The compiled engine against the reference evaluator (the language's definition, written directly).

Random conditions over every IR node kind — arithmetic, division, comparisons, strict and/or/not,
``x[k]``, crosses, rising/falling — with random confirm and cooldown, on tick series whose VWAP
becomes undefined again at each UTC midnight without volume (definedness that comes and goes).
"""

from __future__ import annotations

import math
import random

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from strategies_support import Reference, compile_text, expressions, reference_fires

from processors.core.indicators import IndicatorEngine, IndicatorSpec
from processors.core.strategies import ir
from processors.core.strategies.engine import CompiledStrategies
from processors.core.timeutil import DAY_US

TICK = ir.TICK
LEAVES: list[ir.PriceField | ir.Indicator] = [
    ir.PriceField("close", TICK), ir.PriceField("high", TICK), ir.PriceField("volume", TICK),
    ir.Indicator("sma", (3,), None, TICK), ir.Indicator("ema", (2,), None, TICK), ir.Indicator("rsi", (2,), None, TICK),
    ir.Indicator("vwap", (), None, TICK),
]
ENGINE_NAMES = {"sma(3)": "sma_3", "ema(2)": "ema_2", "rsi(2)": "rsi_2", "vwap()": "vwap"}
NUMBERS, CONDITIONS = expressions(LEAVES)


@st.composite
def tick_rows(draw: st.DrawFn) -> list[tuple[int, float, float]]:
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    price, ts, rows = 100.0, 19_000 * DAY_US + DAY_US - 40_000_000, []
    for _ in range(draw(st.integers(1, 120))):
        if rng.random() < 0.7:
            price = round(price * math.exp(rng.gauss(0, 0.01)), 2)
        ts += rng.choice((1_000_000, 5_000_000, 20_000_000))
        rows.append((ts, price, 0.0 if rng.random() < 0.5 else 1.0))
    return rows


def leaf_series(rows: list[tuple[int, float, float]]) -> dict[str, list[float | None]]:
    engine = IndicatorEngine(IndicatorSpec(sma=(3,), ema=(2,), rsi=(2,), macd=None, bollinger=None, vwap=True))
    state = engine.new_state()
    series: dict[str, list[float | None]] = {"close": [], "high": [], "volume": [], **{k: [] for k in ENGINE_NAMES}}
    for ts, price, volume in rows:
        values = dict(zip(engine.names, engine.update(state, price, volume, ts // DAY_US), strict=True))
        series["close"].append(price)
        series["high"].append(price)
        series["volume"].append(volume)
        for text, name in ENGINE_NAMES.items():
            series[text].append(values[name])
    return series


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=tick_rows(), buy=CONDITIONS, sell=CONDITIONS, confirm=st.integers(1, 3),
       cooldown_s=st.sampled_from([0, 0, 10, 60]))
def test_engine_equals_the_reference(rows: list[tuple[int, float, float]], buy: ir.Condition, sell: ir.Condition,
                                     confirm: int, cooldown_s: int) -> None:
    definition = ir.StrategyDefinition("random", TICK, buy, sell, confirm=confirm, cooldown_ms=cooldown_s * 1000)
    other = ir.StrategyDefinition("plain", TICK, sell, buy)  # a second strategy sharing nodes and history
    compiled = CompiledStrategies((definition, other), candle_timeframes=())
    state = compiled.new_state("TEST")
    fired: list[tuple[int, str, str]] = []
    for t, (ts, price, volume) in enumerate(rows):
        fired += [(t, f.strategy.name, f.side) for f in compiled.on_tick(state, ts, price, volume)]

    series = leaf_series(rows)
    reference = Reference(lambda leaf, t: series[leaf.name if isinstance(leaf, ir.PriceField)
                                                 else ir.series_text(leaf, TICK)][t])
    times = [ts for ts, _, _ in rows]
    expected: list[tuple[int, str, str]] = []
    for name, strategy_confirm, cooldown_us, sides in (
            ("random", confirm, cooldown_s * 1_000_000, (("BUY", buy), ("SELL", sell))),
            ("plain", 1, 0, (("BUY", sell), ("SELL", buy)))):
        for side, condition in sides:
            results = [reference.value(condition, t) for t in range(len(rows))]
            expected += [(t, name, side) for t in reference_fires(results, times, strategy_confirm, cooldown_us)]
    order = {("random", "BUY"): 0, ("random", "SELL"): 1, ("plain", "BUY"): 2, ("plain", "SELL"): 3}
    event("some side fired" if expected else "nothing fired")
    assert fired == sorted(expected, key=lambda item: (item[0], order[(item[1], item[2])]))


def run(compiled: CompiledStrategies, prices: list[float], symbol: str = "BTC-USD",
        step_us: int = 1_000_000) -> list[tuple[int, str, str]]:
    state = compiled.new_state(symbol)
    fired = []
    for t, price in enumerate(prices):
        fired += [(t, f.strategy.name, f.side) for f in compiled.on_tick(state, t * step_us, price, 1.0)]
    return fired


def test_a_side_fires_on_the_transition_from_false_to_true() -> None:
    compiled = compile_text('[strategies.s]\nbuy = "close > 10"\nsell = "close < 5"')
    assert run(compiled, [11, 9, 11, 12, 4, 3, 9, 11]) == [(2, "s", "BUY"), (4, "s", "SELL"), (7, "s", "BUY")]


def test_an_undefined_operand_makes_the_whole_condition_undefined() -> None:
    # No short-circuit: while sma(3) warms up, "close > 100 or sma(3) > 0" is undefined, not true,
    # and "close > 100 and sma(3) > 0" is undefined, not false — so neither fires on the third tick.
    compiled = compile_text('[strategies.either]\nbuy = "close > 100 or sma(3) > 0"\n'
                            '[strategies.both]\nbuy = "close > 100 and sma(3) > 0"')
    assert run(compiled, [200, 200, 200, 200]) == []
    assert run(compiled, [50, 50, 200, 50, 200]) == [(4, "both", "BUY")]


def test_division_by_zero_is_undefined() -> None:
    compiled = compile_text('[strategies.s]\nbuy = "1 / (close - 10) > 0"')
    # 9: false; 10: undefined (neither fires nor counts as false); 11: true but the last evaluation was undefined.
    assert run(compiled, [9, 10, 11, 9, 11]) == [(4, "s", "BUY")]


def test_confirm_needs_n_consecutive_evaluations_after_a_false_one() -> None:
    compiled = compile_text('[strategies.s]\nbuy = "close > 10"\nconfirm = 3')
    assert run(compiled, [9, 11, 11, 11, 11, 9, 11, 11, 9, 11, 11, 11]) == [(3, "s", "BUY"), (11, "s", "BUY")]


def test_cooldown_is_per_symbol_and_side_in_event_time() -> None:
    compiled = compile_text('[strategies.s]\nbuy = "close > 10"\nsell = "close < 10"\ncooldown = "10s"')
    prices = [9, 11, 9, 11, 9, 11, 9, 11, 9, 11, 9, 11, 9, 11]  # one tick per 2 s: a transition every tick
    fired = run(compiled, prices, step_us=2_000_000)
    buys = [t for t, _, side in fired if side == "BUY"]
    sells = [t for t, _, side in fired if side == "SELL"]
    assert buys == [1, 7, 13]  # 12 s apart: the suppressed ones in between do not restart the cooldown
    assert sells == [2, 8]
    assert run(compiled, prices, symbol="ETH-USD", step_us=2_000_000) == fired  # another symbol: its own cooldown


def test_history_crosses_and_trends() -> None:
    compiled = compile_text(
        '[strategies.cross]\nbuy = "crosses_above(close, 10)"\nsell = "crosses_below(close, 10)"\n'
        '[strategies.back]\nbuy = "close[2] > 10"\n'
        '[strategies.trend]\nbuy = "rising(close, 2)"\nsell = "falling(close, 2)"')
    fired = run(compiled, [9, 10, 11, 12, 11, 9, 8, 9, 10])
    # crosses_above(close, 10) = close[1] <= 10 and close > 10: at 2 (10 → 11); crosses_below at 5 (11 → 9).
    assert [(t, side) for t, name, side in fired if name == "cross"] == [(2, "BUY"), (5, "SELL")]
    # close[2] > 10 is undefined at 0 and 1, false at 2 (9), true at 3 (10? no: 10 > 10 is false) and 4 (11).
    assert [(t, side) for t, name, side in fired if name == "back"] == [(4, "BUY")]
    # rising(close, 2): close above each of the last 2; first defined at 2 (true, but 1 was undefined).
    assert [(t, side) for t, name, side in fired if name == "trend"] == [(5, "SELL"), (8, "BUY")]


def test_symbols_limit_where_a_strategy_runs() -> None:
    compiled = compile_text('[strategies.eth]\nbuy = "close > 10"\nsymbols = ["eth/usd"]\n'
                            '[strategies.all]\nbuy = "close > 10"')
    assert {name for _, name, _ in run(compiled, [9, 11], symbol="ETH-USD")} == {"eth", "all"}
    assert {name for _, name, _ in run(compiled, [9, 11], symbol="BTC-USD")} == {"all"}


def test_equal_indicators_share_one_state_and_values_are_named() -> None:
    compiled = compile_text('[strategies.a]\nbuy = "ema(12) > ema(26)"\n'
                            '[strategies.b]\nbuy = "crosses_above(close, ema(12)) and stoch(14, 3, 3).k < 20"')
    plan = compiled.plan("BTC-USD")
    nodes = [region.key for region in plan.regions if not region.key.startswith(("side|", "tick|bar", "tick|past"))]
    assert nodes.count("tick|ema(12,close)") == 1
    assert compiled.columns("BTC-USD", "tick") == ("ema_12", "ema_26", "stoch_14_3_3_k")
