"""End-to-end latency of ``stockstream process``: tick produced → indicator/signal readable by a
read_committed consumer, at a steady rate, for each processing guarantee.

    .venv/bin/python -m bench.bench_latency [--rate 1000] [--seconds 30] [--eos-intervals 0.1,0.25,0.5,1]

For every configuration (exactly-once at each commit interval given, at-least-once at its
default 5 s) a fresh namespace (4 partitions, 10 symbols) is used:

1. ``stockstream process`` starts (subprocess) and joins its group;
2. a producer thread sends ticks at ``--rate`` ticks/s, paced every 5 ms, each carrying its
   ``ts_init`` = the wall time it is produced (like ``stockstream ingest``: linger 5 ms);
3. a ``read_committed`` consumer reads ``indicators`` and ``signals``; each record's latency is
   the wall time it is read − its ``ts_init`` (derived events carry their tick's ``ts_init``).

The first ``--warmup`` seconds are not counted. The baseline is the same measurement through a
Quix pass-through application (bench_process's: stateless ``apply``) with the same guarantee and
commit interval, reading its output topic.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.common import BenchOutput, Figure, Measure
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from processors.stream.settings import DEFAULT_COMMIT_INTERVAL_S
from schemas.events import Tick, encode
from schemas.topics import TopicSpec
from tests.support.kafka_tools import delete_topics

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))
SYMBOLS = [f"LAT{i:02d}-USD" for i in range(10)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(latencies: list[float]) -> dict:
    if not latencies:
        return {"count": 0}
    return {"count": len(latencies), "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "p90_ms": round(percentile(latencies, 0.90) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1), "max_ms": round(max(latencies) * 1000, 1)}


def produce_steadily(topic: str, rate: float, seconds: float, stop: threading.Event) -> None:
    """Ticks at ``rate``/s for ``seconds``, each stamped with its production time."""
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    prices = {symbol: 100.0 + index for index, symbol in enumerate(SYMBOLS)}
    event_time = datetime(2026, 6, 1, tzinfo=UTC)
    began = time.monotonic()
    sent = 0
    while not stop.is_set():
        elapsed = time.monotonic() - began
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        while sent < due:
            symbol = SYMBOLS[sent % len(SYMBOLS)]
            prices[symbol] *= 1.0 + (0.001 if (sent // 7) % 2 else -0.001)
            event_time += timedelta(milliseconds=1)
            now = datetime.now(UTC)
            tick = Tick(symbol=symbol, venue="bench", price=round(prices[symbol], 4), volume=1.0, ts_event=event_time, ts_init=now,
                        source="bench", source_id=str(sent))
            producer.produce(topic, value=encode(tick), key=f"{symbol}@bench".encode())
            sent += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(30)


def measure(topics: list[str], rate: float, seconds: float, warmup: float, ticks_topic: str) -> dict:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"lat-{uuid.uuid4().hex}",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 10, "auto.offset.reset": "latest"})
    metadata = consumer.list_topics(timeout=10)
    assignment = []
    for topic in topics:
        for partition in metadata.topics[topic].partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            assignment.append(TopicPartition(topic, partition, high))
    consumer.assign(assignment)
    stop = threading.Event()
    producer = threading.Thread(target=produce_steadily, args=(ticks_topic, rate, seconds, stop), daemon=True)
    latencies: dict[str, list[float]] = {topic: [] for topic in topics}
    began = time.monotonic()
    counted_from = time.time() + warmup  # ticks produced before this are the warm-up
    producer.start()
    try:
        while time.monotonic() - began < seconds + 10:
            for message in consumer.consume(1000, timeout=0.05):
                if message.error() or message.value() is None:
                    continue
                read_at = time.time()
                document = json.loads(message.value())
                ts_init = datetime.fromisoformat(document["ts_init"]).timestamp()
                if ts_init >= counted_from:
                    latencies[message.topic()].append(read_at - ts_init)
    finally:
        stop.set()
        producer.join(30)
        consumer.close()
    return {topic.rsplit(".", 1)[-1] if topic.endswith(("indicators", "signals")) else "output": summary(values)
            for topic, values in latencies.items()}



def wait_assigned(group: str, topic: str, partitions: int, worker: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.returncode}")
        try:
            description = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
            held = sum(1 for member in description.members for tp in member.assignment.topic_partitions
                       if tp.topic == topic)
            if held == partitions and str(description.state).endswith("STABLE"):
                time.sleep(2)  # let recovery checks and the first empty checkpoints pass
                return
        except Exception:  # noqa: BLE001, S110 - the group does not exist yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{group} did not get {topic} assigned")


def run_configuration(name: str, guarantee: str, commit_interval: float, args: argparse.Namespace,
                      passthrough: bool) -> dict:
    prefix = f"lat{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix, partitions=4)
    registry = kafka.topics()
    ensure_topics(kafka, registry.all())
    output = f"{prefix}passthrough"
    ensure_topics(kafka, [TopicSpec(output, "symbol", Tick, 4)])
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    group = f"{prefix}g"
    if passthrough:
        command = [sys.executable, "-m", "bench.bench_process", "--worker", "passthrough", "--group", group,
                   "--input", registry.ticks.name, "--output", output, "--guarantee", guarantee,
                   "--commit-interval", str(commit_interval), "--state-dir", str(work)]
        env = dict(os.environ)
        topics = [output]
    else:
        command = [STOCKSTREAM, "process"]
        env = {**os.environ, "STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
               "METRICS_PORT": "0", "LOG_LEVEL": "WARNING", "PROCESSING_GUARANTEE": guarantee,
               "PROCESS_COMMIT_INTERVAL_SECONDS": str(commit_interval), "PROCESS_CONSUMER_GROUP": group,
               "PROCESS_STATE_DIR": str(work)}
        topics = [registry.indicators.name, registry.signals.name]
    worker = subprocess.Popen(command, env=env)  # noqa: S603
    try:
        wait_assigned(group, registry.ticks.name, 4, worker)
        result = measure(topics, args.rate, args.seconds, args.warmup, registry.ticks.name)
    finally:
        worker.terminate()
        worker.wait(60)
        delete_topics(BOOTSTRAP, prefix)
        delete_topics(BOOTSTRAP, f"changelog__{prefix}")
    result = {"configuration": name, "guarantee": guarantee, "commit_interval_s": commit_interval, **result}
    print(json.dumps(result), flush=True)
    return result


def run(quick: bool) -> BenchOutput:
    """The common entry point of ``bench/run_all.py``: both guarantees at their default commit intervals."""
    args = argparse.Namespace(rate=1000.0, seconds=10.0 if quick else 30.0, warmup=3.0 if quick else 5.0)
    figures, details = [], {}
    for guarantee in ("exactly-once", "at-least-once"):
        interval = DEFAULT_COMMIT_INTERVAL_S[guarantee]
        ours = run_configuration(guarantee, guarantee, interval, args, passthrough=False)
        base = run_configuration(f"{guarantee} pass-through", guarantee, interval, args, passthrough=True)
        details[guarantee] = {"processor": ours, "passthrough": base}
        how = (f"{args.rate:g} ticks/s for {args.seconds:g}s after {args.warmup:g}s warm-up, 4 partitions, "
               f"commit interval {interval:g}s; produced (ts_init) → read by a read_committed consumer")
        for quantile in ("p50", "p99"):
            figures.append(Figure(
                name=f"tick → signal latency {quantile}, {guarantee}", unit="ms", better="lower", how=how,
                ours=Measure(label="stockstream process → signals", value=ours["signals"][f"{quantile}_ms"]),
                baseline=Measure(label="Quix Streams pass-through → output",
                                 value=base["output"][f"{quantile}_ms"])))
    return BenchOutput(params={"rate": 1000, "seconds": args.seconds}, figures=figures, details=details)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--eos-intervals", default="0.1,0.25,0.5,1.0",
                        help=f"exactly-once commit intervals to try (default of the service: "
                             f"{DEFAULT_COMMIT_INTERVAL_S['exactly-once']})")
    parser.add_argument("--alo-interval", type=float, default=5.0)
    parser.add_argument("--skip-passthrough", action="store_true")
    args = parser.parse_args()
    results = []
    runs = [(f"exactly-once {interval}s", "exactly-once", float(interval)) for interval in args.eos_intervals.split(",")]
    runs.append((f"at-least-once {args.alo_interval}s", "at-least-once", args.alo_interval))
    for name, guarantee, interval in runs:
        results.append(run_configuration(name, guarantee, interval, args, passthrough=False))
        if not args.skip_passthrough:
            results.append(run_configuration(f"{name} pass-through", guarantee, interval, args, passthrough=True))
    print(json.dumps({"rate": args.rate, "seconds": args.seconds, "cpus": os.cpu_count(), "results": results},
                     indent=2))


if __name__ == "__main__":
    main()
