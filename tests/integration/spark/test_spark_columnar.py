"""The backfill's columnar path (tick timeframe from the vectorized kernel) gives the per-tick path's frame.

No Spark: :func:`run_group` on pandas frames, as in test_spark_chunking.py, whose irregular series
(gaps, out-of-order, late and cross-midnight ticks, volume-less ticks, broken records) are reused.
Every column equal — strings, ids, positions, sequence numbers, dates, times, counts exactly; doubles
within 1e-12 relative (SMA/Bollinger re-derive window sums with a compensated sum where the engine
uses ``math.fsum``: ULPs) — and in the same row order.
"""

from __future__ import annotations

import pandas as pd
import pytest

from processors.core.strategy import DEFAULT_STRATEGY
from spark_jobs.backfill.job import _Configs
from spark_jobs.backfill.plan import SymbolRange, Warmup, plan_groups
from spark_jobs.backfill.runner import GroupContext, run_group
from tests.integration.spark.test_spark_chunking import SMALL, TOPIC, _day_stats, _frame, _route, _series


def _both_paths(strategy, timeframes, seed, chunks):
    frame = _frame(_series(seed, days=3.5, mean_gap_s=8))
    symbol = SymbolRange("BTC-USD@test", int(frame["pos"].min()), int(frame["pos"].max()), tuple(_day_stats(frame)))
    warmup = Warmup.for_specs([strategy.indicators.spec()], [60_000_000], min_duration_us=3600 * 10**6)
    plans = plan_groups([symbol], warmup, chunks, slots=2)
    configs = _Configs(strategy, timeframes, 5_000)
    context = GroupContext(TOPIC, warmup, strategy.indicator_names(), False, None, frozenset({0}), {0: 0})
    for group, rows in _route(frame, plans).groupby("group"):
        plan = next(p for p in plans if p.group == group)
        yield (run_group(rows, plan, context, configs, columnar=True),
               run_group(rows, plan, context, configs, columnar=False))


@pytest.mark.parametrize(("strategy", "timeframes", "seed", "chunks"), [
    (DEFAULT_STRATEGY, ("1m",), 11, 1),
    (DEFAULT_STRATEGY, ("1m", "5m"), 12, 3),
    (SMALL, ("1m", "5m"), 13, 2),
    (SMALL, (), 14, 2),
])
def test_columnar_group_equals_the_per_tick_group(strategy, timeframes, seed, chunks):
    compared = 0
    for columnar, per_tick in _both_paths(strategy, timeframes, seed, chunks):
        assert list(columnar.columns) == list(per_tick.columns)
        assert dict(columnar.dtypes) == dict(per_tick.dtypes)
        assert len(columnar) == len(per_tick)
        assert (per_tick["kind"] == "signals").sum() > 10, "the series must fire signals"
        pd.testing.assert_frame_equal(columnar, per_tick, check_exact=False, rtol=1e-12, atol=0)
        exact = [name for name, kind in zip(columnar.columns, columnar.dtypes, strict=True) if kind != "Float64"]
        pd.testing.assert_frame_equal(columnar[exact], per_tick[exact], check_exact=True)
        compared += len(per_tick)
    assert compared > 10_000
