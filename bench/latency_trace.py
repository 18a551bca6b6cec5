"""Where the exactly-once latency goes: per-record stage timestamps and the worker's transaction timeline.

    .venv/bin/python -m bench.latency_trace [--worker processor|passthrough] [--seconds 60] [--commit-interval 0.25]
                                            [--guarantee exactly-once] [--out bench/results/tmp/trace.json]

A diagnostic (docs/stream.md, "Where the exactly-once latency goes"), not a figure of ``make bench``.
One worker (``stockstream process`` or the Quix pass-through) runs in a subprocess with
:func:`instrument` installed before Quix builds anything. It only observes: it wraps Quix's
consumer ``poll_row``, producer ``produce``/``flush``/transaction calls and ``Checkpoint.commit``
with wall-clock stamps, adds two trace headers to each output record (when its input was
consumed, when the output was handed to the producer), and subscribes to librdkafka's
statistics (the ``eos`` transaction state, broker round trips). The ``ticks`` topic is switched
to ``LogAppendTime`` so the record timestamp of every tick (and of the outputs, which carry it) is
the broker's append time.

Per output record the driver then has: ``ts_init`` (the bench producer's ``produce`` call), the
tick's broker append time, consume time, handler-out time, when a ``read_uncommitted`` consumer
first saw it (written to the log) and when a ``read_committed`` consumer saw it (visible), and
the checkpoint whose transaction carried it (begin, flush, send-offsets, commit). The summary
gives each stage's percentiles, the slowest records with their stages, and the slow checkpoints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from bisect import bisect_left
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from bench.bench_latency import SYMBOLS, produce_steadily, wait_assigned
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Tick
from schemas.topics import TopicSpec
from tests.support.kafka_tools import delete_topics

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
TRACE_FILE_ENV = "LATENCY_TRACE_FILE"
RDKAFKA_DEBUG_ENV = "LATENCY_TRACE_RDKAFKA_DEBUG"
CONSUMED_HEADER, OUT_HEADER = "trace.consumed", "trace.out"


# -- inside the worker ------------------------------------------------------------------------------------

def instrument(trace_path: str) -> None:
    """Wrap Quix's consumer/producer/checkpoint with wall-clock stamps written to ``trace_path`` (JSON lines)."""
    from quixstreams.checkpointing import checkpoint as checkpoint_module
    from quixstreams.internal_consumer import consumer as consumer_module
    from quixstreams.internal_producer import InternalProducer
    from quixstreams.kafka import producer as producer_module

    sink = open(trace_path, "a", buffering=1)  # noqa: SIM115 - closed with the process
    lock = threading.Lock()

    def emit(kind: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, "t": time.time(), **fields})
        with lock:
            sink.write(line + "\n")

    last_consumed = {"t": 0.0}
    original_poll_row = consumer_module.InternalConsumer.poll_row

    def poll_row(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.time()
        rows = original_poll_row(self, *args, **kwargs)
        if rows is not None:
            last_consumed["t"] = time.time()
        elif time.time() - began > 0.05:
            emit("poll_empty", seconds=time.time() - began)
        return rows

    consumer_module.InternalConsumer.poll_row = poll_row

    original_produce = InternalProducer.produce

    def produce(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
        if not topic.startswith("changelog__"):
            stamps = [(CONSUMED_HEADER, f"{last_consumed['t']:.6f}".encode()),
                      (OUT_HEADER, f"{time.time():.6f}".encode())]
            headers = kwargs.get("headers")
            if isinstance(headers, dict):
                headers = list(headers.items())
            kwargs["headers"] = [*(headers or []), *stamps]
        return original_produce(self, topic, *args, **kwargs)

    InternalProducer.produce = produce

    def timed(owner: Any, name: str, kind: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.time()
            error = None
            try:
                return original(*args, **kwargs)
            except Exception as caught:
                error = repr(caught)
                raise
            finally:
                emit(kind, began=began, seconds=time.time() - began, error=error)

        setattr(owner, name, wrapper)

    timed(checkpoint_module.Checkpoint, "commit", "checkpoint_commit")
    timed(checkpoint_module.Checkpoint, "close", "checkpoint_close")
    timed(producer_module.Producer, "begin_transaction", "begin_transaction")
    timed(producer_module.Producer, "flush", "producer_flush")
    timed(producer_module.Producer, "send_offsets_to_transaction", "send_offsets")
    timed(producer_module.Producer, "commit_transaction", "commit_transaction")
    timed(producer_module.Producer, "abort_transaction", "abort_transaction")

    import quixstreams.internal_producer as internal_producer_module

    original_sleep = internal_producer_module.sleep

    def sleep(seconds: float) -> None:
        emit("quix_retry_sleep", seconds=seconds)
        original_sleep(seconds)

    internal_producer_module.sleep = sleep

    original_init = InternalProducer.__init__

    def init(self: Any, *args: Any, extra_config: dict | None = None, **kwargs: Any) -> None:
        config = dict(extra_config or {})
        if config.get("transactional.id") is not None or kwargs.get("transactional"):
            def on_stats(payload: str) -> None:
                stats = json.loads(payload)
                brokers = {name: {key: broker.get(key) for key in ("rtt", "int_latency", "outbuf_latency", "req")}
                           for name, broker in stats.get("brokers", {}).items() if broker.get("nodeid", -1) >= 0}
                emit("producer_stats", eos=stats.get("eos"), txmsgs=stats.get("txmsgs"), brokers=brokers)

            config |= {"statistics.interval.ms": 1000, "stats_cb": on_stats}
            if os.environ.get(RDKAFKA_DEBUG_ENV):
                config["debug"] = os.environ[RDKAFKA_DEBUG_ENV]
        original_init(self, *args, extra_config=config, **kwargs)

    InternalProducer.__init__ = init

    class ToTrace(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            emit_event("log", logger=record.name, level=record.levelname, message=record.getMessage())

    emit_event = emit
    for name in ("quixstreams.kafka.producer", "quixstreams.checkpointing", "quixstreams.internal_producer"):
        traced = logging.getLogger(name)
        traced.setLevel(logging.DEBUG)
        traced.propagate = False
        traced.addHandler(ToTrace())
    emit("instrumented", pid=os.getpid())


def run_worker(args: argparse.Namespace) -> None:
    """The traced worker: instrument, then run the processor or the pass-through as ``make bench`` does."""
    instrument(os.environ[TRACE_FILE_ENV])
    if args.worker == "passthrough":
        from bench.bench_process import passthrough_worker

        passthrough_worker(args)
        return
    from processors.stream.service import main
    from processors.stream.settings import ProcessSettings

    sys.exit(main(ProcessSettings()))


# -- the driver -------------------------------------------------------------------------------------------

def read_outputs(topics: list[str], committed: bool, stop: threading.Event, into: dict[tuple, dict]) -> None:
    """Record when each output record is first seen (``read_committed`` or not), one message per poll."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"trace-{uuid.uuid4().hex}",
                         "isolation.level": "read_committed" if committed else "read_uncommitted",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10, "auto.offset.reset": "earliest"})
    metadata = consumer.list_topics(timeout=10)
    consumer.assign([TopicPartition(topic, partition, 0) for topic in topics
                     for partition in metadata.topics[topic].partitions])
    try:
        while not stop.is_set():
            message = consumer.poll(0.05)
            if message is None or message.error() or message.value() is None:
                continue
            seen = time.time()
            where = (message.topic(), message.partition(), message.offset())
            if committed:
                document = json.loads(message.value())
                headers = dict(message.headers() or [])
                into[where] = {"visible": seen, "ts_init": document["ts_init"],
                               "appended": message.timestamp()[1] / 1000,
                               "consumed": float(headers.get(CONSUMED_HEADER, b"0")),
                               "out": float(headers.get(OUT_HEADER, b"0"))}
            else:
                into[where] = {"written": seen}
    finally:
        consumer.close()


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 1)

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 1),
            "count": len(ordered)}


def analyse(records: list[dict], events: list[dict], counted_from: float, began: float) -> dict:
    """Stage percentiles, the slowest records with their stages, and the slow checkpoints."""
    from datetime import datetime

    commits = sorted((event for event in events if event["kind"] == "checkpoint_commit"), key=lambda e: e["began"])
    commit_ends = [event["began"] + event["seconds"] for event in commits]
    rows = []
    for record in records:
        produced = datetime.fromisoformat(record["ts_init"]).timestamp()
        if produced < counted_from or not record.get("out"):
            continue
        index = bisect_left(commit_ends, record["out"])
        commit = commits[index] if index < len(commits) else None
        row = {"at_s": round(produced - began, 3), "total": record["visible"] - produced,
               "to_broker": record["appended"] - produced, "to_consume": record["consumed"] - record["appended"],
               "handler": record["out"] - record["consumed"],
               "out_to_written": record.get("written", record["visible"]) - record["out"],
               "written_to_visible": record["visible"] - record.get("written", record["visible"])}
        if commit is not None:
            row |= {"out_to_commit_start": commit["began"] - record["out"], "commit": commit["seconds"],
                    "commit_end_to_visible": record["visible"] - (commit["began"] + commit["seconds"]),
                    "commit_at_s": round(commit["began"] - began, 3)}
        rows.append(row)
    stages = ["total", "to_broker", "to_consume", "handler", "out_to_written", "written_to_visible",
              "out_to_commit_start", "commit", "commit_end_to_visible"]
    summary = {stage: percentiles([row[stage] for row in rows if stage in row]) for stage in stages}
    slowest = sorted(rows, key=lambda row: -row["total"])[:15]
    by_kind: dict[str, list[float]] = {}
    for event in events:
        if "seconds" in event and event["kind"] not in ("poll_empty",):
            by_kind.setdefault(event["kind"], []).append(event["seconds"])
    slow_events = [{**event, "at_s": round(event.get("began", event["t"]) - began, 3)}
                   for event in events if event.get("seconds", 0) > 0.15 or event["kind"] == "quix_retry_sleep"]
    stats = [event for event in events if event["kind"] == "producer_stats"]
    return {"stages": summary,
            "slowest": [{key: round(value * 1000, 1) if key not in ("at_s", "commit_at_s") else value
                         for key, value in row.items()} for row in slowest],
            "calls": {kind: percentiles(values) for kind, values in by_kind.items()},
            "slow_calls": slow_events[:60],
            "producer_stats_last": stats[-1] if stats else None}


def trace(args: argparse.Namespace) -> dict:
    prefix = f"trace{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix, partitions=4)
    registry = kafka.topics()
    ensure_topics(kafka, registry.all())
    output = f"{prefix}passthrough"
    ensure_topics(kafka, [TopicSpec(output, "symbol", Tick, 4)])
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    resource = ConfigResource("topic", registry.ticks.name, set_config={"message.timestamp.type": "LogAppendTime"})
    for future in admin.alter_configs([resource]).values():
        future.result()
    work = Path(tempfile.mkdtemp(prefix="latency-trace-"))
    trace_path = work / "trace.jsonl"
    group = f"{prefix}g"
    command = [sys.executable, "-m", "bench.latency_trace", "--as-worker", args.worker, "--group", group,
               "--input", registry.ticks.name, "--output", output, "--guarantee", args.guarantee,
               "--commit-interval", str(args.commit_interval), "--state-dir", str(work / "state")]
    env = {**os.environ, TRACE_FILE_ENV: str(trace_path), "STOCKSTREAM_TOPIC_PREFIX": prefix,
           "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "METRICS_PORT": "0", "LOG_LEVEL": args.log_level,
           "PROCESSING_GUARANTEE": args.guarantee, "PROCESS_COMMIT_INTERVAL_SECONDS": str(args.commit_interval),
           "PROCESS_CONSUMER_GROUP": group, "PROCESS_STATE_DIR": str(work / "state")}
    topics = [output] if args.worker == "passthrough" else [registry.indicators.name, registry.signals.name]
    worker_log = open(work / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(command, env=env, stderr=worker_log)  # noqa: S603
    started = time.time()
    records: dict[tuple, dict] = {}
    written: dict[tuple, dict] = {}
    stop = threading.Event()
    try:
        wait_assigned(group, registry.ticks.name, 4, worker)
        readers = [threading.Thread(target=read_outputs, args=(topics, True, stop, records), daemon=True),
                   threading.Thread(target=read_outputs, args=(topics, False, stop, written), daemon=True)]
        for reader in readers:
            reader.start()
        time.sleep(1)  # both readers assigned
        began = time.time()
        counted_from = began + args.warmup
        load_before = os.getloadavg()
        produce_steadily(registry.ticks.name, args.rate, args.warmup + args.seconds, threading.Event())
        deadline = time.monotonic() + 15
        last_count = -1
        while time.monotonic() < deadline and len(records) != last_count:  # until nothing new for 2 s
            last_count = len(records)
            time.sleep(2)
        stop.set()
        for reader in readers:
            reader.join(10)
        load_after = os.getloadavg()
    finally:
        worker.terminate()
        worker.wait(60)
        worker_log.close()
        delete_topics(BOOTSTRAP, prefix)
        delete_topics(BOOTSTRAP, f"changelog__{prefix}")
    for where, seen in written.items():
        if where in records:
            records[where] |= seen
    events = [json.loads(line) for line in trace_path.read_text().splitlines() if line.strip()]
    result = {"worker": args.worker, "guarantee": args.guarantee, "commit_interval_s": args.commit_interval,
              "rate": args.rate, "seconds": args.seconds, "warmup_s": args.warmup,
              "load_average": {"before": load_before, "after": load_after},
              "worker_started_s_before_feed": round(began - started, 2),
              **analyse(list(records.values()), events, counted_from, began),
              "work_dir": str(work)}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        (args.out.with_suffix(".records.jsonl")).write_text(
            "\n".join(json.dumps(record) for record in records.values()))
        (args.out.with_suffix(".events.jsonl")).write_text(trace_path.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", default="processor", choices=["processor", "passthrough"])
    parser.add_argument("--guarantee", default="exactly-once", choices=["exactly-once", "at-least-once"])
    parser.add_argument("--commit-interval", type=float, default=0.25)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--as-worker", choices=["processor", "passthrough"], help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_worker:
        args.worker = args.as_worker
        run_worker(args)
        return
    result = trace(args)
    print(json.dumps({key: value for key, value in result.items() if key != "slow_calls"}, indent=1))


if __name__ == "__main__":
    main()
