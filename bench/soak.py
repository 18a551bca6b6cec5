"""The long soak: every service for 30 minutes at 500 ticks/s over 20 symbols, on a stack of its own.

    .venv/bin/python -m bench.soak [--minutes 30] [--rate 500] [--symbols 20] [--warm-up 300] [--out bench/results]

Starts a private Kafka + Redis (free ports, temporary folder), the five services
(ingest on the wall-clock simulator, process, materialize, notify — four instances sharing the lane
group by default, one signals partition each — with a webhook channel to a local receiver, serve) and samples them every 5 s: resident memory of each service's process tree (and
of Kafka and Redis, for reference), consumer lag of process/materialize/notify, the processor's and
the notifier's latency histograms, the age of the newest tick the API serves, ERROR lines in the
logs. Writes ``<out>/soak-<date>.json`` (figures, verdict, every sample) and ``<out>/soak-<date>.png``
(memory, lag and latency over time) and exits 1 if the verdict lists a problem: memory growth
≥ 10 % after warm-up, lag above 5 s of feed, a latency window's processor p99 above 2 s or the last
one more than twice the typical, any ERROR line, any service that died.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from tests.soak.soak_support import SoakConfig, plot, run_soak


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: the services and the private stack are stopped on the way out


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=500.0, help="ticks/s over all symbols")
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--warm-up", type=float, default=300.0, help="seconds left out of the judgement")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--notify-replicas", type=int, default=4,
                        help="notifier instances sharing the lane group, one signals partition each (a lane"
                             " handles ~60-130 signals/s here; 500 ticks/s make ~110, 7 of 20 symbols on the"
                             " busiest partition)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    config = SoakConfig(name="full", duration_s=args.minutes * 60, rate=args.rate, symbols=args.symbols,
                        sample_every_s=args.sample_every, warm_up_s=args.warm_up,
                        notify_replicas=args.notify_replicas)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"soak-{datetime.now(UTC):%Y-%m-%d}"
    with tempfile.TemporaryDirectory(prefix="stockstream-soak-") as folder:
        result = run_soak(config, Path(folder), progress=lambda line: print(line, flush=True))
    stem.with_suffix(".json").write_text(result.to_json())
    plot(result, stem.with_suffix(".png"))
    figures = result.verdict.figures
    print(f"wrote {stem}.json and {stem}.png")
    for name, entry in figures["memory"].items():
        print(f"  memory {name:<12} after warm-up {entry['after_warm_up_mb']} MiB → end {entry['end_mb']} MiB"
              f" (growth {entry['growth']})")
    for part, entry in figures["lag_records"].items():
        print(f"  lag {part:<12} max {entry['max']} median {entry['median']} (bound {entry['bound']:.0f})")
    print(f"  processor p99 {figures.get('process_p99_s')}  rate {figures.get('achieved_rate')} ticks/s"
          f"  deliveries {result.deliveries}  error lines {figures['error_lines']}")
    for problem in result.verdict.problems:
        print(f"  PROBLEM: {problem}")
    return 1 if result.verdict.problems else 0


if __name__ == "__main__":
    sys.exit(main())
