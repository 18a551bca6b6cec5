"""The backfill's per-group step in one process: the columnar path (kernel) vs the per-tick path, same group.

    .venv/bin/python -m bench.bench_backfill_group [--ticks 200000] [--rounds 3] [--out FILE]

One symbol's log (one tick a second, default strategy, 1m candles, the default scorecard horizons, a few
out-of-order ticks) is run
through :func:`spark_jobs.backfill.runner.run_group` both ways, interleaved, ``rounds`` times each;
the figure is the best round's CPU time per tick of this process (``time.process_time``: less
sensitive than wall time to other processes on a shared machine, not insensitive — load recorded).
The two frames are checked equal (1e-12 on doubles, exact elsewhere) before anything is timed.
No Kafka, no Spark: the in-process ceiling of what the Spark backfill's recompute step gains.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import BenchOutput, Figure, Measure, print_output
from processors.core.strategy import DEFAULT_STRATEGY
from processors.runtime.settings import ScorecardSettings
from schemas.events import Tick, encode
from spark_jobs.backfill.job import _Configs
from spark_jobs.backfill.plan import GroupPlan, Warmup, position
from spark_jobs.backfill.runner import GroupContext, run_group

START = datetime(2024, 1, 1, tzinfo=UTC)


def make_group(ticks: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    prices = np.round(64_000 * np.exp(np.cumsum(rng.normal(0, 3e-4, ticks))), 2)
    values = []
    for index, price in enumerate(prices.tolist()):
        moment = START + timedelta(seconds=index)
        if rng.random() < 0.01:
            moment -= timedelta(seconds=2)  # out of order within grace
        values.append(encode(Tick(symbol="BTC-USD", venue="bench", price=price, volume=float(rng.uniform(0.1, 2)), ts_event=moment,
                                  ts_init=moment, source="bench", source_id=str(index))))
    return pd.DataFrame({"partition": 0, "offset": range(ticks), "pos": [position(0, i) for i in range(ticks)],
                         "timestamp_ms": [1_704_067_200_000 + i * 1000 for i in range(ticks)], "value": values,
                         "record_key": [b"BTC-USD@bench"] * ticks})


def measure(ticks: int, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {"ticks": ticks, "rounds": rounds, "load_average_start": os.getloadavg()}
    rows = make_group(ticks)
    warmup = Warmup.for_specs([DEFAULT_STRATEGY.indicators.spec()], [60_000_000])
    plan = GroupPlan(group=0, key="BTC-USD@bench", chunk=0, emit_from=0, emit_to=position(0, ticks), start_us=None,
                     warm_from_us=None, rows=ticks)
    context = GroupContext("ticks", warmup, DEFAULT_STRATEGY.indicator_names(), False, None, frozenset({0}), None)
    # The live processor's scorecards as the Spark job runs them (SCORECARD_HORIZONS' default: 1m,5m,1h,1d):
    # ~0.7 outcome rows per tick beside the snapshot (before 2026-12-06 this bench ran without them).
    scorecards = ScorecardSettings()
    configs = _Configs(DEFAULT_STRATEGY, ("1m",), 5_000, scorecards.horizons_ms, scorecards.scorecard_fee)
    columnar = run_group(rows, plan, context, configs, columnar=True)
    per_tick = run_group(rows, plan, context, configs, columnar=False)
    pd.testing.assert_frame_equal(columnar, per_tick, check_exact=False, rtol=1e-12, atol=0)
    times: dict[str, list[float]] = {"columnar": [], "per_tick": []}
    for _ in range(rounds):
        for label, flag in (("columnar", True), ("per_tick", False)):
            began = time.process_time()
            run_group(rows, plan, context, configs, columnar=flag)
            times[label].append(time.process_time() - began)
    results["cpu_s"] = times
    results["us_per_tick"] = {label: min(values) / ticks * 1e6 for label, values in times.items()}
    results["load_average_end"] = os.getloadavg()
    return results


def figures(results: dict[str, Any]) -> list[Figure]:
    per_tick = results["us_per_tick"]
    return [Figure(name="backfill group step (one symbol, default strategy, 1m, scorecards)", unit="µs CPU per tick",
                   better="lower", ours=Measure(label="columnar: tick timeframe from the kernel", value=per_tick["columnar"]),
                   baseline=Measure(label="per-tick core step", value=per_tick["per_tick"]),
                   how=f"best of {results['rounds']} interleaved rounds, process CPU time, frames checked equal")]


def run(quick: bool) -> BenchOutput:
    ticks = 50_000 if quick else 200_000
    results = measure(ticks, 3)
    return BenchOutput(params={"ticks": ticks}, figures=figures(results), details=results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = measure(args.ticks, args.rounds)
    return print_output(BenchOutput(params={"ticks": args.ticks}, figures=figures(results), details=results), args.out)


if __name__ == "__main__":
    sys.exit(main())
