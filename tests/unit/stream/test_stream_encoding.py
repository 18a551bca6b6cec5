"""The processor's fast JSON for derived events (processors/stream/encoding.py) is ``schemas.events.encode``.

Byte for byte, over (1) events built by the validated constructors from random field values
spanning every type's whole range (any finite float, datetimes from year 1 to 9999 with any
microsecond, dates, any text in the free-text field, big offsets) and (2) everything the
pipeline emits over random series. What orjson cannot write (a lone surrogate, an int beyond
64 bits) gives exactly what ``encode`` gives (its bytes or its error). The Lineage built from a
consumer position equals the validated one.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.core.pipeline import PipelineConfig, SymbolProcessor
from processors.stream.encoding import encode_derived, lineage_of
from schemas.events import (
    Candle,
    DailySummary,
    Event,
    IndicatorSnapshot,
    Lineage,
    Signal,
    SignalOutcome,
    Tick,
    encode,
)
from schemas.instruments import VENUE_PATTERN, Instrument
from schemas.symbols import NORMALIZED_SYMBOL_PATTERN
from schemas.timeframes import TIMEFRAME_PATTERN

FLOATS = st.floats(allow_nan=False, allow_infinity=False)
POSITIVE = st.one_of(st.floats(min_value=0, exclude_min=True, allow_infinity=False),
                     st.sampled_from([5e-324, 1e-12, 1e-5, 0.1, 1.0, 1e15, 1e16, 1e17, 1e21, 1e22, 1.7976931348623157e308]))
NON_NEGATIVE = st.one_of(st.just(0.0), st.just(-0.0), POSITIVE)
MOMENTS = st.datetimes(timezones=st.sampled_from([UTC]))
SYMBOLS = st.from_regex(NORMALIZED_SYMBOL_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 32)
TIMEFRAMES = st.from_regex(TIMEFRAME_PATTERN, fullmatch=True)
VENUES = st.from_regex(VENUE_PATTERN, fullmatch=True)
OFFSETS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
LINEAGES = st.builds(Lineage, topic=st.text(st.characters(exclude_categories=("Cs",))), partition=OFFSETS,
                     offset=OFFSETS)
VALUES = st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
                         st.one_of(st.none(), FLOATS, st.integers(-(2**53), 2**53)), max_size=14)

SNAPSHOTS = st.builds(IndicatorSnapshot, symbol=SYMBOLS, venue=VENUES, timeframe=TIMEFRAMES, price=POSITIVE, values=VALUES,
                      ts_event=MOMENTS, ts_init=MOMENTS, lineage=LINEAGES)
STRATEGIES = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,63}", fullmatch=True)
VERSIONS = st.from_regex(r"[0-9a-f]{16}", fullmatch=True)
SIGNALS = st.builds(Signal, signal_id=st.from_regex(r"[0-9a-f]{32}", fullmatch=True), symbol=SYMBOLS,
                    venue=VENUES, timeframe=TIMEFRAMES, rule=st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True),
                    strategy=STRATEGIES, strategy_version=st.one_of(st.none(), VERSIONS),
                    condition=st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cs",)), max_size=200)),
                    side=st.sampled_from(["BUY", "SELL"]), price=POSITIVE, indicators=VALUES, ts_event=MOMENTS,
                    ts_init=MOMENTS, lineage=LINEAGES)
OUTCOMES = st.builds(SignalOutcome, outcome_id=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
                     signal_id=st.from_regex(r"[0-9a-f]{32}", fullmatch=True), symbol=SYMBOLS, venue=VENUES,
                     strategy=STRATEGIES, strategy_version=st.one_of(st.none(), VERSIONS), timeframe=TIMEFRAMES,
                     side=st.sampled_from(["BUY", "SELL"]),
                     horizon=st.from_regex(r"[1-9][0-9]{0,8}(ms|s|m|h|d)", fullmatch=True), signal_price=POSITIVE,
                     signal_ts=MOMENTS, price=POSITIVE, return_gross=FLOATS, return_net=FLOATS,
                     fee=st.floats(0, 0.5), ts_event=MOMENTS, ts_init=MOMENTS, lineage=LINEAGES)
CANDLES = st.builds(Candle, symbol=SYMBOLS, venue=VENUES, timeframe=TIMEFRAMES, ts_open=MOMENTS, ts_close=MOMENTS, open=POSITIVE,
                    high=POSITIVE, low=POSITIVE, close=POSITIVE, volume=NON_NEGATIVE,
                    trade_count=st.integers(1, 2**63 - 1), ts_event=MOMENTS, ts_init=MOMENTS, lineage=LINEAGES)
SUMMARIES = st.builds(DailySummary, symbol=SYMBOLS, venue=VENUES, date=st.dates(), open=POSITIVE, high=POSITIVE, low=POSITIVE,
                      close=POSITIVE, mean_price=POSITIVE, vwap=st.one_of(st.none(), POSITIVE), volume=NON_NEGATIVE,
                      tick_count=st.integers(1, 2**63 - 1), buy_count=st.integers(0, 2**63 - 1),
                      sell_count=st.integers(0, 2**63 - 1), final=st.booleans(), ts_event=MOMENTS, ts_init=MOMENTS,
                      lineage=LINEAGES)


@settings(max_examples=400, deadline=None)
@given(event=st.one_of(SNAPSHOTS, SIGNALS, CANDLES, SUMMARIES, OUTCOMES))
def test_any_derived_event_encodes_to_the_same_bytes(event: Event) -> None:
    assert encode_derived(event) == encode(event)


def test_every_event_of_a_pipeline_run_encodes_to_the_same_bytes() -> None:
    rng = random.Random(11)
    processor = SymbolProcessor(PipelineConfig(candle_timeframes=("1m", "5m")), Instrument("BTC-USD", "test"))
    start = datetime(2024, 3, 9, 23, 30, 0, 123, tzinfo=UTC)
    price, seen = 64_000.0, set()
    for n in range(5_000):
        price *= math.exp(rng.gauss(0, 1e-3))
        moment = start + timedelta(milliseconds=700 * n + rng.randrange(1000))
        item = Tick(symbol="BTC-USD", venue="test", price=price, volume=rng.choice([None, rng.lognormvariate(0, 3)]),
                    ts_event=moment, ts_init=moment + timedelta(microseconds=rng.randrange(10**6)),
                    source="test", source_id=str(n))
        output = processor.process(item, lineage_of("stockstream.ticks", 3, 10**12 + n))
        for event in (*output.snapshots, *output.candles, *output.signals, *output.summaries):
            assert encode_derived(event) == encode(event)
            seen.add(type(event))
    assert seen == {IndicatorSnapshot, Candle, Signal, DailySummary}


def test_what_orjson_refuses_is_left_to_encode() -> None:
    moment = datetime(2024, 3, 9, tzinfo=UTC)
    huge = IndicatorSnapshot(symbol="BTC-USD", venue="test", timeframe="tick", price=1.0, values={"a": 1.0}, ts_event=moment,
                             ts_init=moment, lineage=Lineage(topic="t", partition=0, offset=2**70))
    assert encode_derived(huge) == encode(huge)
    big_value = huge.model_copy(update={"values": {"a": 2**65}})
    assert encode_derived(big_value) == encode(big_value)
    lone = huge.model_copy(update={"lineage": Lineage.model_construct(topic="\ud800", partition=0, offset=1)})
    with pytest.raises(Exception) as expected:  # noqa: PT011 - whatever encode raises, encode_derived raises
        encode(lone)
    with pytest.raises(type(expected.value)):
        encode_derived(lone)


@given(topic=st.text(), partition=OFFSETS, offset=OFFSETS)
def test_the_lineage_of_a_consumer_position_equals_the_validated_one(topic: str, partition: int, offset: int) -> None:
    built, reference = lineage_of(topic, partition, offset), Lineage(topic=topic, partition=partition, offset=offset)
    assert built == reference
    assert built.model_fields_set == reference.model_fields_set
    assert list(built.__dict__.items()) == list(reference.__dict__.items())
    assert built.model_dump() == reference.model_dump()


@pytest.mark.parametrize("partition", ["0", True, 0.0])
def test_a_lineage_from_anything_but_a_consumer_position_is_validated(partition: object) -> None:
    built = lineage_of("t", partition, 1)  # type: ignore[arg-type]
    assert built == Lineage(topic="t", partition=partition, offset=1)  # type: ignore[arg-type]
    assert type(built.partition) is int
    with pytest.raises(ValueError, match="partition"):
        lineage_of("t", "zero", 1)  # type: ignore[arg-type]
