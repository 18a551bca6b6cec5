"""Processor CPU per tick with instruments (this checkout) against the release before (a git ref), same run, A/B.

    .venv/bin/python -m bench.bench_venues_ab [--ref main] [--ticks 150000] [--symbols 10] [--rounds 3]

The change keys state, outputs and metrics by instrument (``SYMBOL@venue``) and decodes every
tick through the upcaster chain; this measures what that costs the stream processor per tick.

1. ``git worktree add --detach`` of ``--ref`` (the baseline code) in a temporary folder.
2. Two one-partition namespaces hold the same backlog of ticks: written as v1 (keyed by
   symbol, the baseline's format, by the frozen v1 encoder) for the baseline, and as v2 (keyed
   by instrument) for this checkout, so each side reads its own release's log.
3. Drains alternate baseline / this checkout ``--rounds`` times, each a fresh consumer group and
   state, timed as bench/bench_process.py does (committed offsets; CPU time of the process over
   the drained part). The machine is shared, so each side's figure is the minimum CPU µs per
   tick over its rounds; every drain records the load average beside it.

Writes ``bench/results/<date>-venues-ab.json``; the goal is this checkout within 5 % of the baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.bench_process import BOOTSTRAP, drain_rate, produce_all, stop
from bench.common import machine
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Tick, encode
from tests.support.kafka_tools import delete_topics
from tests.support.legacy import events_v1

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
START = datetime(2024, 3, 1, tzinfo=UTC)


def backlogs(count: int, symbols: int, seed: int = 7) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """The same ticks as (v1 records keyed by symbol, v2 records keyed by instrument)."""
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation
    names = [f"SYM{i:03d}-USD" for i in range(symbols)]
    prices = [100.0 * (1 + i) for i in range(symbols)]
    v1, v2 = [], []
    for index in range(count):
        which = index % symbols
        prices[which] *= math.exp(rng.gauss(0.0, 5e-4))
        moment = START + timedelta(milliseconds=100 * (index // symbols) + which)
        fields = {"symbol": names[which], "price": round(prices[which], 4),
                  "volume": round(rng.lognormvariate(0, 1), 6), "ts_event": moment, "ts_init": moment,
                  "source": "bench", "source_id": str(index)}
        v1.append((names[which].encode(), events_v1.encode(events_v1.Tick(**fields))))
        v2.append((f"{names[which]}@bench".encode(), encode(Tick(venue="bench", **fields))))
    return v1, v2


def drain_group(prefix: str, side: str, round_number: int) -> str:
    """The consumer group of one drain, also the name of its state folder under the work folder."""
    return f"{prefix}{side}-{round_number}"


def drain(side: str, code: Path, prefix: str, ticks: int, work: Path, round_number: int,
          settings: Mapping[str, str] | None = None) -> dict:
    """One ``stockstream process`` drain of ``prefix``ticks by the code in ``code`` (``settings``: more env);
    its state is left in ``work / drain_group(...)``."""
    group = drain_group(prefix, side, round_number)
    env = {**os.environ, "PYTHONPATH": str(code), "STOCKSTREAM_TOPIC_PREFIX": prefix, "STOCKSTREAM_PARTITIONS": "1",
           "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "METRICS_PORT": "0", "LOG_LEVEL": "WARNING",
           "PROCESSING_GUARANTEE": "exactly-once", "PROCESS_COMMIT_INTERVAL_SECONDS": "0.5",
           "PROCESS_CONSUMER_GROUP": group, "PROCESS_STATE_DIR": str(work / group), **(settings or {})}
    worker = subprocess.Popen([sys.executable, "-m", "stockstream.cli", "process"], cwd=code, env=env)  # noqa: S603
    try:
        found = drain_rate(group, f"{prefix}ticks", ticks, worker, timeout_s=max(900.0, ticks / 100))
    finally:
        stop(worker)
    found["load_average_1m_5m_15m"] = [round(value, 2) for value in os.getloadavg()]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", default="main", help="git ref of the baseline (the release before instruments)")
    parser.add_argument("--ticks", type=int, default=150_000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    where = machine()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.ref], capture_output=True, text=True,  # noqa: S603, S607
                            check=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,  # noqa: S603, S607
                          check=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="bench-venues-"))
    baseline = work / "baseline"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), commit],  # noqa: S603, S607
                   check=True, capture_output=True)
    run = uuid.uuid4().hex[:6]
    prefixes = {"baseline": f"benchab{run}a.", "instruments": f"benchab{run}b."}
    code = {"baseline": baseline, "instruments": REPO}
    drains: list[dict] = []
    try:
        v1, v2 = backlogs(args.ticks, args.symbols)
        for side, records in (("baseline", v1), ("instruments", v2)):
            kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, topic_prefix=prefixes[side], partitions=1)
            ensure_topics(kafka, kafka.topics().all())
            produce_all(f"{prefixes[side]}ticks", records)
        del v1, v2
        for round_number in range(args.rounds):
            order = ("baseline", "instruments") if round_number % 2 == 0 else ("instruments", "baseline")
            for side in order:
                found = drain(side, code[side], prefixes[side], args.ticks, work, round_number)
                drains.append({"side": side, "round": round_number, **found})
                print(f"{side} round {round_number}: {found}", flush=True)
    finally:
        for prefix in prefixes.values():
            delete_topics(BOOTSTRAP, prefix)
            delete_topics(BOOTSTRAP, f"changelog__{prefix}")
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)],  # noqa: S603, S607
                       check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    best = {side: min(d["cpu_us_per_record"] for d in drains if d["side"] == side) for side in code}
    change = best["instruments"] / best["baseline"] - 1
    result = {
        "benchmark": "bench/bench_venues_ab.py", "when": datetime.now(UTC).isoformat(),
        "machine": where.model_dump(mode="json"),
        "baseline": {"ref": args.ref, "commit": commit}, "instruments": {"commit": head},
        "ticks": args.ticks, "symbols": args.symbols, "rounds": args.rounds, "guarantee": "exactly-once",
        "cpu_us_per_tick_min": best, "change": round(change, 4), "within_5_percent": abs(change) <= 0.05,
        "drains": drains,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC).date().isoformat()}-venues-ab.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"baseline {best['baseline']} µs/tick, instruments {best['instruments']} µs/tick ({change:+.1%}); {path}")


if __name__ == "__main__":
    main()
