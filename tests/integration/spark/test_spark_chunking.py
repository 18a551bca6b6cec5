"""The chunking design without Spark: plan → route → per-chunk warm-up run equals the sequential run.

These tests drive the functions the Spark job runs (:func:`plan_groups`, and :func:`run_group`
inside ``applyInPandas``) on pandas frames, with the day statistics computed the way the job's
first aggregation computes them and its routing join written again in pandas (the Spark
tests run the real join).
Hypothesis draws irregular multi-day series with gaps, out-of-order and late ticks around
midnights; small indicator periods keep the warm-up (and the test) short.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from processors.core.indicators import IndicatorSpec, MacdSpec
from processors.core.strategy import PipelineConfigs, parse_strategy
from processors.core.timeutil import DAY_US, to_us
from schemas.events import Tick, encode
from spark_jobs.backfill.job import _Configs
from spark_jobs.backfill.plan import (
    DayStat,
    GroupPlan,
    SymbolRange,
    Warmup,
    plan_groups,
    position,
    split_days,
    warmup_periods,
)
from spark_jobs.backfill.rows import EVENT_KINDS
from spark_jobs.backfill.runner import GroupContext, run_group
from tests.integration.spark.compare import differences
from tests.integration.spark.synthetic import reference_events
from tests.support.kafka_tools import Record

SMALL = parse_strategy("""
[indicators]
sma = [4]
ema = [3, 5]
rsi = [3]
macd = { fast = 3, slow = 5, signal = 2 }
bollinger = { period = 4 }
[rules]
rsi_reversal = { period = 3 }
ema_cross = { fast = 3, slow = 5 }
seed_rsi_ema = { rsi_period = 3, ema_period = 3 }
""", syntax="toml")
TOPIC = "ticks"
HORIZONS_MS = (60_000, 300_000)  # signal outcomes across chunk starts: the warm-up holds their signals
FEE = 0.001
START = datetime(2024, 5, 1, 18, 0, tzinfo=UTC)


def test_default_warmup_covers_the_slowest_recurrence():
    spec = IndicatorSpec()
    periods = warmup_periods(spec)
    # RSI(14) (factor 13/14) is the slowest recurrence: 373 steps to 1e-12, after the 50 prices SMA(50) needs.
    assert periods == 50 + math.ceil(math.log(1e-12) / math.log(13 / 14)) == 423
    assert warmup_periods(spec, 1e-6) < periods < warmup_periods(spec, 1e-15)
    assert warmup_periods(IndicatorSpec(ema=(), rsi=(), macd=None)) == IndicatorSpec().sma[-1]
    slow = IndicatorSpec(ema=(200,), macd=MacdSpec(12, 26, 9))
    assert warmup_periods(slow) > 2000, "EMA(200) forgets slowly: (199/201)^t"


def test_days_split_where_the_counts_balance():
    days = [DayStat(day, rows, None, None) for day, rows in enumerate([10, 10, 10, 10, 40, 10, 10])]
    assert split_days(days, 1) == []
    assert split_days(days, 2) == [4]
    assert split_days(days, 3) == [3, 5]
    assert split_days(days[:1], 4) == []


def _series(seed: int, days: float, mean_gap_s: float) -> list[tuple[bytes | None, bytes]]:
    rng = random.Random(seed)  # noqa: S311 - a seeded test series
    moment, price, records = START, 100.0, []
    while moment < START + timedelta(days=days):
        moment += timedelta(seconds=rng.expovariate(1 / mean_gap_s))
        if rng.random() < 0.0005:
            moment += timedelta(hours=rng.choice([1, 2]))  # a quiet spell
        price = max(1.0, price * math.exp(rng.gauss(0, 0.004)))
        when = moment
        roll = rng.random()
        if roll < 0.03:
            when -= timedelta(seconds=rng.uniform(0, 4))  # out of order within grace
        elif roll < 0.05:
            when -= timedelta(seconds=rng.uniform(60, 400))  # late (and sometimes across midnight)
        tick = Tick(symbol="BTC-USD", venue="test", price=round(price, 4), volume=None if roll > 0.97 else rng.uniform(0.1, 2),
                    ts_event=when, ts_init=when, source="test", source_id=str(len(records)))
        records.append((b"BTC-USD@test", encode(tick) if roll < 0.995 else b"{broken"))
    return records


def _day_stats(frame: pd.DataFrame) -> list[DayStat]:
    """What the job's first aggregation computes per UTC day (usable = parseable event time here)."""
    stats = []
    for day, rows in frame.dropna(subset=["ts_us"]).groupby(frame["ts_us"].dropna() // DAY_US):
        stats.append(DayStat(int(day), len(rows), int(rows["pos"].min()), int(rows["pos"].max())))
    return stats


def _produce_ms(records: list[tuple[bytes | None, bytes]]) -> list[int]:
    """Each record's timestamp as a producer stamps it: a second after the newest event time seen so far.

    A real log's record timestamp is its produce time, never long before its tick's event time (the
    processors dead-letter an event time more than 15 min after it as ``timestamp_in_future``).
    """
    newest, stamps = to_us(START) // 1000, []
    for _, value in records:
        try:
            newest = max(newest, to_us(Tick.model_validate_json(value).ts_event) // 1000)
        except ValueError:
            pass
        stamps.append(newest + 1000)
    return stamps


def _frame(records: list[tuple[bytes | None, bytes]]) -> pd.DataFrame:
    ts = []
    for _, value in records:
        try:
            ts.append(to_us(Tick.model_validate_json(value).ts_event))
        except ValueError:
            ts.append(None)
    return pd.DataFrame({
        "key": [key.decode() if key else None for key, _ in records], "partition": 0,
        "offset": range(len(records)), "pos": [position(0, i) for i in range(len(records))],
        "timestamp_ms": _produce_ms(records),
        "value": [value for _, value in records], "ts_us": pd.array(ts, dtype="Int64"),
    })


def _route(frame: pd.DataFrame, plans: list) -> pd.DataFrame:
    """The job's routing join (:func:`spark_jobs.backfill.job.route`), written again in pandas."""
    pieces = []
    ts = frame["ts_us"].astype("Int64").fillna(-(2**62))
    for plan in plans:
        own = frame["pos"].between(plan.emit_from, plan.emit_to)
        if plan.chunk == 0:
            member = own | (frame["pos"] < plan.emit_from)
        else:
            member = own | ((frame["pos"] < plan.emit_from) & (ts >= plan.warm_from_us))
        pieces.append(frame[member].assign(group=plan.group))
    return pd.concat(pieces)


def _chunked_run(frame: pd.DataFrame, chunks: int, warmup: Warmup,
                 from_offset: int) -> tuple[pd.DataFrame, list, list[GroupPlan]]:
    in_range = frame[frame["offset"] >= from_offset]
    symbol = SymbolRange("BTC-USD@test", int(in_range["pos"].min()), int(in_range["pos"].max()), tuple(_day_stats(in_range)))
    plans = plan_groups([symbol], warmup, chunks, slots=2)
    routed = _route(frame, plans)
    configs = _Configs(SMALL, ("1m", "5m"), 5_000, HORIZONS_MS, FEE)
    context = GroupContext(TOPIC, warmup, SMALL.indicator_names(), False, None,
                           frozenset({0}), {0: from_offset})  # the frame starts at offset 0
    outputs = [run_group(rows, next(p for p in plans if p.group == gid), context, configs)
               for gid, rows in routed.groupby("group")]
    result = pd.concat(outputs, ignore_index=True)
    reports = result[result["kind"] == "group"]
    return result[result["kind"] != "group"], reports["detail"].tolist(), plans


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # shrinking takes minutes; the message names the case
@given(seed=st.integers(0, 10_000), chunks=st.integers(1, 5), start_share=st.sampled_from([0.0, 0.3]))
@example(seed=4013, chunks=4, start_share=0.3)  # a chunk whose warm-up window holds several quiet spells: short
def test_chunked_backfill_equals_the_sequential_run(seed, chunks, start_share):
    records = _series(seed, days=4.5, mean_gap_s=25)
    frame = _frame(records)
    periods = max(warmup_periods(SMALL.for_symbol(s).indicators.spec()) for s in ("BTC-USD",))
    warmup = Warmup.for_specs([SMALL.indicators.spec()], [60_000_000, 300_000_000], min_duration_us=12 * 3600 * 10**6)
    assert warmup.periods == periods and warmup.duration_us == 12 * 3600 * 10**6
    from_offset = int(len(records) * start_share)
    events, reports, plans = _chunked_run(frame, chunks, warmup, from_offset)

    # A chunk may honestly report its warm-up short: the series has quiet spells of 1-2 h, and a 12 h warm-up
    # window holding several of them closes fewer candles than the indicators need (seed 4013, 4 chunks, 0.3
    # found one). The report must then say why, and only what it reports exact or converged is held to equality.
    short = []
    for report in map(json.loads, reports):
        assert report["status"] in ("exact", "converged", "short"), report
        if report["status"] == "short":
            assert report["warmup_candles"] < periods or report["warmup_ticks"] < periods, report
            plan = next(p for p in plans if p.group == report["group"])
            short.append((plan.emit_from, plan.emit_to))  # positions = offsets: one partition, from offset 0
    assert len(short) < len(reports), reports  # the first chunk starts at the log's beginning: exact

    def kept(offset: int) -> bool:
        return not any(first <= offset <= last for first, last in short)

    reference = reference_events(
        [Record(TOPIC, 0, i, key, value, stamp)
         for i, ((key, value), stamp) in enumerate(zip(records, _produce_ms(records), strict=True))],
        PipelineConfigs(SMALL, candle_timeframes=("1m", "5m"), grace_ms=5_000, horizons_ms=HORIZONS_MS, fee=FEE))
    for kind in EVENT_KINDS:
        expected = [event for event in reference.between(kind, {0: from_offset}) if kept(event[1])]
        got = events[events["kind"] == kind]
        got = got[got["offset"].map(kept)].sort_values(["offset", "seq"])
        problems = differences(kind, got, expected)
        assert not problems, f"{chunks} chunks, seed {seed}:\n" + "\n".join(problems) + f"\n{reports}"


@pytest.mark.parametrize(("minutes", "expected"), [(10, "short"), (120, "short"), (None, "converged")])
def test_a_warmup_shorter_than_needed_is_reported_short(minutes, expected):
    """10 min: ~24 ticks (< 75 periods); 120 min: enough ticks but 24 five-minute candles; 12 h: both."""
    records = _series(3, days=3, mean_gap_s=25)
    warmup = Warmup.for_specs([SMALL.indicators.spec()], [60_000_000, 300_000_000], min_duration_us=12 * 3600 * 10**6)
    if minutes is not None:
        warmup = Warmup(warmup.periods, minutes * 60_000_000, warmup.longest_candle_us)
    _, reports, _ = _chunked_run(_frame(records), 3, warmup, 0)
    statuses = [json.loads(report)["status"] for report in reports]
    assert statuses[0] == "exact" and len(statuses) == 3  # the first chunk starts at the log's beginning
    assert statuses[1:] == [expected, expected]
