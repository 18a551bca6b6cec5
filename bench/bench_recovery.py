"""State recovery time of ``stockstream process`` from its changelog, for 10,000 symbols.

    .venv/bin/python -m bench.bench_recovery [--symbols 10000] [--ticks-per-symbol 60]

1. A fresh namespace (4 partitions) gets ``symbols × ticks-per-symbol`` ticks (round-robin, so
   every symbol's state is full-sized: indicator rings filled, an open 1m candle, a daily
   aggregate) and one processor drains it, which writes every symbol's state to the changelog.
2. Baseline: the processor restarts with its local RocksDB state folder intact.
3. Recovery: the processor restarts with the state folder deleted, so every symbol's state is
   read back from the changelog.

For each restart: the time from process start to the probe's indicator being readable
(a tick of an existing symbol produced right at the start; read_committed), the recovery phase
as Quix reports it (``stockstream_process_state_recovery_last_duration_seconds``), and the
changelog size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from bench.bench_process import produce_all
from bench.common import BenchOutput, Figure, Measure
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Tick, encode
from tests.support.kafka_tools import delete_topics

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))
METRICS_PORT = 19_312


def make_log(symbols: int, per_symbol: int) -> list[tuple[bytes, bytes]]:
    from bench.bench_process import START

    records = []
    for round_ in range(per_symbol):
        moment = START + timedelta(seconds=round_)
        for index in range(symbols):
            symbol = f"R{index:05d}-USD"
            tick = Tick(symbol=symbol, venue="bench", price=100.0 + index % 97 + (round_ % 13) * 0.01, volume=1.0, ts_event=moment,
                        ts_init=moment, source="bench", source_id=f"{round_}-{index}")
            records.append((f"{symbol}@bench".encode(), encode(tick)))
    return records


def metric(name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def drained(group: str, topic: str) -> bool:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "enable.auto.commit": False})
    try:
        ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(4)]
        done = consumer.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
        return [max(tp.offset, 0) for tp in done] == ends
    finally:
        consumer.close()


def changelog_records(prefix: str) -> tuple[str, int]:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"size-{uuid.uuid4().hex}"})
    try:
        name = next(t for t in consumer.list_topics(timeout=10).topics if t.startswith(f"changelog__{prefix}"))
        total = 0
        for partition in range(4):
            low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
            total += high - low
        return name, total
    finally:
        consumer.close()


def restart(env: dict[str, str], registry, probe: tuple[bytes, bytes]) -> dict:
    """Start the processor, produce the probe at once, time until its snapshot is readable."""
    reader = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"probe-{uuid.uuid4().hex}",
                       "isolation.level": "read_committed", "enable.auto.commit": False})
    partitions = [TopicPartition(registry.indicators.name, p) for p in range(4)]
    ends = [reader.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
    reader.assign([TopicPartition(tp.topic, tp.partition, end) for tp, end in zip(partitions, ends, strict=True)])
    began = time.monotonic()
    worker = subprocess.Popen([STOCKSTREAM, "process"], env=env)  # noqa: S603
    try:
        produce_all(registry.ticks.name, [probe])
        probe_id = json.loads(probe[1])["source_id"]
        readable = None
        while readable is None and time.monotonic() - began < 900:
            for message in reader.consume(100, timeout=0.2):
                if message.value() and b'"timeframe":"tick"' in message.value() and \
                        json.loads(message.value())["ts_event"] == json.loads(probe[1])["ts_event"] and \
                        message.key() == probe[0]:
                    readable = time.monotonic() - began
            if worker.poll() is not None:
                raise RuntimeError(f"processor exited with {worker.returncode}")
        assert readable is not None, f"probe {probe_id} never came out"
        recovery = metric("stockstream_process_state_recovery_last_duration_seconds")
        recovered = metric("stockstream_process_state_recovered_partitions_total")
    finally:
        worker.terminate()
        worker.wait(120)
        reader.close()
    return {"probe_readable_after_s": round(readable, 2), "recovery_phase_s": recovery,
            "partitions_restored": recovered}


def run(quick: bool) -> BenchOutput:
    """The common entry point of ``bench/run_all.py``: restart from the changelog vs with local state."""
    symbols, per_symbol = (2_000, 30) if quick else (10_000, 60)
    found = measure(symbols, per_symbol)
    how = (f"{symbols:,} symbols × {per_symbol} ticks, 4 partitions, changelog of {found['changelog_records']:,}"
           " records; process start → a probe tick's indicator readable (read_committed)")
    figure = Figure(
        name=f"state recovery, {symbols:,} symbols", unit="s", better="lower", how=how,
        ours=Measure(label="restart with the state folder deleted (restore from the changelog)",
                     value=found["restart_from_changelog"]["probe_readable_after_s"]),
        baseline=Measure(label="restart with the local RocksDB state",
                         value=found["restart_with_local_state"]["probe_readable_after_s"]))
    return BenchOutput(params={"symbols": symbols, "ticks_per_symbol": per_symbol}, figures=[figure], details=found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--ticks-per-symbol", type=int, default=60)
    args = parser.parse_args()
    print(json.dumps(measure(args.symbols, args.ticks_per_symbol), indent=2))


def measure(symbols: int, per_symbol: int) -> dict:
    """Fill, drain, then restart twice (local state, then none); the timings and the changelog size."""
    args = argparse.Namespace(symbols=symbols, ticks_per_symbol=per_symbol)
    prefix = f"rec{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix, partitions=4)
    registry = kafka.topics()
    ensure_topics(kafka, registry.all())
    state = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    group = f"{prefix}g"
    env = {**os.environ, "STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
           "METRICS_PORT": str(METRICS_PORT), "LOG_LEVEL": "WARNING", "PROCESS_CONSUMER_GROUP": group,
           "PROCESS_STATE_DIR": str(state), "PROCESS_INSTANCE_ID": "bench-0"}
    results: dict = {"symbols": args.symbols, "ticks": args.symbols * args.ticks_per_symbol, "cpus": os.cpu_count()}
    try:
        began = time.monotonic()
        log = make_log(args.symbols, args.ticks_per_symbol)
        produce_all(registry.ticks.name, log)
        worker = subprocess.Popen([STOCKSTREAM, "process"], env=env)  # noqa: S603
        try:
            while not drained(group, registry.ticks.name):
                if worker.poll() is not None:
                    raise RuntimeError("the first run exited")
                time.sleep(1)
        finally:
            worker.terminate()
            worker.wait(120)
        results["first_run_s"] = round(time.monotonic() - began, 1)
        results["changelog_topic"], results["changelog_records"] = changelog_records(prefix)
        print(json.dumps(results), flush=True)

        last = Tick.model_validate_json(log[-1][1])
        for name, wipe in (("restart_with_local_state", False), ("restart_from_changelog", True)):
            if wipe:
                shutil.rmtree(state)
            probe_tick = last.model_copy(update={"ts_event": last.ts_event + timedelta(seconds=1 + int(wipe)),
                                                 "source_id": f"probe-{name}"})
            results[name] = restart(env, registry, (f"{probe_tick.symbol}@{probe_tick.venue}".encode(), encode(probe_tick)))
            print(name, results[name], flush=True)
    finally:
        shutil.rmtree(state, ignore_errors=True)
        delete_topics(BOOTSTRAP, prefix)
        delete_topics(BOOTSTRAP, f"changelog__{prefix}")
    return results


if __name__ == "__main__":
    main()
