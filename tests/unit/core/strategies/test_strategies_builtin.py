"""The built-in strategies reproduce today's rules exactly: signal for signal, on tick and on 1m candles.

1. 100 000 ticks through today's pipeline (``SymbolProcessor``: rules on ``tick`` and on 1m candles)
   and through the compiled built-ins fed the same ticks and the candles the pipeline closed:
   the same signals (timeframe, rule, side, event time, price), in the same order.
2. Hypothesis: random periods and thresholds (what a strategy file's ``[rules]`` may set) through
   ``RuleEngine`` and ``builtin_strategies(rules, macd)``.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.core.indicators import IndicatorEngine, IndicatorSpec, MacdSpec
from processors.core.pipeline import PipelineConfig, SymbolProcessor
from processors.core.rules import EmaCross, MacdCross, RsiReversal, RuleEngine, RuleSpec, SeedRsiEma
from processors.core.strategies.builtin import builtin_strategies, indicator_outputs
from processors.core.strategies.engine import ClosedCandle, CompiledStrategies
from processors.core.strategies.file import parse_strategies
from processors.core.timeutil import DAY_US, to_us
from schemas.events import Lineage, Tick
from schemas.instruments import Instrument

START = datetime(2024, 3, 9, 22, 30, tzinfo=UTC)  # crosses a UTC midnight


def ticks(count: int, seed: int) -> list[Tick]:
    rng = random.Random(seed)  # noqa: S311 - test data
    price, found = 64_000.0, []
    for i in range(count):
        price = round(price * math.exp(rng.gauss(0.0, 4e-4)), 2)
        moment = START + timedelta(milliseconds=250 * i)
        volume = None if rng.random() < 0.1 else round(rng.lognormvariate(-3, 1), 6)
        found.append(Tick(symbol="BTC-USD", venue="test", price=price, volume=volume, ts_event=moment, ts_init=moment,
                          source="test", source_id=str(i)))
    return found


def test_builtins_reproduce_the_pipeline_signals_on_100k_ticks() -> None:
    series = ticks(100_000, seed=15)
    processor = SymbolProcessor(PipelineConfig(candle_timeframes=("1m",)), Instrument("BTC-USD", "test"))
    compiled = CompiledStrategies(builtin_strategies(timeframes=("tick", "1m")), candle_timeframes=("1m",))
    state = compiled.new_state("BTC-USD")
    today, ours = [], []
    for offset, tick in enumerate(series):
        out = processor.process(tick, Lineage(topic="ticks", partition=0, offset=offset))
        today += [(s.timeframe, s.rule, s.side, to_us(s.ts_event), s.price) for s in out.signals]
        closed = [ClosedCandle(c.timeframe, to_us(c.ts_open), to_us(c.ts_close), c.open, c.high, c.low, c.close,
                               c.volume) for c in out.candles]
        fired = list(compiled.on_candles(state, closed)) if closed else []
        fired += compiled.on_tick(state, to_us(tick.ts_event), tick.price, tick.volume or 0.0)
        ours += [(f.strategy.timeframe, f.strategy.name, f.side, f.ts_us, f.price) for f in fired]
    assert len(today) > 10_000 and {rule for _, rule, _, _, _ in today} == {
        "rsi_reversal", "ema_cross", "macd_cross", "seed_rsi_ema"}
    assert {timeframe for timeframe, _, _, _, _ in today} == {"tick", "1m"}
    assert ours == today


@st.composite
def rule_specs(draw: st.DrawFn) -> tuple[RuleSpec, MacdSpec]:
    def thresholds() -> tuple[float, float]:
        low = draw(st.floats(1, 60).map(lambda x: round(x, 1)))
        return low, draw(st.floats(low + 1, 99).map(lambda x: round(x, 1)))

    oversold, overbought = thresholds()
    fast = draw(st.integers(1, 20))
    slow = draw(st.integers(fast + 1, 40))
    seed_low, seed_high = thresholds()
    macd_fast = draw(st.integers(1, 15))
    macd = MacdSpec(macd_fast, draw(st.integers(macd_fast + 1, 30)), draw(st.integers(1, 12)))
    rules = RuleSpec(
        rsi_reversal=draw(st.none() | st.just(RsiReversal(draw(st.integers(1, 30)), oversold, overbought))),
        ema_cross=draw(st.none() | st.just(EmaCross(fast, slow))),
        macd_cross=draw(st.none() | st.just(MacdCross())),
        seed_rsi_ema=draw(st.none() | st.just(SeedRsiEma(draw(st.integers(1, 30)), draw(st.integers(1, 30)),
                                                           seed_low, seed_high))),
    )
    return rules, macd


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chosen=rule_specs(), seed=st.integers(0, 2**32 - 1), count=st.integers(1, 1500))
def test_builtins_reproduce_the_rule_engine_for_any_periods_and_thresholds(
        chosen: tuple[RuleSpec, MacdSpec], seed: int, count: int) -> None:
    rules, macd = chosen
    periods = {
        "rsi": {r.period for r in [rules.rsi_reversal] if r} | {s.rsi_period for s in [rules.seed_rsi_ema] if s},
        "ema": {p for e in [rules.ema_cross] if e for p in (e.fast, e.slow)}
               | {s.ema_period for s in [rules.seed_rsi_ema] if s},
    }
    engine = IndicatorEngine(IndicatorSpec(sma=(), ema=tuple(sorted(periods["ema"])), rsi=tuple(sorted(periods["rsi"])),
                                           macd=macd, bollinger=None, vwap=False))
    rule_engine = RuleEngine(rules, engine.names)
    engine_state, rule_state = engine.new_state(), rule_engine.new_state()
    compiled = CompiledStrategies(builtin_strategies(rules, macd), candle_timeframes=())
    state = compiled.new_state("BTC-USD")
    rng = random.Random(seed)  # noqa: S311
    price = 100.0
    for i in range(count):
        if rng.random() < 0.8:
            price = round(price * math.exp(rng.gauss(0.0, 0.004)), 2)
        ts = 19_000 * DAY_US + i * 1_000_000
        expected = rule_engine.evaluate(rule_state, engine.update(engine_state, price, 1.0, ts // DAY_US), price)
        got = [(f.strategy.name, f.side) for f in compiled.on_tick(state, ts, price, 1.0)]
        assert got == expected, (i, price)


def test_indicator_values_provided_by_the_runner_give_the_same_signals() -> None:
    """``provided``: the runner's IndicatorEngine values stand in for the nodes, with the same signals."""
    spec = IndicatorSpec()
    named = indicator_outputs(spec)
    extra = parse_strategies('[strategies.peak]\nbuy = "rsi(14) >= highest(rsi(14), 20)"\n'
                             'sell = "close < lowest(ema(12), 5) and wma(7) < sma(20)"', syntax="toml",
                             candle_timeframes=())
    definitions = [*builtin_strategies(), *extra]
    computing = CompiledStrategies(definitions, candle_timeframes=(), outputs={"tick": named})
    providing = CompiledStrategies(definitions, candle_timeframes=(), provided={"tick": named})
    assert not [r for r in providing.plan("X").regions if r.key in ("tick|rsi(14,close)", "tick|ema(12,close)")]
    engine = IndicatorEngine(spec)
    engine_state = engine.new_state()
    computed, provided = computing.new_state("X"), providing.new_state("X")
    fired_computing, fired_providing = [], []
    for tick in ticks(20_000, seed=3):
        ts = to_us(tick.ts_event)
        volume = tick.volume or 0.0
        values = engine.update(engine_state, tick.price, volume, ts // DAY_US)
        fired_computing += [(f.strategy.name, f.side, f.ts_us) for f in computing.on_tick(computed, ts, tick.price,
                                                                                           volume)]
        fired_providing += [(f.strategy.name, f.side, f.ts_us) for f in providing.on_tick(provided, ts, tick.price,
                                                                                           volume, values)]
        assert providing.values(provided, "tick") == computing.values(computed, "tick")
    assert fired_providing == fired_computing and {name for name, _, _ in fired_providing} >= {"peak", "ema_cross"}
