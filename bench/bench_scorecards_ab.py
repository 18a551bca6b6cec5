"""What strategies' signal labels and scorecard outcomes cost the processor per tick: this checkout against a git ref.

    .venv/bin/python -m bench.bench_scorecards_ab [--ref main] [--ticks 20000] [--symbols 10] [--rounds 5]

Like bench/bench_venues_handler.py (the stream processor's ``TickHandler.handle`` in-process over a
real Quix in-memory store, default strategy, 1m candles, checkpoints every 1000 records), but every
side reads the same instrument-keyed (v2) log. Sides, alternated ``--rounds`` times, each in a
subprocess whose ``PYTHONPATH`` is its code: ``baseline`` (the ref), ``no_outcomes`` (this checkout,
``SCORECARD_HORIZONS`` empty: only the Signal v3 labels) and ``outcomes`` (this checkout, the
default horizons 1m,5m,1h,1d). Each side's figure is the minimum CPU µs per tick over its rounds
(the machine is shared); every run records the load average. Writes
``bench/results/<date>-scorecards-ab.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_venues_ab import REPO, RESULTS, backlogs
from bench.common import machine

WORKER = r'''
import json, sys, time
from dataclasses import dataclass
from prometheus_client import CollectorRegistry
from quixstreams.state.memory import MemoryStore
from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs
from processors.stream.handler import OutputTopics, TickHandler
from processors.stream.metrics import ProcessMetrics
from processors.stream.states import SymbolStates

@dataclass(frozen=True)
class Named:
    name: str

records = [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in json.load(open(sys.argv[1]))]
horizons = tuple(int(h) for h in sys.argv[2].split(",") if h)
extra = {"outcomes": Named("signals.outcomes")} if "outcomes" in OutputTopics.__dataclass_fields__ else {}
outputs = OutputTopics(indicators=Named("indicators"), signals=Named("signals"),
                       candles={"1m": Named("candles.1m")}, aggregates_daily=Named("aggregates.daily"),
                       dead_letters=Named("ticks.dlq"), **extra)
metrics = ProcessMetrics(CollectorRegistry())
pipeline = {"candle_timeframes": ("1m",), "grace_ms": 5_000}
if horizons:
    pipeline["horizons_ms"] = horizons
states = SymbolStates(PipelineConfigs(DEFAULT_STRATEGY, **pipeline), metrics)
handler = TickHandler(states, outputs, metrics, now=lambda: 1_714_521_600.0)
store = MemoryStore("pipeline", "ticks")
store.assign_partition(0)
transaction = store.start_partition_transaction(0)
emitted = 0
began = time.process_time()
for offset, (key, value) in enumerate(records):
    emitted += len(handler.handle(value, key, 1_714_521_600_000, transaction, "ticks", 0, offset))
    if offset % 1000 == 999:
        states.flush()
        transaction.prepare()
        transaction.flush()
        transaction = store.start_partition_transaction(0)
spent = time.process_time() - began
print(json.dumps({"cpu_us_per_tick": round(spent / len(records) * 1e6, 2), "emitted": emitted,
                  "produced": dict(metrics.hot.produced)}))
'''
HORIZONS = {"baseline": "", "no_outcomes": "", "outcomes": "60000,300000,3600000,86400000"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", default="main")
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    where = machine()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.ref], capture_output=True, text=True,  # noqa: S603, S607
                            check=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,  # noqa: S603, S607
                          check=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="bench-scorecards-"))
    baseline = work / "baseline"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), commit],  # noqa: S603, S607
                   check=True, capture_output=True)
    runs: list[dict] = []
    try:
        _, records = backlogs(args.ticks, args.symbols)
        log = work / "v2.json"
        log.write_text(json.dumps([(k.hex(), v.hex()) for k, v in records]))
        (work / "worker.py").write_text(WORKER)
        code = {"baseline": baseline, "no_outcomes": REPO, "outcomes": REPO}
        sides = list(code)
        for round_number in range(args.rounds):
            for side in sides[round_number % 3:] + sides[:round_number % 3]:
                out = subprocess.run([sys.executable, str(work / "worker.py"), str(log), HORIZONS[side]],  # noqa: S603
                                     cwd=code[side], env={**os.environ, "PYTHONPATH": str(code[side])},
                                     capture_output=True, text=True, check=True, timeout=1800)
                found = json.loads(out.stdout.strip().splitlines()[-1])
                found.update(side=side, round=round_number,
                             load_average_1m_5m_15m=[round(value, 2) for value in os.getloadavg()])
                runs.append(found)
                print(found, flush=True)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)],  # noqa: S603, S607
                       check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    best = {side: min(r["cpu_us_per_tick"] for r in runs if r["side"] == side) for side in HORIZONS}
    result = {"benchmark": "bench/bench_scorecards_ab.py", "when": datetime.now(UTC).isoformat(),
              "machine": where.model_dump(mode="json"), "baseline": {"ref": args.ref, "commit": commit},
              "this": {"commit": head}, "ticks": args.ticks, "symbols": args.symbols, "rounds": args.rounds,
              "cpu_us_per_tick_min": best,
              "change_vs_baseline": {side: round(best[side] / best["baseline"] - 1, 4) for side in HORIZONS},
              "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC).date().isoformat()}-scorecards-ab.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"{best} µs/tick; {path}")


if __name__ == "__main__":
    main()
