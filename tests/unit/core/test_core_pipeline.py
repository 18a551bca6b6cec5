"""The pipeline step as the runners use it: state JSON round trips, determinism, bounded state, errors."""

from __future__ import annotations

import copy
import json
import math
import random
from datetime import datetime

import orjson
import pytest
from core_support import dumps, lineage, tick
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.core.indicators import IndicatorSpec
from processors.core.pipeline import (
    IncompatibleStateError,
    PipelineConfig,
    SymbolProcessor,
    flush,
    step,
)
from processors.core.plain import StateFormatError
from processors.core.timeutil import to_us
from schemas.events import Tick, make_signal_id
from schemas.instruments import Instrument

CONFIGS = [
    PipelineConfig(candle_timeframes=("1m", "5m"), grace_ms=5_000),
    PipelineConfig(candle_timeframes=(), summary_every_ticks=7),
    PipelineConfig(indicators=IndicatorSpec(sma=(3,), ema=(12, 26), rsi=(14,)), candle_timeframes=("1m",),
                   grace_ms=0),
]


@st.composite
def tick_streams(draw: st.DrawFn) -> list[Tick]:
    """A messy but realistic stream: walks, out-of-order and late ticks, gaps over midnight, bad prices."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    length = draw(st.integers(1, 400))
    seconds, price = draw(st.floats(0, 3_500)), 64_000.0
    ticks = []
    for n in range(length):
        roll = rng.random()
        if roll < 0.05:
            moment = seconds - rng.uniform(0, 30)  # out of order: within grace or late
        elif roll < 0.06:
            seconds += rng.uniform(3_000, 200_000)  # a gap, often over one or more UTC midnights
            moment = seconds
        else:
            seconds += rng.uniform(0, 20)
            moment = seconds
        price = max(0.01, round(price * math.exp(rng.gauss(0, 2e-3)), 2))
        volume = None if rng.random() < 0.1 else round(rng.lognormvariate(-2, 1), 6)
        ticks.append(tick(moment, 1e13 if rng.random() < 0.01 else price, volume, n=n))
    return ticks


@settings(max_examples=40, deadline=None)
@given(ticks=tick_streams(), config_index=st.integers(0, len(CONFIGS) - 1), data=st.data())
def test_splitting_anywhere_through_json_equals_an_uninterrupted_run(ticks: list[Tick], config_index: int,
                                                                     data: st.DataObject) -> None:
    """The basis of exactly-once recovery and Spark chunking: state → JSON text → state changes nothing."""
    config = CONFIGS[config_index]
    splits = set(data.draw(st.lists(st.integers(0, len(ticks)), max_size=4)))
    processor = SymbolProcessor(config, Instrument("BTC-USD", "test"))
    expected = [dumps(processor.process(t, lineage(i))) for i, t in enumerate(ticks)]

    state = None
    got = []
    for i, t in enumerate(ticks):
        if i in splits and state is not None:
            text = orjson.dumps(state) if i % 2 else json.dumps(state).encode()
            state = orjson.loads(text) if i % 3 else json.loads(text)
        state, out = step(config, state, t, lineage(i))
        got.append(dumps(out))
    assert got == expected
    assert state == processor.state()
    assert json.loads(json.dumps(state)) == state
    last = ticks[-1]
    _, flushed = flush(config, state, last, lineage(len(ticks)))
    assert dumps(flushed) == dumps(processor.flush(last, lineage(len(ticks))))


@settings(max_examples=40, deadline=None)
@given(ticks=tick_streams(), config_index=st.integers(0, len(CONFIGS) - 1))
def test_no_window_stays_open_once_the_latest_event_time_reaches_its_end_plus_grace(ticks: list[Tick],
                                                                                     config_index: int) -> None:
    """The step looks for windows to close only when the oldest one is due: that must never delay a close."""
    config = CONFIGS[config_index]
    processor = SymbolProcessor(config, Instrument("BTC-USD", "test"))
    grace = config.grace_ms * 1000
    for i, t in enumerate(ticks):
        processor.process(t, lineage(i))
        latest = processor.last
        if latest is None:
            continue
        for frame in processor.frames:
            for window in frame.windows:
                assert window.start + frame.length + grace > latest, (i, frame.name, window.start)


def series(count: int, seed: int = 1) -> list[Tick]:
    rng = random.Random(seed)  # noqa: S311 - test data
    price, seconds, ticks = 64_000.0, 0.0, []
    for n in range(count):
        seconds += rng.uniform(0.1, 3.0)
        price = round(price * math.exp(rng.gauss(0, 1e-3)), 2)
        ticks.append(tick(seconds, price, round(rng.random(), 4), n=n))
    return ticks


def test_the_same_input_gives_byte_identical_events() -> None:
    ticks = series(3_000)
    first = [dumps(out) for out in (SymbolProcessor(CONFIGS[0], Instrument("BTC-USD", "test")).process(t, lineage(i))
                                    for i, t in enumerate(ticks))]
    second = [dumps(out) for out in (SymbolProcessor(CONFIGS[0], Instrument("BTC-USD", "test")).process(t, lineage(i))
                                     for i, t in enumerate(ticks))]
    assert first == second


def test_derived_events_carry_their_origins_time_lineage_and_deterministic_ids() -> None:
    """The tick timeframe's events carry the tick; a close's its window's last tick; a summary the day's
    last tick before the step (docs/core.md, "What a close emits")."""
    processor = SymbolProcessor(CONFIGS[0], Instrument("BTC-USD", "test"))
    signals = 0
    last_in: dict[tuple[str, int], int] = {}  # (timeframe, window start µs) → offset of its last tick
    ticks = series(3_000)
    for i, t in enumerate(ticks):
        out = processor.process(t, lineage(i, partition=3))

        def origin(timeframe: str, ts_event: datetime, i: int = i) -> int:
            if timeframe == "tick":
                return i
            length = {"1m": 60, "5m": 300}[timeframe] * 1_000_000
            return last_in[(timeframe, to_us(ts_event) - length)]

        for event in [*out.snapshots, *out.signals]:
            offset = origin(event.timeframe, event.ts_event)
            assert event.ts_init == ticks[offset].ts_init and event.lineage == lineage(offset, partition=3)
        for candle in out.candles:
            offset = last_in[(candle.timeframe, to_us(candle.ts_open))]
            assert candle.ts_init == ticks[offset].ts_init and candle.lineage == lineage(offset, partition=3)
        for summary in out.summaries:  # closes come before the tick: the day as it stood, up to the previous tick
            assert summary.lineage == lineage(i - 1, partition=3) and summary.ts_event == ticks[i - 1].ts_event
        for timeframe, seconds in (("1m", 60), ("5m", 300)):
            ts = to_us(t.ts_event)
            last_in[(timeframe, ts - ts % (seconds * 1_000_000))] = i
        for snapshot in out.snapshots:
            assert snapshot.ts_event == (t.ts_event if snapshot.timeframe == "tick" else out.candles[0].ts_close)
        for signal in out.signals:
            signals += 1
            assert signal.signal_id == make_signal_id("BTC-USD", "test", signal.timeframe, signal.rule, signal.side,
                                                      signal.ts_event, 3, origin(signal.timeframe, signal.ts_event))
            assert signal.indicators == next(s.values for s in out.snapshots if s.timeframe == signal.timeframe)
    assert signals > 50


def leaves(value: object) -> int:
    if isinstance(value, dict):
        return sum(leaves(item) for item in value.values())
    if isinstance(value, list):
        return sum(leaves(item) for item in value)
    return 1


def test_state_stays_small_however_long_the_stream() -> None:
    processor = SymbolProcessor(CONFIGS[0], Instrument("BTC-USD", "test"))
    counts, sizes = [], []
    for i, t in enumerate(series(20_000)):
        processor.process(t, lineage(i))
        if i % 2_000 == 1_999:
            counts.append(leaves(processor.state()))
            sizes.append(len(json.dumps(processor.state())))
    # Only the open candle windows (9 values and a 5-value origin each, at most 2 per timeframe here) vary.
    assert max(counts) - min(counts) <= 2 * 2 * 14 and max(counts) < 340
    assert max(sizes) < 5_000


def test_step_never_mutates_the_state_it_is_given() -> None:
    state, _ = step(CONFIGS[0], None, tick(0.0, 100.0), lineage(0))
    before = copy.deepcopy(state)
    after, _ = step(CONFIGS[0], state, tick(70.0, 101.0), lineage(1))
    assert state == before and after != before


def test_a_state_of_another_indicator_set_or_timeframe_list_is_refused() -> None:
    state, _ = step(CONFIGS[0], None, tick(0.0, 100.0), lineage(0))
    with pytest.raises(IncompatibleStateError):
        step(CONFIGS[2], state, tick(1.0, 100.0), lineage(1))
    with pytest.raises(IncompatibleStateError):
        step(PipelineConfig(candle_timeframes=("1m",)), state, tick(1.0, 100.0), lineage(1))
    # Rule thresholds and grace may change without invalidating the state.
    step(PipelineConfig(candle_timeframes=("1m", "5m"), grace_ms=1_000), state, tick(1.0, 100.0), lineage(1))


def test_corrupt_state_and_foreign_symbols_fail_loudly() -> None:
    state, _ = step(CONFIGS[0], None, tick(0.0, 100.0), lineage(0))
    broken = {**state, "tick": [state["tick"][0][:5], []]}
    with pytest.raises(StateFormatError):
        step(CONFIGS[0], broken, tick(1.0, 100.0), lineage(1))
    with pytest.raises(ValueError, match="state of 'BTC-USD@test' used for 'ETH-USD@test'"):
        step(CONFIGS[0], state, tick(1.0, 100.0, symbol="ETH-USD"), lineage(1))
    # Another venue's BTC-USD is another instrument: its state and its ticks are refused too.
    with pytest.raises(ValueError, match="state of 'BTC-USD@test' used for 'BTC-USD@kraken'"):
        step(CONFIGS[0], state, tick(1.0, 100.0, venue="kraken"), lineage(1))
    with pytest.raises(ValueError, match="tick of ETH-USD@test"):
        SymbolProcessor(CONFIGS[0], Instrument("BTC-USD", "test")).process(tick(1.0, 100.0, symbol="ETH-USD"),
                                                                          lineage(1))
    with pytest.raises(ValueError, match="tick of BTC-USD@kraken"):
        SymbolProcessor(CONFIGS[0], Instrument("BTC-USD", "test")).process(tick(1.0, 100.0, venue="kraken"), lineage(1))


@pytest.mark.parametrize(("price", "volume", "reason"), [
    (1e13, 1.0, "price_out_of_range"),
    (1e-13, 1.0, "price_out_of_range"),
    (100.0, 1e16, "volume_out_of_range"),
    (100.0, 1e-300, "volume_out_of_range"),
])
def test_absurd_amounts_are_dead_lettered_not_computed(price: float, volume: float, reason: str) -> None:
    state, out = step(CONFIGS[0], None, tick(0.0, price, volume), lineage(0))
    assert [letter.reason for letter in out.rejections] == [reason]
    assert out.snapshots == [] and state["day"] is None and state["last"] is None


@pytest.mark.parametrize("bad", [
    dict(candle_timeframes=("1m", "1m")),
    dict(candle_timeframes=("tick",)),
    dict(candle_timeframes=("7m",)),
    dict(grace_ms=-1),
    dict(summary_every_ticks=0),
    dict(min_price=2.0, max_price=1.0),
])
def test_impossible_pipeline_configs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PipelineConfig(**bad)
