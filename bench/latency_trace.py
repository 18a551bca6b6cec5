"""Where the exactly-once latency goes: per-record stage timestamps and the worker's transaction timeline.

    .venv/bin/python -m bench.latency_trace [--worker processor|passthrough] [--seconds 60] [--commit-interval 0.25]
                                            [--poll-timeout 1.0] [--rdkafka-debug eos] [--out FILE] [--keep DIR]
                                            [--broker-request-log .stack-trace/kafka/requests.log]
    STACK_KAFKA_PORT=19692 STACK_KAFKA_CONTROLLER_PORT=19693 .venv/bin/python -m bench.latency_trace \
        --start-broker .stack-trace          # a private broker (the stack's settings) logging every request

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
gives each stage's percentiles, a per-second timeline with the worst record's dominant stage, the
slowest records, the transaction calls' durations, what happened after the last tick, the
producer's request counts per transaction (statistics), and — with ``--broker-request-log`` — the
broker's own timings per request type (AddPartitionsToTxn, EndTxn, WriteTxnMarkers, …).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from bisect import bisect_left
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from bench.bench_latency import produce_steadily, produced_at, wait_assigned
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
                # Every broker handle, the logical TxnCoordinator/GroupCoordinator ones (nodeid -1) included:
                # transaction requests are counted on those.
                brokers = {name: {key: broker.get(key) for key in ("nodeid", "rtt", "int_latency", "outbuf_latency",
                                                                   "req")}
                           for name, broker in stats.get("brokers", {}).items()}
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
                headers = dict(message.headers() or [])
                into[where] = {"visible": seen, "produced": produced_at(message.value()),
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


STAGES = {
    "total": "ts_init → visible to read_committed",
    "to_broker": "ts_init → tick appended (broker LogAppendTime)",
    "to_consume": "tick appended → consumed by the worker (poll_row returned)",
    "handler": "consumed → output handed to the producer",
    "out_to_written": "handed to the producer → seen by a read_uncommitted consumer",
    "written_to_visible": "seen read_uncommitted → seen read_committed",
    "out_to_commit_start": "handed to the producer → its checkpoint's commit starts",
    "commit": "Checkpoint.commit: flush + send_offsets_to_transaction + commit_transaction",
    "commit_end_to_visible": "commit returned → visible to read_committed (markers, LSO, fetch)",
}


def record_stages(record: dict, commits: list[dict], commit_ends: list[float]) -> dict:
    """One output record's stages (s), with the checkpoint whose transaction carried it."""
    produced = record["produced"]
    row = {"produced": produced, "total": record["visible"] - produced,
           "to_broker": record["appended"] - produced, "to_consume": record["consumed"] - record["appended"],
           "handler": record["out"] - record["consumed"],
           "out_to_written": record.get("written", record["visible"]) - record["out"],
           "written_to_visible": record["visible"] - record.get("written", record["visible"])}
    index = bisect_left(commit_ends, record["out"])
    if index < len(commits):
        commit = commits[index]
        row |= {"out_to_commit_start": commit["began"] - record["out"], "commit": commit["seconds"],
                "commit_end_to_visible": record["visible"] - commit_ends[index], "commit_began": commit["began"]}
    return row


def analyse(records: list[dict], events: list[dict], counted_from: float, began: float, fed: float) -> dict:
    """Stage percentiles, a per-second timeline, the slowest records, the transaction calls, the end of input."""
    commits = sorted((event for event in events if event["kind"] == "checkpoint_commit"), key=lambda e: e["began"])
    commit_ends = [event["began"] + event["seconds"] for event in commits]
    rows = [record_stages(record, commits, commit_ends) for record in records
            if record["produced"] >= counted_from and record.get("out")]
    summary = {stage: percentiles([row[stage] for row in rows if stage in row]) for stage in STAGES}
    per_second: dict[int, list[dict]] = {}
    for row in rows:
        per_second.setdefault(int(row["produced"] - began), []).append(row)
    timeline = []
    for second in sorted(per_second):
        bucket = per_second[second]
        worst = max(bucket, key=lambda row: row["total"])
        timeline.append({"second": second, "count": len(bucket),
                         "p50_ms": round(sorted(row["total"] for row in bucket)[len(bucket) // 2] * 1000),
                         "max_ms": round(worst["total"] * 1000),
                         "worst_stage": max((stage for stage in STAGES if stage not in ("total", "commit")
                                             and stage in worst and stage != "written_to_visible"),
                                            key=lambda stage: worst[stage])})

    def rounded(row: dict) -> dict:
        return {key: (round(value - began, 3) if key in ("produced", "commit_began") else round(value * 1000, 1))
                for key, value in row.items()}

    calls: dict[str, list[float]] = {}
    for event in events:
        if "seconds" in event and event["kind"] != "poll_empty" and event.get("began", 0) >= counted_from:
            calls.setdefault(event["kind"], []).append(event["seconds"])
    after_input = [{"kind": event["kind"], "at_s": round(event.get("began", event["t"] - event.get("seconds", 0))
                                                          - began, 3), "seconds": round(event.get("seconds", 0), 3)}
                   for event in events if fed - 0.5 <= event["t"] <= fed + 3 and event["kind"] in
                   ("poll_empty", "checkpoint_commit", "quix_retry_sleep")]
    return {"stages": summary, "stage_meaning": STAGES, "timeline": timeline,
            "slowest": [rounded(row) for row in sorted(rows, key=lambda row: -row["total"])[:10]],
            "calls_after_warmup": {kind: percentiles(values) for kind, values in calls.items()},
            "retry_sleeps": [event for event in events if event["kind"] == "quix_retry_sleep"],
            "polls_waiting_over_50ms": [{"at_s": round(event["t"] - event["seconds"] - began, 3),
                                         "seconds": round(event["seconds"], 3)}
                                        for event in events if event["kind"] == "poll_empty"
                                        and event["t"] >= began],
            "end_of_input": {"last_tick_at_s": round(fed - began, 3), "events": after_input},
            "librdkafka": librdkafka_summary(events, counted_from)}


def librdkafka_summary(events: list[dict], counted_from: float) -> dict:
    """From the producer's statistics (stats_cb): requests per transaction, round trips, eos state."""
    stats = [event for event in events if event["kind"] == "producer_stats" and event.get("brokers")]
    window = [event for event in stats if event["t"] >= counted_from]
    if len(window) < 2:
        return {}
    first, last = window[0], window[-1]
    requests: dict[str, int] = {}
    for broker, values in last["brokers"].items():
        for name, count in (values.get("req") or {}).items():
            requests[name] = requests.get(name, 0) + count - (first["brokers"].get(broker, {}).get("req") or {}).get(
                name, 0)
    transactions = max(1, requests.get("EndTxn", 0))
    return {"requests_during_window": {name: count for name, count in requests.items() if count},
            "add_partitions_to_txn_per_transaction": round(requests.get("AddPartitionsToTxn", 0) / transactions, 2),
            "broker_rtt_ms_last_window": {broker: {key: round(values["rtt"][key] / 1000, 2) for key in ("p50", "p99")}
                                          for broker, values in last["brokers"].items()
                                          if values.get("rtt") and values.get("nodeid", -1) >= 0},
            "eos_last": last.get("eos")}


def broker_requests(log: Path, since: float, until: float) -> dict:
    """Per request type, the broker's own timings (kafka.request.logger at DEBUG) between two wall times."""
    pattern = re.compile(r"^\[(\S+)\] DEBUG Completed request:(.*) \(kafka\.request\.logger\)$")
    found: dict[str, list[tuple[float, float, float]]] = {}
    for line in log.read_text(errors="replace").splitlines():
        matched = pattern.match(line)
        if not matched:
            continue
        at = datetime.strptime(matched.group(1), "%Y-%m-%dT%H:%M:%S,%f").astimezone().timestamp()  # broker: local
        if not since <= at <= until:
            continue
        request = json.loads(matched.group(2))
        header = request["requestHeader"]
        name = header["requestApiKeyName"]
        if name == "ADD_PARTITIONS_TO_TXN":
            name += " (broker verification)" if header.get("clientId", "").startswith("AddPartitions") else " (client)"
        found.setdefault(name, []).append((request["totalTimeMs"], request["localTimeMs"], request["remoteTimeMs"]))
    summary = {}
    for name, timings in sorted(found.items()):
        totals = sorted(timing[0] for timing in timings)
        summary[name] = {"count": len(timings), "total_p50_ms": totals[len(totals) // 2],
                         "total_p99_ms": totals[min(len(totals) - 1, int(0.99 * len(totals)))],
                         "total_max_ms": totals[-1],
                         "local_p99_ms": sorted(timing[1] for timing in timings)[int(0.99 * (len(timings) - 1))],
                         "remote_p99_ms": sorted(timing[2] for timing in timings)[int(0.99 * (len(timings) - 1))]}
    return summary


def trace(args: argparse.Namespace) -> dict:
    """Run one traced worker against a steady feed; the analysis (records and raw events kept aside)."""
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
           "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "METRICS_PORT": "0", "LOG_LEVEL": "WARNING",
           "PROCESSING_GUARANTEE": args.guarantee, "PROCESS_COMMIT_INTERVAL_SECONDS": str(args.commit_interval),
           "PROCESS_CONSUMER_GROUP": group, "PROCESS_STATE_DIR": str(work / "state")}
    if args.poll_timeout is not None:
        env["PROCESS_POLL_TIMEOUT_SECONDS"] = str(args.poll_timeout)
    if args.rdkafka_debug:
        env[RDKAFKA_DEBUG_ENV] = args.rdkafka_debug
    topics = [output] if args.worker == "passthrough" else [registry.indicators.name, registry.signals.name]
    with open(work / "worker.log", "w") as worker_log:
        worker = subprocess.Popen(command, env=env, stderr=worker_log)  # noqa: S603
        records: dict[tuple, dict] = {}
        written: dict[tuple, dict] = {}
        stop = threading.Event()
        try:
            wait_assigned(group, registry.ticks.name, 4, worker)
            readers = [threading.Thread(target=read_outputs, args=(topics, True, stop, records), daemon=True),
                       threading.Thread(target=read_outputs, args=(topics, False, stop, written), daemon=True)]
            for reader in readers:
                reader.start()
            time.sleep(1)  # both readers assigned before the first tick
            began = time.time()
            load_before = os.getloadavg()
            produce_steadily(registry.ticks.name, args.rate, args.warmup + args.seconds, threading.Event())
            fed = time.time()
            deadline, count = time.monotonic() + 30, -1
            while time.monotonic() < deadline and len(records) != count:  # drained: nothing new for 2 s
                count = len(records)
                time.sleep(2)
            stop.set()
            for reader in readers:
                reader.join(10)
            load_after = os.getloadavg()
        finally:
            worker.terminate()
            worker.wait(60)
            delete_topics(BOOTSTRAP, prefix)
            delete_topics(BOOTSTRAP, f"changelog__{prefix}")
    for where, seen in written.items():
        if where in records:
            records[where] |= seen
    events = [json.loads(line) for line in trace_path.read_text().splitlines() if line.strip()]
    result = {"worker": args.worker, "guarantee": args.guarantee, "commit_interval_s": args.commit_interval,
              "poll_timeout_s": args.poll_timeout if args.poll_timeout is not None else "default",
              "rate": args.rate, "seconds": args.seconds, "warmup_s": args.warmup,
              "started_at": datetime.fromtimestamp(began, UTC).isoformat(),
              "load_average": {"before": [round(x, 2) for x in load_before],
                               "after": [round(x, 2) for x in load_after]},
              "priority": os.getpriority(os.PRIO_PROCESS, 0),
              **analyse(list(records.values()), events, began + args.warmup, began, fed)}
    if args.broker_request_log:
        result["broker_requests"] = broker_requests(args.broker_request_log, began + args.warmup, fed)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        (args.keep / "records.jsonl").write_text("\n".join(json.dumps(record) for record in records.values()))
        (args.keep / "events.jsonl").write_text(trace_path.read_text())
    shutil.rmtree(work, ignore_errors=True)
    return result


# -- a private broker that logs every request with its timings ---------------------------------------------

def start_traced_broker(state_dir: Path, port: int, controller_port: int) -> int:
    """Start a KRaft broker like the local stack's, plus request and transaction-coordinator DEBUG logs.

    Writes ``<state_dir>/kafka/requests.log`` (pass it as ``--broker-request-log``); returns the pid.
    The broker settings are the stack's (:class:`stockstream.stack.services.Kafka`), unchanged.
    """
    from stockstream.stack.services import Kafka, StackSettings

    with socket.socket() as probe:  # the SASL listener: a free port, never the shared stack's
        probe.bind(("127.0.0.1", 0))
        sasl_port = int(probe.getsockname()[1])
    kafka = Kafka(StackSettings(state_dir=state_dir, kafka_port=port, kafka_controller_port=controller_port,
                                kafka_sasl_port=sasl_port))
    kafka.prepare()
    requests = kafka.home / "requests.log"
    logging_config = kafka.home / "log4j2.properties"
    logging_config.write_text(logging_config.read_text() + "\n".join([
        "appender.requests.type = File", "appender.requests.name = REQUESTS",
        f"appender.requests.fileName = {requests}", "appender.requests.layout.type = PatternLayout",
        "appender.requests.layout.pattern = [%d{ISO8601}] %p %m (%c)%n",
        *(line for index, logger in enumerate(("kafka.request.logger", "kafka.coordinator.transaction"))
          for line in (f"logger.traced{index}.name = {logger}", f"logger.traced{index}.level = debug",
                       f"logger.traced{index}.additivity = false",
                       f"logger.traced{index}.appenderRef.requests.ref = REQUESTS")), ""]))
    with open(kafka.home / "broker.log", "a") as log:
        broker = subprocess.Popen(kafka.command(), stdout=log, stderr=log, start_new_session=True)  # noqa: S603
    (kafka.home / "broker.pid").write_text(str(broker.pid))
    return broker.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", default="processor", choices=["processor", "passthrough"])
    parser.add_argument("--guarantee", default="exactly-once", choices=["exactly-once", "at-least-once"])
    parser.add_argument("--commit-interval", type=float, default=0.25)
    parser.add_argument("--poll-timeout", type=float, default=None,
                        help="PROCESS_POLL_TIMEOUT_SECONDS for the worker (default: the processor's; Quix's is 1.0)")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rdkafka-debug", default="", help="librdkafka debug contexts for the worker, e.g. eos")
    parser.add_argument("--broker-request-log", type=Path, default=None,
                        help="requests.log of a broker started with --start-broker: summarised per request type")
    parser.add_argument("--out", type=Path, default=None, help="write the analysis JSON here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the per-record stamps and raw events here")
    parser.add_argument("--start-broker", type=Path, default=None, metavar="STATE_DIR",
                        help="only start a traced private broker (ports from STACK_KAFKA_PORT/_CONTROLLER_PORT)")
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
    if args.start_broker:
        pid = start_traced_broker(args.start_broker, int(os.environ.get("STACK_KAFKA_PORT", "19692")),
                                  int(os.environ.get("STACK_KAFKA_CONTROLLER_PORT", "19693")))
        print(f"broker pid {pid}; requests log {args.start_broker / 'kafka' / 'requests.log'}")
        return
    result = trace(args)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(json.dumps({key: result[key] for key in ("worker", "load_average", "stages", "end_of_input")}, indent=1))


if __name__ == "__main__":
    main()
