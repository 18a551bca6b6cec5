"""The backfill gives each record its partition's stream time, so it writes what the stream processor writes in any order.

Pure (no JVM), as test_spark_record_keys.py: the job's per-record clock (``_ClockTimes``, the body of its
``pandas_udf``) and its prefix maximum computed on pandas, then :func:`run_group` per instrument as
``applyInPandas`` hands the rows, on both paths (columnar and per tick). The reference is the stream
processor's logic (:func:`synthetic.reference_events` with ``stream_time=True``: partition clocks, quiet
instruments advanced by the others' records). A close is written after another record there and after
the instrument's own next record here, so each instrument's events of each kind are compared in order
(docs/core.md, "Who agrees with whom").
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.core.pipeline import PipelineConfig, SymbolProcessor
from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs
from processors.core.timeutil import to_us
from schemas.events import Lineage, Tick, encode
from schemas.instruments import Instrument
from schemas.timeframes import TICK
from spark_jobs.backfill.columnar import in_order_accepted
from spark_jobs.backfill.job import _ClockTimes, _Configs
from spark_jobs.backfill.plan import GroupPlan, Warmup, position
from spark_jobs.backfill.rows import EVENT_KINDS
from spark_jobs.backfill.runner import GroupContext, run_group
from tests.integration.spark.synthetic import reference_events
from tests.support.kafka_tools import Record

TOPIC = "ticks"
START = datetime(2024, 5, 1, 23, 40, tzinfo=UTC)  # the log crosses a UTC midnight
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")


def _records(seed: int, count: int = 600) -> list[Record]:
    """Three instruments of one venue on one partition; one in ten ticks moved back in time (out of order within
    grace, late for its instrument, or on time for its instrument but late for the partition), a few out of
    bounds, and one instrument quiet for minutes at a time."""
    rng = random.Random(seed)
    seconds, records = 0.0, []
    for offset in range(count):
        seconds += rng.choice([0.0, 0.5, 2.0, 5.0, 20.0, 90.0])
        symbol = rng.choice(SYMBOLS[:2] * 4 + SYMBOLS[2:])
        moment = START + timedelta(seconds=seconds - (rng.choice([1.0, 4.0, 30.0, 70.0, 200.0])
                                                      if rng.random() < 0.1 else 0.0))
        price = round(100 + rng.gauss(0, 3), 2) if rng.random() > 0.01 else 5e12  # out of bounds: never a clock
        value = encode(Tick(symbol=symbol, venue="test", price=price, volume=rng.choice([None, 1.5]),
                            ts_event=moment, ts_init=moment, source="test", source_id=str(offset)))
        stamp = int((START + timedelta(seconds=seconds + 1)).timestamp() * 1000)
        records.append(Record(TOPIC, 0, offset, f"{symbol}@test".encode(), value, stamp))
    return records


def _frame(records: list[Record], config: PipelineConfig) -> tuple[pd.DataFrame, int]:
    """The records as the job's frame, each with ``stream_time``: the highest clock time of the earlier records
    (the job's window over ``_ClockTimes``; one venue here), -1 for none; and the stream time at the end."""
    frame = pd.DataFrame({
        "record_key": [r.key for r in records], "partition": [r.partition for r in records],
        "offset": [r.offset for r in records], "pos": [position(r.partition, r.offset) for r in records],
        "timestamp_ms": [r.timestamp_ms for r in records], "value": [r.value for r in records],
    })
    clock = _ClockTimes(TOPIC, config, None)(frame["value"], frame["record_key"], frame["timestamp_ms"],
                                             frame["partition"], frame["offset"])
    frame["stream_time"] = clock.where(clock >= 0).cummax().shift(1).fillna(-1).astype("int64")
    return frame, int(clock.max())


def _run(records: list[Record], configs: _Configs, *, columnar: bool, with_events: bool) -> pd.DataFrame:
    """Every instrument's group (whole log, one chunk) as the job runs them."""
    frame, end = _frame(records, configs("BTC-USD"))
    keys = sorted(frame["record_key"].unique())
    context = GroupContext(TOPIC, Warmup(periods=10, duration_us=3600 * 10**6), DEFAULT_STRATEGY.indicator_names(),
                           with_events, None, frozenset({0}), stream_end={(0, "test"): end},
                           last_groups=frozenset(range(len(keys))))
    outputs = []
    for number, key in enumerate(keys):
        rows = frame[frame["record_key"] == key]
        plan = GroupPlan(group=number, key=key.decode(), chunk=0, emit_from=0, emit_to=int(frame["pos"].max()),
                         start_us=None, warm_from_us=None, rows=len(rows))
        outputs.append(run_group(rows, plan, context, configs, columnar=columnar))
    result = pd.concat(outputs, ignore_index=True)
    return result[result["kind"] != "group"].reset_index(drop=True)


TIMEFRAMES = ("1m", "5m")


def _configs() -> _Configs:
    return _Configs(DEFAULT_STRATEGY, TIMEFRAMES, 5_000)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_disordered_partition_backfills_to_what_the_stream_processor_writes(seed):
    records = _records(seed)
    ours = _run(records, _configs(), columnar=False, with_events=True)
    pipeline = PipelineConfigs(DEFAULT_STRATEGY, candle_timeframes=TIMEFRAMES, grace_ms=5_000)
    reference = reference_events(records, pipeline, stream_time=True)
    for kind in EVENT_KINDS:
        got = ours[ours["kind"] == kind].sort_values(["offset", "seq"])
        if kind == "dead_letters":  # written by their own record: by position
            assert got["event"].tolist() == [encode(event).decode() for *_, event in sorted(reference.dead_letters,
                                                                                            key=lambda x: x[:3])]
            continue
        expected: dict[str, list[str]] = defaultdict(list)
        for *_, event in sorted(getattr(reference, kind), key=lambda item: item[:3]):
            expected[event.symbol].append(encode(event).decode())
        found: dict[str, list[str]] = defaultdict(list)
        for symbol, event in zip(got["symbol"], got["event"], strict=True):
            found[symbol].append(event)
        assert dict(found) == dict(expected), kind
    # the log holds ticks that only the partition's stream time makes late, or this would prove nothing
    own_time = reference_events(records, pipeline)
    assert len(reference.dead_letters) > len(own_time.dead_letters)


@pytest.mark.parametrize("seed", [4, 5])
def test_with_stream_times_the_columnar_group_equals_the_per_tick_group(seed):
    records = _records(seed)
    columnar = _run(records, _configs(), columnar=True, with_events=False)
    per_tick = _run(records, _configs(), columnar=False, with_events=False)
    pd.testing.assert_frame_equal(columnar, per_tick, check_exact=False, rtol=1e-12, atol=0)


def _applied(config: PipelineConfig, ticks: list[Tick], stream_times: list[int | None]) -> list[bool]:
    processor = SymbolProcessor(config, Instrument(ticks[0].symbol, ticks[0].venue))
    found = []
    for offset, (item, stream_time) in enumerate(zip(ticks, stream_times, strict=True)):
        output = processor.process(item, Lineage(topic=TOPIC, partition=0, offset=offset), stream_time)
        found.append(any(snapshot.timeframe == TICK for snapshot in output.snapshots))
    return found


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), timeframes=st.sampled_from([(), ("1m",), ("1m", "5m")]))
def test_the_columnar_path_knows_which_ticks_the_stream_time_makes_late(seed, timeframes):
    """``in_order_accepted`` replays the step's decisions on event times: the ticks it names are exactly those the
    step applies to the tick timeframe, given the same stream times (any, as long as they never go back)."""
    rng = random.Random(seed)
    config = PipelineConfig(candle_timeframes=timeframes, grace_ms=5_000)
    ticks, times, stream = [], [], None
    seconds = 0.0
    for index in range(300):
        seconds += rng.choice([0.0, 1.0, 10.0, 50.0, 400.0])
        moment = START + timedelta(seconds=seconds - rng.choice([0.0, 0.0, 3.0, 40.0, 120.0]))
        price = 100.0 if rng.random() > 0.02 else 5e12
        ticks.append(Tick(symbol="BTC-USD", venue="test", price=price, volume=1.0, ts_event=moment, ts_init=moment,
                          source="test", source_id=str(index)))
        if rng.random() < 0.5:  # the other instruments moved the partition's clock on
            ahead = to_us(START + timedelta(seconds=seconds + rng.choice([0.0, 30.0, 300.0])))
            stream = ahead if stream is None or ahead > stream else stream
        times.append(stream)
    stamps = [to_us(item.ts_event) for item in ticks]
    valid = [config.min_price <= item.price <= config.max_price for item in ticks]
    assert in_order_accepted(config, stamps, valid, times) == _applied(config, ticks, times)
