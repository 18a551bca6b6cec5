"""The rule language over whole arrays (processors/core/vector) equals the streaming engine.

:class:`~processors.core.vector.strategies.VectorStrategies` against
:class:`~processors.core.strategies.engine.CompiledStrategies` fed one evaluation at a time:

- the same sides fire at the same evaluations, in the engine's order, on random conditions over
  every IR node kind (arithmetic, division, comparisons, strict and/or/not, ``x[k]``, crosses,
  rising/falling) whose leaves are every indicator of the catalog (every line of the multi-line
  ones, ``highest``/``lowest`` of a price and of another indicator), with random confirm/cooldown;
- every named indicator value, at every evaluation, has the engine's bits (undefined = NaN);

on tick series (flat stretches, spikes, UTC midnights with and without volume), on multi-timeframe
candles (1m and 5m reading each other, handed in one step when they close together), and on tick
strategies reading ``@1m`` candles closed by the ticks (the pipeline's order: a window is closed
before the tick that closed it is evaluated). The two non-elementary float operations the kernels
re-implement (``math.fsum``, ``x ** 2``) are checked against CPython directly.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from processors.core.strategies import ir
from processors.core.strategies.catalog import column_name
from processors.core.strategies.engine import ClosedCandle, CompiledStrategies
from processors.core.timeutil import DAY_US
from processors.core.vector.exact import TWO, exact_sum, scratch, square
from processors.core.vector.nodes import Series
from processors.core.vector.strategies import VectorStrategies
from tests.unit.core.strategies.strategies_support import expressions

MINUTE = 60_000_000
SYMBOL = "BTC-USD"


def indicators(timeframe: str) -> list[ir.Indicator]:
    """Every catalog indicator (every line) on ``timeframe``, with short periods so they warm up early."""
    close = ir.PriceField("close", timeframe)

    def one(name: str, params: tuple[int | float, ...] = (), member: str | None = None,
            source: ir.PriceField | ir.Indicator | None = None) -> ir.Indicator:
        return ir.Indicator(name, params, member, timeframe, source)

    ema = one("ema", (2,))
    return [
        one("sma", (3,)), ema, one("wma", (3,)), one("rsi", (3,)), one("roc", (2,)), one("vwap"), one("obv"),
        one("atr", (3,)), one("cci", (3,)), one("adx", (2,)), one("plus_di", (2,)), one("minus_di", (2,)),
        one("willr", (3,)), one("highest", (3,), source=close), one("lowest", (2,), source=ema),
        *(one("macd", (2, 4, 3), member) for member in ("line", "signal", "hist")),
        *(one("bb", (4, 2.0), member) for member in ("upper", "middle", "lower")),
        *(one("donchian", (3,), member) for member in ("upper", "lower")),
        *(one("stoch", (3, 2, 2), member) for member in ("k", "d")),
    ]


def prices(timeframe: str) -> list[ir.PriceField]:
    return [ir.PriceField(name, timeframe) for name in ("close", "high", "low", "open", "volume")]


def leaves(timeframes: tuple[str, ...]) -> list[ir.PriceField | ir.Indicator]:
    return [leaf for timeframe in timeframes for leaf in (*prices(timeframe), *indicators(timeframe))]


def outputs(timeframes: tuple[str, ...]) -> dict[str, list[tuple[str, ir.Indicator]]]:
    """Every indicator of each timeframe as a named output (so both sides compute and report them all)."""
    return {timeframe: [(column_name(indicator), indicator) for indicator in indicators(timeframe)]
            for timeframe in timeframes}


_, TICK_CONDITIONS = expressions(leaves((ir.TICK,)), max_depth=5)
_, CANDLE_CONDITIONS = expressions(leaves(("1m", "5m")), max_depth=5)
_, MIXED_CONDITIONS = expressions(leaves((ir.TICK, "1m")), max_depth=5)

# -- series ------------------------------------------------------------------------------------------


@st.composite
def tick_rows(draw: st.DrawFn) -> list[tuple[int, float, float]]:
    """(ts_us, price, volume): walks with flat stretches, one-tick spikes, a midnight, volume-less ticks."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    price, ts, rows = 100.0, 19_000 * DAY_US + DAY_US - 90 * 1_000_000, []
    flat = 0
    for _ in range(draw(st.integers(1, 250))):
        if flat:
            flat -= 1
        elif rng.random() < 0.05:
            flat = rng.randint(3, 25)
        else:
            price = round(price * math.exp(rng.gauss(0, 0.01)), 2)
        spike = price * rng.choice((0.5, 2.0)) if rng.random() < 0.02 else price
        ts += rng.choice((1_000_000, 5_000_000, 20_000_000))
        rows.append((ts, round(spike, 2), 0.0 if rng.random() < 0.3 else round(rng.random() * 2, 3)))
    return rows


@st.composite
def minute_candles(draw: st.DrawFn) -> list[ClosedCandle]:
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    start = 19_000 * DAY_US + DAY_US - draw(st.integers(0, 120)) * MINUTE  # crosses a UTC midnight
    price, candles = 100.0, []
    for minute in range(draw(st.integers(5, 300))):
        if rng.random() < 0.15:
            continue  # a quiet minute: no candle
        opening = price
        if rng.random() < 0.85:
            price = round(price * math.exp(rng.gauss(0, 0.004)), 2)
        flat = rng.random() < 0.1
        high = max(opening, price) + (0.0 if flat else 0.05)
        low = min(opening, price) - (0.0 if flat else 0.05)
        ts = start + minute * MINUTE
        candles.append(ClosedCandle("1m", ts, ts + MINUTE, opening, high, low, price,
                                    0.0 if rng.random() < 0.2 else round(rng.random() * 3, 3)))
    return candles


def aggregate(minutes: list[ClosedCandle], timeframe: str, length: int) -> list[ClosedCandle]:
    groups: dict[int, list[ClosedCandle]] = {}
    for candle in minutes:
        groups.setdefault(candle.ts_open_us - candle.ts_open_us % length, []).append(candle)
    return [ClosedCandle(timeframe, start, start + length, group[0].open, max(c.high for c in group),
                         min(c.low for c in group), group[-1].close, sum(c.volume for c in group))
            for start, group in sorted(groups.items())]


def candle_series(candles: list[ClosedCandle]) -> Series:
    return Series.candles([c.ts_open_us for c in candles], [c.ts_close_us for c in candles],
                          [c.open for c in candles], [c.high for c in candles], [c.low for c in candles],
                          [c.close for c in candles], [c.volume for c in candles])


# -- comparison --------------------------------------------------------------------------------------

Fires = list[tuple[str, int, str, str]]
"""(timeframe, evaluation index, strategy name, side) in the order they fired."""


class Recorder:
    """The engine's fires and named values, evaluation by evaluation, per timeframe."""

    def __init__(self, compiled: CompiledStrategies, timeframes: tuple[str, ...]) -> None:
        self.compiled = compiled
        self.state = compiled.new_state(SYMBOL)
        self.fires: Fires = []
        self.values: dict[str, list[dict[str, float | None]]] = {timeframe: [] for timeframe in timeframes}

    def record(self, timeframe: str, fired: list[tuple[str, str]]) -> None:
        index = len(self.values[timeframe])
        self.fires += [(timeframe, index, name, side) for name, side in fired]
        self.values[timeframe].append(self.compiled.values(self.state, timeframe))  # type: ignore[arg-type]

    def tick(self, ts: int, price: float, volume: float) -> None:
        fired = self.compiled.on_tick(self.state, ts, price, volume)
        self.record(ir.TICK, [(f.strategy.name, f.side) for f in fired])

    def candles(self, group: list[ClosedCandle]) -> None:
        fired = self.compiled.on_candles(self.state, group)
        by_timeframe: dict[str, list[tuple[str, str]]] = {}
        for f in fired:
            by_timeframe.setdefault(f.strategy.timeframe, []).append((f.strategy.name, f.side))
        # the engine evaluates the shortest timeframe first: every candle of the group is one evaluation
        for candle in sorted(group, key=lambda c: c.ts_close_us - c.ts_open_us):
            if candle.timeframe in self.values:
                self.record(candle.timeframe, by_timeframe.get(candle.timeframe, []))


def vector_fires(vector: VectorStrategies, series: dict[str, Series], order: list[str],
                 handed: dict[str, np.ndarray] | None = None,
                 hypothesis_event: bool = True) -> tuple[Fires, dict[str, dict[str, np.ndarray]]]:
    """The vector fires per timeframe (in ``order``, then evaluation, then the engine's side order)."""
    result = vector.evaluate(SYMBOL, series, handed)
    fires: Fires = []
    for timeframe in order:
        masks = result.sides.get(timeframe, [])
        rows = [(int(index), rank, mask.strategy.name, mask.side) for rank, mask in enumerate(masks)
                for index in np.flatnonzero(mask.fired)]
        fires += [(timeframe, index, name, side) for index, _, name, side in sorted(rows)]
    if hypothesis_event:
        event("some side fired" if fires else "nothing fired")
    return fires, result.columns


def assert_same_values(recorded: dict[str, list[dict[str, float | None]]],
                       columns: dict[str, dict[str, np.ndarray]]) -> None:
    for timeframe, rows in recorded.items():
        for name in rows[0] if rows else ():
            got = columns[timeframe][name]
            expected = np.array([np.nan if row[name] is None else row[name] for row in rows], dtype=np.float64)
            assert got.shape == expected.shape, (timeframe, name)
            assert np.array_equal(np.isnan(got), np.isnan(expected)), f"{timeframe} {name}: defined elsewhere"
            defined = ~np.isnan(expected)
            assert np.array_equal(got[defined].view(np.int64), expected[defined].view(np.int64)), \
                f"{timeframe} {name}: not the engine's bits"


def definitions(timeframe: str, conditions: list[ir.Condition], confirm: int, cooldown_s: int
                ) -> list[ir.StrategyDefinition]:
    first, second = conditions
    return [ir.StrategyDefinition(f"random_{timeframe}", timeframe, first, second, confirm=confirm,
                                  cooldown_ms=cooldown_s * 1000),
            ir.StrategyDefinition(f"plain_{timeframe}", timeframe, second, first)]


def by_timeframe(fires: Fires, order: list[str]) -> Fires:
    return sorted(fires, key=lambda item: (order.index(item[0]), item[1]))


# -- the tests ---------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=tick_rows(), conditions=st.lists(TICK_CONDITIONS, min_size=2, max_size=2), confirm=st.integers(1, 3),
       cooldown_s=st.sampled_from([0, 0, 10, 60]))
def test_tick_strategies_equal_the_engine(rows: list[tuple[int, float, float]], conditions: list[ir.Condition],
                                          confirm: int, cooldown_s: int) -> None:
    timeframes = (ir.TICK,)
    chosen = definitions(ir.TICK, conditions, confirm, cooldown_s)
    recorder = Recorder(CompiledStrategies(chosen, candle_timeframes=(), outputs=outputs(timeframes)), timeframes)
    for ts, price, volume in rows:
        recorder.tick(ts, price, volume)
    vector = VectorStrategies(chosen, candle_timeframes=(), outputs=outputs(timeframes))
    series = Series.ticks([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    fires, columns = vector_fires(vector, {ir.TICK: series}, [ir.TICK])
    assert fires == recorder.fires
    assert_same_values(recorder.values, columns)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(minutes=minute_candles(), conditions=st.lists(CANDLE_CONDITIONS, min_size=4, max_size=4),
       confirm=st.integers(1, 2), cooldown_s=st.sampled_from([0, 0, 120]), seed=st.integers(0, 99))
def test_multi_timeframe_candle_strategies_equal_the_engine(minutes: list[ClosedCandle], conditions: list[ir.Condition],
                                                            confirm: int, cooldown_s: int, seed: int) -> None:
    timeframes = ("1m", "5m")
    candles = {"1m": minutes, "5m": aggregate(minutes, "5m", 5 * MINUTE)}
    chosen = [*definitions("1m", conditions[:2], confirm, cooldown_s), *definitions("5m", conditions[2:], 1, 0)]
    compiled = CompiledStrategies(chosen, candle_timeframes=timeframes, outputs=outputs(timeframes))
    recorder = Recorder(compiled, timeframes)
    by_end: dict[int, list[ClosedCandle]] = {}
    for group in candles.values():
        for candle in group:
            by_end.setdefault(candle.ts_close_us, []).append(candle)
    shuffle = random.Random(seed)  # noqa: S311 - test data
    for end in sorted(by_end):
        group = by_end[end]
        shuffle.shuffle(group)
        recorder.candles(group)
    vector = VectorStrategies(chosen, candle_timeframes=timeframes, outputs=outputs(timeframes))
    fires, columns = vector_fires(vector, {tf: candle_series(group) for tf, group in candles.items()},
                                  list(timeframes))
    assert fires == by_timeframe(recorder.fires, list(timeframes))
    assert_same_values(recorder.values, columns)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=tick_rows(), conditions=st.lists(MIXED_CONDITIONS, min_size=2, max_size=2))
def test_tick_strategies_reading_closed_minutes_equal_the_engine(rows: list[tuple[int, float, float]],
                                                                  conditions: list[ir.Condition]) -> None:
    timeframes = (ir.TICK, "1m")
    chosen = definitions(ir.TICK, conditions, 1, 0)
    compiled = CompiledStrategies(chosen, candle_timeframes=("1m",), outputs=outputs(timeframes))
    recorder = Recorder(compiled, timeframes)
    minutes: list[ClosedCandle] = []
    handed: list[int] = []
    window: list[tuple[int, float, float]] = []

    def close_window() -> None:
        start = window[0][0] - window[0][0] % MINUTE
        candle = ClosedCandle("1m", start, start + MINUTE, window[0][1], max(r[1] for r in window),
                              min(r[1] for r in window), window[-1][1], sum(r[2] for r in window))
        minutes.append(candle)
        recorder.candles([candle])
        window.clear()

    for row in rows:
        if window and row[0] // MINUTE != window[0][0] // MINUTE:
            close_window()  # the tick that closes a window is evaluated after the window
        window.append(row)
        handed.append(len(minutes))
        recorder.tick(*row)
    vector = VectorStrategies(chosen, candle_timeframes=("1m",), outputs=outputs(timeframes))
    series = {ir.TICK: Series.ticks([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
              "1m": candle_series(minutes)}
    fires, columns = vector_fires(vector, series, [ir.TICK], {"1m": np.array(handed, dtype=np.int64)})
    assert fires == recorder.fires
    assert_same_values(recorder.values, columns)


def test_a_tick_strategy_reading_candles_needs_the_handed_counts() -> None:
    condition = ir.Compare(">", ir.PriceField("close", ir.TICK), ir.PriceField("close", "1m"))
    chosen = [ir.StrategyDefinition("s", ir.TICK, condition, None)]
    vector = VectorStrategies(chosen, candle_timeframes=("1m",))
    series = {ir.TICK: Series.ticks([1, 2], [1.0, 2.0]), "1m": Series.candles([], [], [], [], [], [], [])}
    try:
        vector.evaluate(SYMBOL, series)
    except ValueError as error:
        assert "handed" in str(error)
    else:
        raise AssertionError("a tick strategy reading @1m without handed counts must be refused")


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
                       max_size=60), cancel=st.booleans())
def test_exact_sum_is_math_fsum_and_square_is_pow(values: list[float], cancel: bool) -> None:
    if cancel:  # catastrophic cancellation: the partials carry everything
        values = [*values, *(-v for v in values), 1e-17, 1.0]
    array = np.array(values, dtype=np.float64)
    try:
        expected = math.fsum(values)
    except OverflowError:
        return  # CPython refuses an intermediate overflow; the kernels only sum bounded prices
    assert exact_sum(array, 0, len(values), scratch()) == expected
    for value in values:
        try:
            squared = value ** 2
        except OverflowError:
            continue
        assert square(value, TWO) == squared


MILLION_STRATEGIES = """
[strategies.trend]
buy = "crosses_above(ema(9), ema(21)) and rsi(14) < 70 and adx(14) > 20"
sell = "crosses_below(ema(9), ema(21)) or rsi(14) > 80"

[strategies.bands]
buy = "close < bb(20, 2).lower and cci(20) < -100 and stoch(14, 3, 3).k < 20"
sell = "close > bb(20, 2).upper or willr(14) > -10"
confirm = 2

[strategies.breakout]
buy = "close > highest(close, 50)[1] and rising(obv(), 3) and close > vwap()"
sell = "close < donchian(20).lower[1] or roc(10) < -1 or macd(12, 26, 9).hist < 0 and falling(wma(10), 2)"
cooldown = "30s"

[strategies.volatility]
buy = "atr(14) / close > 0.0005 and plus_di(14) > minus_di(14) and close > sma(50) and lowest(rsi(14), 5) < 35"
sell = "atr(14) / close < 0.0002"
"""


@pytest.mark.slow
def test_a_million_ticks_give_the_engines_signals_and_values() -> None:
    """Every catalog indicator in four strategies over one 1,000,000-tick series (flat stretches, spikes, jumps,
    volume-less ticks, ~12 UTC midnights): the same fires at the same ticks; the values have the engine's bits at
    every 997th tick (reading every value at every tick would triple the engine's time)."""
    from processors.core.strategies.file import parse_strategies
    from tests.unit.core.test_core_vector_kernel import million_tick_series

    prices, volumes, days = million_tick_series()
    times = [day * DAY_US + (index % 86_400) * 1_000_000 for index, day in enumerate(days)]
    chosen = parse_strategies(MILLION_STRATEGIES, syntax="toml", candle_timeframes=())
    compiled = CompiledStrategies(chosen, candle_timeframes=())
    state = compiled.new_state(SYMBOL)
    fires: Fires = []
    sampled: dict[int, dict[str, float | None]] = {}
    for index, (ts, price, volume) in enumerate(zip(times, prices, volumes, strict=True)):
        fired = compiled.on_tick(state, ts, price, volume)
        if fired:
            fires += [(ir.TICK, index, f.strategy.name, f.side) for f in fired]
        if index % 997 == 0:
            sampled[index] = compiled.values(state, ir.TICK)  # type: ignore[assignment]
    vector = VectorStrategies(chosen, candle_timeframes=())
    got, columns = vector_fires(vector, {ir.TICK: Series.ticks(times, prices, volumes)}, [ir.TICK],
                                hypothesis_event=False)
    assert len(fires) > 1_000, "the strategies fire"
    assert got == fires
    picked = np.array(sorted(sampled))
    for name in compiled.columns(SYMBOL, ir.TICK):
        expected = np.array([math.nan if sampled[i][name] is None else sampled[i][name] for i in picked],
                            dtype=np.float64)
        values = columns[ir.TICK][name][picked]
        assert np.array_equal(np.isnan(values), np.isnan(expected)), name
        defined = ~np.isnan(expected)
        assert np.array_equal(values[defined].view(np.int64), expected[defined].view(np.int64)), name
