"""Multi-timeframe strategies on synthetic candles: ``@tf`` reads the latest closed candle, never a later one.

1m candles (with gaps) are aggregated into 5m and 1h candles; every candle closing at the same
time is handed to the engine in one ``on_candles`` call, in a shuffled order. Random strategies on
each timeframe read the others; the reference evaluator looks up, for each evaluation at close
time T, the latest candle of the leaf's timeframe with close ≤ T — the definition of "latest
closed candle, no look-ahead" — with indicator values computed independently per timeframe.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_support import Reference, compile_text, expressions, reference_fires

from processors.core.indicators import IndicatorEngine, IndicatorSpec
from processors.core.strategies import ir
from processors.core.strategies.engine import ClosedCandle, CompiledStrategies
from processors.core.timeutil import DAY_US

MINUTE = 60_000_000
TIMEFRAMES = {"1m": MINUTE, "5m": 5 * MINUTE, "1h": 60 * MINUTE}
ENGINE_NAMES = {"sma": "sma_3", "ema": "ema_2", "rsi": "rsi_2"}


def leaves_on(timeframe: str) -> list[ir.PriceField | ir.Indicator]:
    return [ir.PriceField("close", timeframe), ir.PriceField("high", timeframe), ir.PriceField("open", timeframe),
            ir.Indicator("sma", (3,), None, timeframe), ir.Indicator("ema", (2,), None, timeframe),
            ir.Indicator("rsi", (2,), None, timeframe)]


ALL_LEAVES = [leaf for timeframe in TIMEFRAMES for leaf in leaves_on(timeframe)]
_, CONDITIONS = expressions(ALL_LEAVES)


def aggregate(minutes: list[ClosedCandle], timeframe: str) -> list[ClosedCandle]:
    length = TIMEFRAMES[timeframe]
    groups: dict[int, list[ClosedCandle]] = {}
    for candle in minutes:
        groups.setdefault(candle.ts_open_us - candle.ts_open_us % length, []).append(candle)
    return [ClosedCandle(timeframe, start, start + length, group[0].open, max(c.high for c in group),
                         min(c.low for c in group), group[-1].close, sum(c.volume for c in group))
            for start, group in sorted(groups.items())]


@st.composite
def minute_candles(draw: st.DrawFn) -> list[ClosedCandle]:
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    start = 19_000 * DAY_US + draw(st.integers(0, 23)) * 60 * MINUTE + draw(st.integers(0, 59)) * MINUTE
    price, candles = 100.0, []
    for minute in range(draw(st.integers(30, 400))):
        if rng.random() < 0.15:
            continue  # a quiet minute: no candle
        opening = price
        price = round(price * math.exp(rng.gauss(0, 0.004)), 2)
        ts = start + minute * MINUTE
        candles.append(ClosedCandle("1m", ts, ts + MINUTE, opening, max(opening, price) + 0.05,
                                    min(opening, price) - 0.05, price, round(rng.random() * 3, 3)))
    return candles


def feed(compiled: CompiledStrategies, candles: dict[str, list[ClosedCandle]], shuffle: random.Random
         ) -> list[tuple[int, str, str]]:
    by_end: dict[int, list[ClosedCandle]] = {}
    for series in candles.values():
        for candle in series:
            by_end.setdefault(candle.ts_close_us, []).append(candle)
    state = compiled.new_state("BTC-USD")
    fired = []
    for end in sorted(by_end):
        group = by_end[end]
        shuffle.shuffle(group)
        fired += [(f.ts_us, f.strategy.name, f.side) for f in compiled.on_candles(state, group)]
    return fired


def leaf_values(candles: list[ClosedCandle]) -> dict[str, list[float | None]]:
    engine = IndicatorEngine(IndicatorSpec(sma=(3,), ema=(2,), rsi=(2,), macd=None, bollinger=None, vwap=False))
    state = engine.new_state()
    series: dict[str, list[float | None]] = {"close": [], "high": [], "open": [], "sma": [], "ema": [], "rsi": []}
    for candle in candles:
        values = dict(zip(engine.names, engine.update(state, candle.close, candle.volume,
                                                      candle.ts_open_us // DAY_US), strict=True))
        series["close"].append(candle.close)
        series["high"].append(candle.high)
        series["open"].append(candle.open)
        for name, engine_name in ENGINE_NAMES.items():
            series[name].append(values[engine_name])
    return series


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(minutes=minute_candles(), conditions=st.lists(CONDITIONS, min_size=6, max_size=6), seed=st.integers(0, 99))
def test_multi_timeframe_strategies_read_the_latest_closed_candle(
        minutes: list[ClosedCandle], conditions: list[ir.Condition], seed: int) -> None:
    candles = {"1m": minutes, "5m": aggregate(minutes, "5m"), "1h": aggregate(minutes, "1h")}
    definitions = [ir.StrategyDefinition(f"on_{timeframe}", timeframe, conditions[2 * i], conditions[2 * i + 1])
                   for i, timeframe in enumerate(TIMEFRAMES)]
    compiled = CompiledStrategies(definitions, candle_timeframes=tuple(TIMEFRAMES))
    fired = feed(compiled, candles, random.Random(seed))

    closes = {tf: [c.ts_close_us for c in series] for tf, series in candles.items()}
    values = {tf: leaf_values(series) for tf, series in candles.items()}
    expected = []
    for definition in definitions:
        own = closes[definition.timeframe]

        def leaf(leaf: ir.PriceField | ir.Indicator, t: int, own: list[int] = own) -> float | None:
            latest = bisect_right(closes[leaf.timeframe], own[t]) - 1  # the latest candle closed at or before T
            if latest < 0:
                return None
            return values[leaf.timeframe][leaf.name][latest]

        reference = Reference(leaf)
        for side, condition in (("BUY", definition.buy), ("SELL", definition.sell)):
            assert condition is not None
            results = [reference.value(condition, t) for t in range(len(own))]
            expected += [(own[t], definition.name, side) for t in reference_fires(results, own)]
    rank = {(d.name, side): i for i, (d, side) in enumerate((d, s) for d in definitions for s in ("BUY", "SELL"))}
    assert fired == sorted(expected, key=lambda item: (item[0], rank[(item[1], item[2])]))


def test_a_5m_strategy_sees_the_hour_that_closes_with_it_and_nothing_later() -> None:
    compiled = compile_text('[strategies.s]\ntimeframe = "5m"\nbuy = "close@1h > 100"', ("5m", "1h"))
    state = compiled.new_state("BTC-USD")
    hour = 10 * 60 * MINUTE

    def five(start: int, close: float) -> ClosedCandle:
        return ClosedCandle("5m", start, start + 5 * MINUTE, close, close, close, close, 1.0)

    hour_candle = ClosedCandle("1h", hour - 60 * MINUTE, hour, 90, 120, 90, 110, 12.0)
    assert not compiled.on_candle(state, five(hour - 10 * MINUTE, 99))  # no closed hour yet: undefined
    # The hour [9:00, 10:00) and the 5m candle [9:55, 10:00) close together: the 5m evaluation sees that hour,
    # whatever order the runner lists them in.
    assert not compiled.on_candles(state, [five(hour - 5 * MINUTE, 99), hour_candle])  # undefined before
    state = compiled.new_state("BTC-USD")
    compiled.on_candle(state, ClosedCandle("1h", hour - 120 * MINUTE, hour - 60 * MINUTE, 90, 95, 85, 90, 1.0))
    compiled.on_candle(state, five(hour - 10 * MINUTE, 99))  # close@1h = 90: false
    fired = compiled.on_candles(state, [five(hour - 5 * MINUTE, 99), hour_candle])
    assert [(f.ts_us, f.side) for f in fired] == [(hour, "BUY")]  # close@1h = 110 at 10:00


def test_a_tick_strategy_reads_the_latest_candle_handed_to_the_engine() -> None:
    compiled = compile_text('[strategies.s]\nbuy = "close > high@1m"', ("1m",))
    state = compiled.new_state("BTC-USD")
    assert not compiled.on_tick(state, 30 * 1_000_000, 100.0, 1.0)  # undefined: no closed minute yet
    compiled.on_candle(state, ClosedCandle("1m", 0, MINUTE, 100, 101, 99, 100, 1.0))
    assert not compiled.on_tick(state, 65 * 1_000_000, 100.5, 1.0)  # false: 100.5 ≤ 101
    assert [f.side for f in compiled.on_tick(state, 66 * 1_000_000, 102.0, 1.0)] == ["BUY"]
