"""Derived events built without re-validation (processors/core/derived.py) equal validated ones.

For every event the pipeline emits over random series — walks at any price level the core
accepts, extreme volumes, out-of-order and late ticks, gaps over midnights, several timeframe
sets — the event equals what the validated constructor makes of the same field values: same
class, equal, same ``model_fields_set``, same field order and value types, byte-identical JSON.
And the checks that decide the shortcut hand anything doubtful to the validated constructor,
which refuses it exactly as before.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from core_support import lineage, tick
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from processors.core import derived
from processors.core.indicators import IndicatorSpec
from processors.core.pipeline import PipelineConfig, SymbolProcessor
from processors.core.rules import EmaCross, RsiReversal, RuleSpec, SeedRsiEma
from processors.core.strategies.file import parse_strategies
from schemas.events import Candle, DailySummary, Event, IndicatorSnapshot, Signal, SignalOutcome, Tick, encode
from schemas.instruments import Instrument

CONFIGS = [
    PipelineConfig(candle_timeframes=("1m", "5m"), grace_ms=5_000),
    PipelineConfig(candle_timeframes=(), summary_every_ticks=3),
    # short periods: many signals
    PipelineConfig(indicators=IndicatorSpec(sma=(2,), ema=(2, 3), rsi=(2,)),
                   rules=RuleSpec(rsi_reversal=RsiReversal(period=2), ema_cross=EmaCross(fast=2, slow=3),
                                  seed_rsi_ema=SeedRsiEma(rsi_period=2, ema_period=2)),
                   candle_timeframes=("1m",), grace_ms=0),
    # compiled strategies on tick and 1m beside the rules, with scorecard outcomes and live updates
    PipelineConfig(candle_timeframes=("1m",), horizons_ms=(60_000, 300_000), fee=0.001, live_update_ms=1_000,
                   strategies=parse_strategies(
                       '[strategies.fast_cross]\ntimeframe = "tick"\nbuy = "crosses_above(ema(2), ema(5))"\n'
                       'sell = "crosses_below(ema(2), ema(5))"\n[strategies.minute_rsi]\ntimeframe = "1m"\n'
                       'buy = "rsi(2) < 40"\nsell = "rsi(2) > 60"\n',
                       syntax="toml", candle_timeframes=("1m",))),
]
T = datetime(2024, 3, 9, 23, 0, tzinfo=UTC)


def validated(event: Event) -> Event:
    """What the validated constructor makes of the event's own arguments (what the core passed it)."""
    return type(event)(**{name: getattr(event, name) for name in event.model_fields_set})


def assert_same(event: Event) -> None:
    reference = validated(event)
    assert type(event) is type(reference)
    assert event == reference
    assert event.model_fields_set == reference.model_fields_set
    assert list(event.__dict__) == list(type(event).model_fields) == list(reference.__dict__)
    assert [type(value) for value in event.__dict__.values()] == [type(value) for value in reference.__dict__.values()]
    for name in ("values", "indicators"):
        if name in event.__dict__:
            mine, theirs = event.__dict__[name], reference.__dict__[name]
            assert list(mine.items()) == list(theirs.items())
            assert [type(v) for v in mine.values()] == [type(v) for v in theirs.values()]
    assert encode(event) == encode(reference)
    assert event.model_dump_json() == reference.model_dump_json()
    assert event.model_dump() == reference.model_dump()
    assert hash(encode(event)) == hash(encode(reference))
    with pytest.raises(ValidationError):
        event.symbol = "X"  # type: ignore[attr-defined]  # frozen like any event


@st.composite
def series(draw: st.DrawFn) -> list[Tick]:
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    level = draw(st.sampled_from([1e-12, 1e-6, 0.5, 64_000.0, 1e9, 1e12]))
    noise = draw(st.sampled_from([0.0, 1e-9, 2e-3, 0.3]))
    seconds, price = 0.0, level
    ticks = []
    for n in range(draw(st.integers(1, 300))):
        roll = rng.random()
        if roll < 0.05:
            moment = seconds - rng.uniform(0, 30)
        elif roll < 0.07:
            seconds += rng.uniform(3_000, 200_000)
            moment = seconds
        else:
            seconds += rng.uniform(0, 20)
            moment = seconds
        price = min(1e12, max(1e-12, price * math.exp(rng.gauss(0, noise))))
        volume = rng.choice([None, 0.0, 1e-12, 1e15, round(rng.lognormvariate(0, 2), 6)])
        ticks.append(tick(moment, price, volume, n=n))
    return ticks


@settings(max_examples=60, deadline=None)
@given(ticks=series(), config_index=st.integers(0, len(CONFIGS) - 1))
def test_every_derived_event_equals_the_validated_one(ticks: list[Tick], config_index: int) -> None:
    processor = SymbolProcessor(CONFIGS[config_index], Instrument("BTC-USD", "test"))
    seen = 0
    for offset, item in enumerate(ticks):
        output = processor.process(item, lineage(offset))
        for event in (*output.snapshots, *output.candles, *output.signals, *output.summaries, *output.outcomes):
            assert_same(event)
            seen += 1
    for event in (*(flushed := processor.flush(ticks[-1], lineage(len(ticks)))).candles, *flushed.snapshots,
                  *flushed.signals, *flushed.summaries):
        assert_same(event)
        seen += 1
    assert seen > 0


def test_a_long_realistic_series_has_every_kind_of_event_and_all_equal_the_validated_ones() -> None:
    rng = random.Random(5)
    processor = SymbolProcessor(CONFIGS[-1], Instrument("ETH-USD", "test"))
    price, kinds = 3_000.0, set()
    for n in range(6_000):
        price *= math.exp(rng.gauss(0, 1e-3))
        output = processor.process(tick(n * 2.0, round(price, 2), 1.5, symbol="ETH-USD", n=n), lineage(n))
        for event in (*output.snapshots, *output.candles, *output.signals, *output.summaries, *output.outcomes):
            assert_same(event)
            kinds.add((type(event).__name__, getattr(event, "final", None), getattr(event, "strategy", None)))
    assert kinds >= {("IndicatorSnapshot", None, None), ("Candle", True, None), ("Candle", False, None), ("Signal", None, "ema_cross"),
                     ("Signal", None, "fast_cross"), ("Signal", None, "minute_rsi"), ("DailySummary", False, None),
                     ("DailySummary", True, None), ("SignalOutcome", None, "fast_cross"),
                     ("SignalOutcome", None, "minute_rsi"), ("SignalOutcome", None, "rsi_reversal")}


ARGS = {"symbol": "BTC-USD", "venue": "test", "timeframe": "tick", "price": 10.0, "ts_event": T, "ts_init": T, "lineage": lineage(1)}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_computed_value_is_refused_by_validation_as_before(bad: float) -> None:
    values = {"sma_20": 1.0, "rsi_14": bad, "vwap": None}
    with pytest.raises(ValidationError):
        derived.snapshot(True, ARGS["symbol"], "test", "tick", 10.0, values, T, T, lineage(1))
    with pytest.raises(ValidationError):
        derived.signal(True, "0" * 32, "BTC-USD", "test", "tick", "ema_cross", "0" * 16, "rsi(14) < 30", "BUY", 10.0,
                       values, T, T, lineage(1))
    with pytest.raises(ValidationError):
        derived.candle(True, "BTC-USD", "test", "1m", T, T, 1.0, 1.0, 1.0, 1.0, bad, 1, True, T, T, lineage(1))
    with pytest.raises(ValidationError):
        derived.summary(True, "BTC-USD", "test", date(2024, 3, 9), 1.0, 1.0, 1.0, 1.0, bad, None, 1.0, 1, 0, 0, False, T, T,
                        lineage(1))
    with pytest.raises(ValidationError):
        derived.summary(True, "BTC-USD", "test", date(2024, 3, 9), 1.0, 1.0, 1.0, 1.0, 1.0, bad, 1.0, 1, 0, 0, False, T, T,
                        lineage(1))


def test_finite_values_whose_check_overflows_go_through_validation_and_are_accepted() -> None:
    values = {"a": 1.7e308, "b": 1.7e308}
    event = derived.snapshot(True, "BTC-USD", "test", "tick", 10.0, values, T, T, lineage(1))
    assert event == IndicatorSnapshot(values=values, **ARGS)
    assert encode(event) == encode(IndicatorSnapshot(values=values, **ARGS))


def test_untrusted_names_always_go_through_validation() -> None:
    assert derived.valid_symbol("BTC-USD") and not derived.valid_symbol("btc usd") and not derived.valid_symbol("")
    assert derived.valid_instrument("BTC-USD", "kraken") and not derived.valid_instrument("BTC-USD", "Kraken")
    assert derived.valid_timeframes(("tick", "1m", "1h")) and not derived.valid_timeframes(("tick", "1 minute"))
    with pytest.raises(ValidationError):
        derived.snapshot(False, "btc usd", "test", "tick", 10.0, {}, T, T, lineage(1))
    with pytest.raises(ValidationError):
        derived.candle(False, "BTC-USD", "test", "1 minute", T, T, 1.0, 1.0, 1.0, 1.0, 1.0, 1, False, T, T, lineage(1))
    # A processor for a symbol no event may carry never takes the shortcut: its events are refused as before.
    processor = SymbolProcessor(PipelineConfig(candle_timeframes=()), Instrument("btc usd", "test"))
    item = Tick.model_construct(**{**tick(0, 10.0).model_dump(), "symbol": "btc usd"})
    with pytest.raises(ValidationError):
        processor.process(item, lineage(0))


@pytest.mark.parametrize("model", [IndicatorSnapshot, Signal, Candle, DailySummary, SignalOutcome])
def test_the_shortcut_knows_every_field_of_its_event(model: type[Event]) -> None:
    # A field added to an event must be added to its builder: the equality test above would then fail,
    # and this names the culprit.
    built = {
        IndicatorSnapshot: lambda: derived.snapshot(True, "BTC-USD", "test", "tick", 10.0, {"a": 1.0}, T, T, lineage(1)),
        Signal: lambda: derived.signal(True, "0" * 32, "BTC-USD", "test", "tick", "ema_cross", "0" * 16, "x > 1", "SELL",
                                       10.0, {"a": None}, T, T, lineage(1)),
        SignalOutcome: lambda: derived.outcome(True, "1" * 32, "0" * 32, "BTC-USD", "test", "ema_cross", None, "tick",
                                               "BUY", "1m", 10.0, T, 11.0, 0.1, 0.099, 0.001, T, T, lineage(1)),
        Candle: lambda: derived.candle(True, "BTC-USD", "test", "1m", T, T + timedelta(minutes=1), 1.0, 2.0, 0.5, 1.5, 3.0, 4,
                                       False, T, T, lineage(1)),
        DailySummary: lambda: derived.summary(True, "BTC-USD", "test", date(2024, 3, 9), 1.0, 2.0, 0.5, 1.5, 1.2, 1.3, 3.0, 4,
                                              1, 2, True, T, T, lineage(1)),
    }[model]()
    assert type(built) is model
    assert set(built.__dict__) == set(model.model_fields)
    assert_same(built)
