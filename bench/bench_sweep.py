"""Parameter sweep on Spark vs vectorbt: the dual moving-average crossover grid, same bars, same run.

    .venv/bin/python -m bench.bench_sweep [--bars 20000] [--big-bars 1000000] [--quick] [--no-vectorbt]

1. 20,000 one-minute bars of one instrument (a seeded random walk; open = previous close with noise).
2. **Ours**: fast 2..100 × slow 2..100, fast < slow (4,851 combinations), SMA lines, fees 0.1 %, next-bar
   open fills, long-only all-in, on Spark ``local[*]`` (``spark_jobs/sweep``), all results to Parquet.
   Time from submitting the job to the best row read back (session start-up reported apart); peak
   memory = the largest sum of RSS over this process and all its descendants (JVM, Python workers),
   sampled every 50 ms during the sweep.
3. **vectorbt 1.2.0** (bench-only; installed into ``.stack/vectorbt-venv`` by this script because its
   numpy/numba pins are its own): ``MA.run_combs`` + ``Portfolio.from_signals`` with the crossings as
   entries/exits shifted one bar, ``price=open``, ``fees=0.001``, ``init_cash=1`` — next-bar execution, the
   same model. Timed in its own process after a warm-up call on 1,000 bars (numba compilation), peak
   memory = that process's ``ru_maxrss``. Results compared on 200 sampled combinations: trade count equal
   and final equity within 1e-9 relative (ours with ``close_at_end=False``: an open position is marked at
   the last close, as vectorbt values it).
4. **Scale**: the same grid over 1,000,000 bars on ``local[2]`` (goal: within 5 minutes).

Writes nothing itself; ``run(quick)`` (``make bench``) returns the figures; ``main`` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import BenchOutput, Figure, Measure, print_output, vectorbt_python
from spark_jobs.backtest.simulate import SimulationConfig
from spark_jobs.session import build_session
from spark_jobs.settings import SparkJobSettings
from spark_jobs.sweep.grid import combinations, parse_grid
from spark_jobs.sweep.job import SweepRequest, run_sweep
from spark_jobs.sweep.kernel import Bars

GRID = "fast=2..100, slow=2..100"
FEE = 0.001
SAMPLE = 200


def log(message: str) -> None:
    print(f"[bench_sweep] {message}", file=sys.stderr, flush=True)


def make_bars(count: int, seed: int = 7) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, count)))
    open_ = np.concatenate([[close[0]], close[:-1]]) * (1.0 + rng.normal(0.0, 2e-4, count))
    return Bars(np.arange(count, dtype=np.int64) * 60_000_000 + 1_704_067_200_000_000, open_, close)


def _tree_rss(root: int) -> int:
    """Σ RSS (bytes) of ``root`` and every descendant, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            pid = int(entry)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


class PeakMemory:
    """Samples the process tree's RSS every 50 ms while active; ``peak`` in bytes."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            self._stop.wait(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss(os.getpid()))


def ours(bars: Bars, master: str, folder: Path, label: str) -> dict[str, Any]:
    settings = SparkJobSettings(spark_master=master)
    session = build_session(settings, f"bench-sweep-{label}")
    try:
        spark = session.spark
        spark.range(1).count()
        combos = combinations(parse_grid(GRID), ("fast", "slow"))
        config = SimulationConfig(fee=FEE, close_at_end=False)
        warm = SweepRequest(combos[:8], config, metric="total_return")
        run_sweep(spark, bars.slice(0, 1000), warm, None)  # numba's cache and the Python workers, once
        request = SweepRequest(combos, config, metric="total_return")
        with PeakMemory() as memory:
            began = time.perf_counter()
            results = run_sweep(spark, bars, request, str(folder / f"sweep-{label}.parquet"))
            seconds = time.perf_counter() - began
        best = {key: float(value) for key, value in results.iloc[0].to_dict().items()}
        log(f"{label}: {len(combos)} combinations over {len(bars):,} bars in {seconds:.1f}s "
            f"({len(combos) / seconds:,.0f}/s), peak {memory.peak / 2**30:.2f} GiB; best {best}")
        return {"combinations": len(combos), "bars": len(bars), "seconds": seconds, "rate": len(combos) / seconds,
                "peak_rss_bytes": memory.peak, "startup_s": session.startup_s, "master": master, "best": best,
                "results": results}
    finally:
        session.stop()


VECTORBT_SCRIPT = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
import vectorbt as vbt

data = np.load(sys.argv[1])
sample = json.loads(sys.argv[2])
fee = float(sys.argv[3])

def run(open_, close):
    close = pd.Series(close)
    open_ = pd.Series(open_)
    fast, slow = vbt.MA.run_combs(close, window=np.arange(2, 101), r=2, short_names=["fast", "slow"])
    entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
    exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
    return vbt.Portfolio.from_signals(close, entries, exits, price=open_, fees=fee, init_cash=1.0, freq="1min")

run(data["open"][:1000], data["close"][:1000])  # compile
began = time.perf_counter()
portfolio = run(data["open"], data["close"])
trades = portfolio.trades.count()
values = portfolio.final_value()
seconds = time.perf_counter() - began
columns = list(values.index)
picked = {}
for fast, slow in sample:
    key = (fast, slow)
    picked[f"{fast},{slow}"] = [int(trades[key]), float(values[key])]
print(json.dumps({"seconds": seconds, "combinations": len(columns),
                  "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "sample": picked, "version": vbt.__version__}))
"""


def vectorbt(bars: Bars, sample: list[tuple[int, int]], folder: Path) -> dict[str, Any]:
    python = vectorbt_python(log)
    data = folder / "bars.npz"
    np.savez(data, open=bars.open, close=bars.close)
    done = subprocess.run(  # noqa: S603
        [str(python), "-c", VECTORBT_SCRIPT, str(data), json.dumps(sample), str(FEE)],
        check=True, capture_output=True, text=True)
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    found["rate"] = found["combinations"] / found["seconds"]
    log(f"vectorbt {found['version']}: {found['combinations']} combinations in {found['seconds']:.1f}s, "
        f"peak {found['max_rss_bytes'] / 2**30:.2f} GiB")
    return found


def compare(results: Any, sample: dict[str, list[float]]) -> dict[str, Any]:
    """Trade counts equal and final equity within 1e-9 relative on the sampled combinations."""
    indexed = results.set_index(["fast", "slow"])
    worst, count_mismatches = 0.0, []
    for key, (trades, value) in sample.items():
        fast, slow = (float(part) for part in key.split(","))
        row = indexed.loc[(fast, slow)]
        if int(row["trades"]) != trades:
            count_mismatches.append((key, int(row["trades"]), trades))
        worst = max(worst, abs(float(row["final_equity"]) - value) / max(abs(value), 1e-300))
    return {"compared": len(sample), "trade_count_mismatches": count_mismatches, "max_rel_diff_final_equity": worst,
            "equal": not count_mismatches and worst <= 1e-9}


def _checkpoint(results: dict[str, Any], out: Path | None) -> None:
    """Write what is measured so far (a long run stopped later still leaves its finished stages)."""
    if out is not None:
        partial = BenchOutput(params={"partial": True}, figures=figures(results), details=results)
        out.write_text(partial.model_dump_json(indent=1) + "\n")


def measure(bars_count: int, big_bars: int, with_vectorbt: bool, out: Path | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "grid": GRID, "fee": FEE}
    bars = make_bars(bars_count)
    rng = np.random.default_rng(3)
    combos = combinations(parse_grid(GRID), ("fast", "slow"))
    sample = [(int(c["fast"]), int(c["slow"])) for c in (combos[i] for i in rng.choice(len(combos), SAMPLE, False))]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as scratch:
        folder = Path(scratch)
        mine = ours(bars, "local[*]", folder, "small")
        frame = mine.pop("results")
        results["ours"] = mine
        _checkpoint(results, out)
        if with_vectorbt:
            theirs = vectorbt(bars, sample, folder)
            results["vectorbt"] = {key: value for key, value in theirs.items() if key != "sample"}
            results["equality"] = compare(frame, theirs["sample"])
            log(f"equality on {SAMPLE} combinations: {results['equality']}")
            _checkpoint(results, out)
        if big_bars:
            big = ours(make_bars(big_bars, seed=11), "local[2]", folder, "big")
            big.pop("results")
            results["big"] = big
    results["load_average_end"] = os.getloadavg()
    results["self_max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return results


def figures(results: dict[str, Any]) -> list[Figure]:
    mine = results["ours"]
    found = []
    if "vectorbt" in results:
        theirs = results["vectorbt"]
        found += [
            Figure(name="MA-crossover sweep rate (4,851 combos × 20k bars)", unit="combinations/s", better="higher",
                   ours=Measure(label=f"Spark sweep, {mine['master']}", value=mine["rate"]),
                   baseline=Measure(label="vectorbt 1.2.0 run_combs + from_signals", value=theirs["rate"]),
                   how="same bars, same run; both warmed (numba compiled)", goal=1.0),
            Figure(name="MA-crossover sweep peak memory", unit="GiB", better="lower",
                   ours=Measure(label="driver + JVM + Python workers (RSS)", value=mine["peak_rss_bytes"] / 2**30),
                   baseline=Measure(label="vectorbt process (max RSS)", value=theirs["max_rss_bytes"] / 2**30),
                   how="sampled every 50 ms / ru_maxrss", goal=4.0),
        ]
    if "big" in results:
        big = results["big"]
        found.append(Figure(
            name="same grid over 1M bars (local[2])", unit="s", better="lower",
            ours=Measure(label="Spark sweep, streaming combinations", value=big["seconds"]),
            baseline=Measure(label="the 5-minute goal", value=300.0), how="one run", goal=1.0))
    return found


def run(quick: bool) -> BenchOutput:
    bars, big = (20_000, 0) if quick else (20_000, 1_000_000)
    results = measure(bars, big, with_vectorbt=True)
    return BenchOutput(params={"bars": bars, "big_bars": big, "grid": GRID, "fee": FEE},
                       figures=figures(results), details=results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--big-bars", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="no 1M-bar run")
    parser.add_argument("--no-vectorbt", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the BenchOutput JSON here")
    args = parser.parse_args(argv)
    results = measure(args.bars, 0 if args.quick else args.big_bars, not args.no_vectorbt, args.out)
    output = BenchOutput(params={"bars": args.bars, "big_bars": 0 if args.quick else args.big_bars, "grid": GRID,
                                 "fee": FEE}, figures=figures(results), details=results)
    return print_output(output, args.out)


if __name__ == "__main__":
    sys.exit(main())
