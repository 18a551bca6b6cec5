"""What a run's warm-up costs: ``stockstream process`` over a log emitting nothing vs emitting everything.

    .venv/bin/python -m bench.bench_runs_warmup [--ticks 1000000] [--symbols 10] [--out FILE]

A shadow or warmed run (docs/runs.md: ``runs start --warm-from 0 --follow``) first replays the
log up to its start with ``PROCESS_EMIT_FROM`` set: the state moves, nothing is produced. This
measures that warm-up on a backlog of N valid ticks (one partition, ``--symbols`` symbols, 1m
candles) beside the baseline of the same run: the same processor, as a run, emitting every
output (a cold replay of the whole log). Both are timed from outside on the group's committed
offsets (bench/bench_process.py's ``drain_rate``: start-up and assignment excluded); the
whole-log time is N / rate. Each measurement records the load average beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.bench_process import BOOTSTRAP, STOCKSTREAM, drain_rate, make_ticks, produce_all, stop
from bench.common import BenchOutput, Figure, Measure, machine, now
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from tests.support.kafka_tools import delete_topics


def measure(ticks: int, symbols: int) -> dict:
    prefix = f"benchrun{uuid.uuid4().hex[:6]}."
    kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix, partitions=1)
    registry = kafka.topics()
    ensure_topics(kafka, registry.all())
    work = Path(tempfile.mkdtemp(prefix="bench-runs-"))
    results: dict = {"ticks": ticks, "symbols": symbols, "load_average_before": os.getloadavg()}
    try:
        began = time.monotonic()
        records = make_ticks(ticks, symbols)
        produce_all(registry.ticks.name, records)
        del records
        print(f"backlog of {ticks} ticks in {time.monotonic() - began:.1f}s", flush=True)
        env = {**os.environ, "STOCKSTREAM_TOPIC_PREFIX": prefix, "STOCKSTREAM_PARTITIONS": "1",
               "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "METRICS_PORT": "0", "LOG_LEVEL": "WARNING"}
        cases = (("replay_emitting", {}), ("warm_up", {"PROCESS_EMIT_FROM": f"0:{ticks}"}))
        for name, extra in cases:
            run_id = f"bench-{name.replace('_', '-')}"
            group = f"{prefix}runs.{run_id}.process"
            worker = subprocess.Popen(  # noqa: S603 - our own console script
                [STOCKSTREAM, "process"],
                env={**env, **extra, "STOCKSTREAM_RUN": run_id, "PROCESS_STATE_DIR": str(work / name)})
            try:
                found = drain_rate(group, registry.ticks.name, ticks, worker, max(900.0, ticks / 300))
            finally:
                stop(worker)
            found["whole_log_seconds"] = round(ticks / found["per_second"], 1)
            results[name] = found
            print(f"{name}: {found}", flush=True)
        results["load_average_after"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        delete_topics(BOOTSTRAP, prefix)
        delete_topics(BOOTSTRAP, f"changelog__{prefix}")
    return results


def output(found: dict) -> BenchOutput:
    ticks = found["ticks"]
    how = (f"{ticks:,}-tick backlog on 1 partition, {found['symbols']} symbols, tick + 1m, exactly-once; rate from the"
           " group's committed offsets, whole-log time = ticks / rate; one round each, sequential, load average"
           " recorded per measurement")
    warm, full = found["warm_up"], found["replay_emitting"]
    return BenchOutput(params={"ticks": ticks, "symbols": found["symbols"]}, details=found, figures=[
        Figure(name=f"run warm-up over {ticks:,} ticks", unit="s", better="lower", how=how,
               ours=Measure(label="stockstream process as a run, PROCESS_EMIT_FROM past the end (state only)",
                            value=float(warm["whole_log_seconds"])),
               baseline=Measure(label="the same run emitting every output (a cold replay)",
                                value=float(full["whole_log_seconds"]))),
    ])


def run(quick: bool) -> BenchOutput:
    """The common entry point of ``bench/run_all.py``."""
    return output(measure(80_000 if quick else 1_000_000, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--out", type=Path, help="write the result JSON here (with the machine and load average)")
    args = parser.parse_args()
    started, host = now(), machine()
    result = output(measure(args.ticks, args.symbols))
    report = {"started_at": started.isoformat(), "finished_at": now().isoformat(),
              "machine": host.model_dump(mode="json"), "bench": "runs_warmup",
              "output": json.loads(result.model_dump_json())}
    text = json.dumps(report, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
