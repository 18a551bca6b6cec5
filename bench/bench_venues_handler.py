"""The processor's per-record work in-process, this checkout against a git ref: CPU µs per tick, A/B, same run.

    .venv/bin/python -m bench.bench_venues_handler [--ref main] [--ticks 20000] [--rounds 9]

A complement to bench/bench_venues_ab.py without Kafka: each side runs the stream processor's
``TickHandler.handle`` (decode, the instrument's state from a real Quix in-memory store, the
pipeline step with 1m candles, encoding every output; checkpoints flushed every 1000 records) over
the same ticks in its own release's format (v1 keyed by symbol for the ref, v2 keyed by instrument
here), in a subprocess whose ``PYTHONPATH`` is that side's code. Sides alternate ``--rounds`` times;
each side's figure is the minimum of its rounds' ``process_time`` per tick (the machine is shared:
the minimum is the run least disturbed). Writes ``bench/results/<date>-venues-handler.json``.
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
extra = {"outcomes": Named("signals.outcomes")} if "outcomes" in OutputTopics.__dataclass_fields__ else {}
outputs = OutputTopics(indicators=Named("indicators"), signals=Named("signals"),
                       candles={"1m": Named("candles.1m")}, aggregates_daily=Named("aggregates.daily"),
                       dead_letters=Named("ticks.dlq"), **extra)
metrics = ProcessMetrics(CollectorRegistry())
states = SymbolStates(PipelineConfigs(DEFAULT_STRATEGY, candle_timeframes=("1m",), grace_ms=5_000), metrics)
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
letters = metrics.hot.dead_letters
print(json.dumps({"cpu_us_per_tick": round(spent / len(records) * 1e6, 2), "emitted": emitted,
                  "dead_letters": dict(letters)}))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", default="main")
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    where = machine()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.ref], capture_output=True, text=True,  # noqa: S603, S607
                            check=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,  # noqa: S603, S607
                          check=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="bench-handler-"))
    baseline = work / "baseline"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), commit],  # noqa: S603, S607
                   check=True, capture_output=True)
    runs: list[dict] = []
    try:
        v1, v2 = backlogs(args.ticks, args.symbols)
        inputs = {"baseline": work / "v1.json", "instruments": work / "v2.json"}
        for side, records in (("baseline", v1), ("instruments", v2)):
            inputs[side].write_text(json.dumps([(k.hex(), v.hex()) for k, v in records]))
        (work / "worker.py").write_text(WORKER)
        code = {"baseline": baseline, "instruments": REPO}
        for round_number in range(args.rounds):
            order = ("baseline", "instruments") if round_number % 2 == 0 else ("instruments", "baseline")
            for side in order:
                out = subprocess.run([sys.executable, str(work / "worker.py"), str(inputs[side])],  # noqa: S603
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
    best = {side: min(r["cpu_us_per_tick"] for r in runs if r["side"] == side) for side in ("baseline", "instruments")}
    change = best["instruments"] / best["baseline"] - 1
    result = {"benchmark": "bench/bench_venues_handler.py", "when": datetime.now(UTC).isoformat(),
              "machine": where.model_dump(mode="json"), "baseline": {"ref": args.ref, "commit": commit},
              "instruments": {"commit": head}, "ticks": args.ticks, "symbols": args.symbols, "rounds": args.rounds,
              "cpu_us_per_tick_min": best, "change": round(change, 4), "within_5_percent": abs(change) <= 0.05,
              "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC).date().isoformat()}-venues-handler.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"baseline {best['baseline']} µs/tick, instruments {best['instruments']} µs/tick ({change:+.1%}); {path}")


if __name__ == "__main__":
    main()
