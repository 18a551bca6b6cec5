"""Ingest throughput and start-up time, against the running local broker.

Measures, in one run and against the same broker:
1. **baseline** — a bare confluent-kafka producer loop sending pre-serialized tick-sized
   bytes with exactly the ingest producer's settings (idempotent, acks=all, lz4, linger);
2. **simulator** — the real ingest service (simulator source → validation → duplicate
   guard → publisher), as fast as the broker takes;
3. **start-up** — ``stockstream ingest --source simulator --count 1`` as a process: time
   to its "ready" log line, to the first tick visible in Kafka, and to a clean exit.

Each throughput figure counts until the final flush returns (every record acknowledged).
Run: ``.venv/bin/python bench/bench_ingest.py [--ticks N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from bench.common import BenchOutput, Figure, Measure
from processors.ingest.metrics import IngestMetrics
from processors.ingest.publisher import TickPublisher, producer_config
from processors.ingest.service import IngestService
from processors.ingest.settings import IngestSettings
from processors.ingest.sources.simulator import SimulatorConfig, SimulatorSource
from processors.ingest.validation import TimeBounds
from processors.runtime.kafka_admin import ensure_topics
from schemas.events import Tick, encode

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")
START = datetime(2024, 1, 1, tzinfo=UTC)
STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))


def settings_for(bootstrap: str, prefix: str) -> IngestSettings:
    return IngestSettings(_env_file=None, bootstrap_servers=bootstrap, topic_prefix=prefix,  # type: ignore[call-arg]
                          metrics_port=0)


def baseline(settings: IngestSettings, ticks: int) -> float:
    """Ticks/s of a bare producer loop with the ingest producer's settings and tick-sized payloads."""
    topic = settings.topics().ticks.name
    sample = Tick(symbol="BTC-USD", venue="bench", price=65_432.1, volume=0.01234567, ts_event=START, ts_init=START,
                  source="simulator", source_id="sim-s1-123456")
    payload = encode(sample)
    keys = [f"{symbol}@bench".encode() for symbol in SYMBOLS]
    producer = Producer(producer_config(settings))
    began = time.perf_counter()
    for index in range(ticks):
        while True:
            try:
                producer.produce(topic, value=payload, key=keys[index % 3])
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - began
    if remaining:
        raise RuntimeError(f"baseline: {remaining} undelivered")
    return ticks / elapsed


def simulator(settings: IngestSettings, ticks: int) -> float:
    """Ticks/s of the ingest service on the simulator source, as fast as the broker takes."""
    metrics = IngestMetrics(CollectorRegistry())
    source = SimulatorSource(SimulatorConfig(symbols=SYMBOLS, seed=1, rate_per_s=0, count=ticks, start=START,
                                             step=timedelta(milliseconds=10)), TimeBounds(),
                             now=lambda: datetime.now(UTC))
    publisher = TickPublisher(settings, source.name, metrics)
    service = IngestService(settings, source, publisher, metrics)
    began = time.perf_counter()
    summary = asyncio.run(service.run(asyncio.Event()))
    elapsed = time.perf_counter() - began
    if summary.delivered != ticks:
        raise RuntimeError(f"simulator: {summary.line()}")
    return ticks / elapsed


def startup(bootstrap: str, prefix: str) -> dict[str, float]:
    """Seconds from spawning ``stockstream ingest`` to ready, to the first tick in Kafka, to exit."""
    topic = f"{prefix}ticks"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STOCKSTREAM_TOPIC_PREFIX": prefix,
           "METRICS_PORT": "0"}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    began = time.perf_counter()
    process = subprocess.Popen([STOCKSTREAM, "ingest", "--source", "simulator", "--count", "1", "--rate", "0"],  # noqa: S603
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_tick = None
    while first_tick is None and time.perf_counter() - began < 60:
        try:
            metadata = consumer.list_topics(topic, timeout=1)
            partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
            if partitions and metadata.topics[topic].error is None and any(
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=1)[1] > 0 for p in partitions):
                first_tick = time.perf_counter() - began
        except Exception:  # noqa: BLE001, S110 - the topic appears while we poll
            pass
        time.sleep(0.005)
    output, _ = process.communicate(timeout=60)
    exited = time.perf_counter() - began
    consumer.close()
    ready = re.search(r"ingest ready in ([0-9.]+)s", output)
    import_to_ready = float(ready.group(1)) if ready else float("nan")
    return {"ready_in_process_s": import_to_ready, "first_tick_s": first_tick or float("nan"), "exit_s": exited}


def cleanup(bootstrap: str, prefix: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    for future in admin.delete_topics(names, operation_timeout=30).values() if names else []:
        try:
            future.result()
        except Exception:  # noqa: BLE001, S110 - best effort
            pass


def measure(bootstrap: str, ticks: int, rounds: int) -> dict[str, object]:
    """Baseline and simulator throughput per round (fresh topics each), start-up per round; medians."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    results: dict[str, list[float]] = {"baseline": [], "simulator": []}
    starts: list[dict[str, float]] = []
    try:
        for round_index in range(rounds):
            # Fresh topics per round and measurement so neither run appends to a bigger log.
            for name in ("baseline", "simulator"):
                settings = settings_for(bootstrap, f"{prefix}{name}{round_index}.")
                ensure_topics(settings, [settings.topics().ticks, settings.topics().ticks_dlq])
                rate = baseline(settings, ticks) if name == "baseline" else simulator(settings, ticks)
                results[name].append(rate)
                print(f"round {round_index + 1}: {name:9s} {rate:10,.0f} ticks/s", file=sys.stderr)
            starts.append(startup(bootstrap, f"{prefix}start{round_index}."))
            print(f"round {round_index + 1}: start-up {starts[-1]}", file=sys.stderr)
    finally:
        cleanup(bootstrap, prefix)
    return {
        "ticks_per_run": ticks,
        "baseline_ticks_per_s_median": statistics.median(results["baseline"]),
        "simulator_ticks_per_s_median": statistics.median(results["simulator"]),
        "simulator_vs_baseline": statistics.median(results["simulator"]) / statistics.median(results["baseline"]),
        "baseline_runs": [round(r) for r in results["baseline"]],
        "simulator_runs": [round(r) for r in results["simulator"]],
        "startup_ready_in_process_s_median": statistics.median(s["ready_in_process_s"] for s in starts),
        "startup_first_tick_s_median": statistics.median(s["first_tick_s"] for s in starts),
        "startup_exit_s_median": statistics.median(s["exit_s"] for s in starts),
    }


def run(quick: bool) -> BenchOutput:
    """The common entry point of ``bench/run_all.py``: the ingest service beside a bare producer loop."""
    ticks, rounds = (20_000, 1) if quick else (200_000, 3)
    found = measure(os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"), ticks, rounds)
    figure = Figure(
        name="ingest throughput (simulator → validation → dedup → Kafka)", unit="ticks/s", better="higher",
        ours=Measure(label="stockstream ingest service, simulator source",
                     value=float(found["simulator_ticks_per_s_median"])),  # type: ignore[arg-type]
        baseline=Measure(label="bare confluent-kafka producer loop, same producer settings, pre-serialized ticks",
                         value=float(found["baseline_ticks_per_s_median"])),  # type: ignore[arg-type]
        how=f"median of {rounds} rounds of {ticks:,} ticks, each until every record is acknowledged")
    return BenchOutput(params={"ticks": ticks, "rounds": rounds}, figures=[figure], details=found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    args = parser.parse_args()
    print(json.dumps(measure(args.bootstrap, args.ticks, args.rounds), indent=2))


if __name__ == "__main__":
    main()
