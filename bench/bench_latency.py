"""End-to-end latency of ``stockstream process`` beside a Quix pass-through reading the same ticks at the same time.

    .venv/bin/python -m bench.bench_latency [--quick] [--rate 1000] [--seconds 60] [--warmup 10]
                                            [--intervals 0.1,0.25,0.5,1] [--only eos|busy|alo|sweep]

Tick produced (its ``ts_init``) → output readable by a ``read_committed`` consumer. Each
configuration uses a fresh namespace (4 partitions, 10 symbols) and runs, **at the same time on
the same ticks**, in their own consumer groups:

- ``stockstream process`` (outputs ``indicators`` and ``signals``; the figures are on signals);
- the Quix pass-through of ``bench_process`` (stateless ``apply`` → ``to_topic``), with the same
  guarantee, commit interval, producer ``linger.ms`` and consumer poll timeout as the processor;
- for the headline configuration (exactly-once, 0.25 s) also the same pass-through with Quix's
  default poll timeout (1 s): the A/B of the end-of-input stall (docs/stream.md).

A producer thread sends ``--rate`` ticks/s (paced every 5 ms, linger 5 ms like ``stockstream
ingest``), each stamped with ``ts_init`` = its production time; a reader thread polls one record at
a time and stamps each with the wall time it was read (``consume(n, timeout)`` would wait out its
timeout for a full batch: that 0–50 ms was the old "64 ms floor" of at-least-once, and the
at-least-once configuration measures it again beside the per-record reader). Ticks produced during
the first ``--warmup`` seconds are not counted; every later one is, up to the end of the feed and
its drain. Configurations:

- ``eos``: exactly-once at 0.25 s commits (the default), the goal p99 ≤ 400 ms, max ≤ 600 ms; before
  its feed, each worker's CPU over ``--idle`` seconds without input (what the shorter poll costs);
- ``busy``: the same with one core kept busy by a CPU burner this bench starts (goal p99 ≤ 600 ms);
- ``alo``: at-least-once at its default 5 s commits (goal p99 < 50 ms);
- ``sweep``: exactly-once at each ``--intervals`` commit interval: p50/p99/max at the steady rate,
  and the throughput (a backlog drained on one partition, ``bench_process.measure``) of both sides.

The load average is recorded before and after every configuration: on a shared machine the figures
move with it (the goals are for a quiet machine).
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.bench_process import poll_timeout as passthrough_poll_timeout
from bench.common import BenchOutput, Figure, Measure, percentile
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from processors.stream.settings import DEFAULT_COMMIT_INTERVAL_S
from schemas.events import Tick, encode
from schemas.topics import TopicSpec
from tests.support.kafka_tools import delete_topics

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))
SYMBOLS = [f"LAT{i:02d}-USD" for i in range(10)]
EOS_DEFAULT = DEFAULT_COMMIT_INTERVAL_S["exactly-once"]
ALO_DEFAULT = DEFAULT_COMMIT_INTERVAL_S["at-least-once"]
QUIX_DEFAULT_POLL_TIMEOUT_S = 1.0
GOALS_MS = {"eos_p99": 400.0, "eos_max": 600.0, "busy_p99": 600.0, "alo_p99": 50.0}
TS_INIT = b'"ts_init":"'


def summary(latencies: list[tuple[float, float]], began: float) -> dict:
    """Percentiles (ms) of (produced at, latency s) pairs, the worst and when, and the max per second."""
    if not latencies:
        return {"count": 0}
    ordered = sorted(latency for _, latency in latencies)
    worst_at, worst = max(latencies, key=lambda pair: pair[1])
    per_second: dict[int, float] = {}
    for produced, latency in latencies:
        second = int(produced - began)
        per_second[second] = max(per_second.get(second, 0.0), latency)
    return {"count": len(ordered), **{f"p{round(q * 100)}_ms": round(percentile(ordered, q) * 1000, 1)
                                      for q in (0.5, 0.9, 0.99)},
            "max_ms": round(worst * 1000, 1), "worst_at_s": round(worst_at - began, 2),
            "max_ms_per_second": [round(per_second.get(s, 0.0) * 1000) for s in range(max(per_second) + 1)]}


def produce_steadily(topic: str, rate: float, seconds: float, stop: threading.Event) -> int:
    """Ticks at ``rate``/s for ``seconds``, each stamped with its production time; returns the count."""
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
            tick = Tick(symbol=symbol, venue="bench", price=round(prices[symbol], 4), volume=1.0,
                        ts_event=event_time, ts_init=datetime.now(UTC), source="bench", source_id=str(sent))
            producer.produce(topic, value=encode(tick), key=f"{symbol}@bench".encode())
            sent += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(30)
    return sent


def produced_at(value: bytes) -> float:
    """The ``ts_init`` of a derived event or tick, without parsing the whole document."""
    start = value.index(TS_INIT) + len(TS_INIT)
    return datetime.fromisoformat(value[start:value.index(b'"', start)].decode()).timestamp()


@dataclass
class Reader:
    """Reads every output topic of a configuration; records (produced at, latency) per side."""

    sides: dict[str, str]  # topic → side
    batched: bool = False  # the old reader: consume(1000, timeout=0.05), read time = when the batch returns
    seen: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    last_read: float = 0.0

    def run(self, stop: threading.Event, ready: threading.Event) -> None:
        consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"lat-{uuid.uuid4().hex}",
                             "isolation.level": "read_committed", "enable.auto.commit": False,
                             "fetch.wait.max.ms": 10, "auto.offset.reset": "earliest"})
        metadata = consumer.list_topics(timeout=10)
        consumer.assign([TopicPartition(topic, partition, 0) for topic in self.sides
                         for partition in metadata.topics[topic].partitions])
        ready.set()
        try:
            while not stop.is_set():
                if self.batched:
                    messages = consumer.consume(1000, timeout=0.05)
                else:
                    first = consumer.poll(0.05)
                    messages = [first, *consumer.consume(500, timeout=0)] if first is not None else []
                read_at = time.time()
                for message in messages:
                    if message.error() or message.value() is None:
                        continue
                    produced = produced_at(message.value())
                    self.seen.setdefault(self.sides[message.topic()], []).append((produced, read_at - produced))
                    self.last_read = read_at
        finally:
            consumer.close()


def wait_assigned(group: str, topic: str, partitions: int, worker: subprocess.Popen[bytes],
                  timeout_s: float = 180) -> None:
    """Until ``group`` is stable with every partition of ``topic`` assigned (raises if the worker exits)."""
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
                return
        except Exception:  # noqa: BLE001, S110 - the group does not exist yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{group} did not get {topic} assigned")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu_share(workers: dict[str, tuple[str, subprocess.Popen[bytes]]], seconds: float) -> dict[str, float]:
    """Each worker's CPU (share of one core) over ``seconds`` without input: what its idle poll loop costs."""
    began = {side: (time.monotonic(), cpu_seconds(worker.pid)) for side, (_, worker) in workers.items()}
    time.sleep(seconds)
    return {side: (cpu_seconds(worker.pid) - began[side][1]) / (time.monotonic() - began[side][0])
            for side, (_, worker) in workers.items()}


def start_burner() -> subprocess.Popen[bytes]:
    """One process spinning on a core for the whole configuration ("one core kept busy")."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])  # noqa: S603


def run_configuration(name: str, guarantee: str, interval: float, args: argparse.Namespace, *,
                      busy: bool = False, quix_defaults: bool = False, batched_reader: bool = False) -> dict:
    """Ours and the pass-through(s) on the same ticks at the same time; latency summaries per side."""
    prefix = f"lat{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix, partitions=4)
    registry = kafka.topics()
    ensure_topics(kafka, registry.all())
    sides = {registry.indicators.name: "processor indicators", registry.signals.name: "processor signals",
             f"{prefix}passthrough": "passthrough"}
    if quix_defaults:
        sides[f"{prefix}passthrough-quix"] = "passthrough, Quix default poll timeout"
    ensure_topics(kafka, [TopicSpec(topic, "symbol", Tick, 4) for topic in sides if "passthrough" in topic])
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    poll_timeout = passthrough_poll_timeout(interval)  # what the processor uses (its setting or default)
    workers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    burner = start_burner() if busy else None
    readers = [Reader({topic: side for topic, side in sides.items()})]
    if batched_reader:
        readers.append(Reader({topic: f"{side}, batched reader" for topic, side in sides.items()}, batched=True))
    stop_reading = threading.Event()
    load_before = os.getloadavg()
    try:
        group = f"{prefix}processor"
        env = {**os.environ, "STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
               "METRICS_PORT": "0", "LOG_LEVEL": "WARNING", "PROCESSING_GUARANTEE": guarantee,
               "PROCESS_COMMIT_INTERVAL_SECONDS": str(interval), "PROCESS_CONSUMER_GROUP": group,
               "PROCESS_STATE_DIR": str(work / "processor")}
        workers["processor"] = (group, subprocess.Popen([STOCKSTREAM, "process"], env=env))  # noqa: S603
        for topic, side in sides.items():
            if not side.startswith("passthrough"):
                continue
            group = f"{topic}-group"
            timeout = QUIX_DEFAULT_POLL_TIMEOUT_S if "Quix default" in side else poll_timeout
            command = [sys.executable, "-m", "bench.bench_process", "--worker", "passthrough", "--group", group,
                       "--input", registry.ticks.name, "--output", topic, "--guarantee", guarantee,
                       "--commit-interval", str(interval), "--state-dir", str(work / topic)]
            workers[side] = (group, subprocess.Popen(  # noqa: S603
                command, env={**os.environ, "PROCESS_POLL_TIMEOUT_SECONDS": str(timeout)}))
        for group, worker in workers.values():
            wait_assigned(group, registry.ticks.name, 4, worker)
        idle_cpu = idle_cpu_share(workers, args.idle) if quix_defaults else {}
        threads = []
        for reader in readers:
            ready = threading.Event()
            threads.append(threading.Thread(target=reader.run, args=(stop_reading, ready), daemon=True))
            threads[-1].start()
            ready.wait(30)
        began = time.time()
        cpu_at_count = {}
        warmed = threading.Timer(args.warmup, lambda: cpu_at_count.update(
            {side: (time.monotonic(), cpu_seconds(worker.pid)) for side, (_, worker) in workers.items()}))
        warmed.start()
        sent = produce_steadily(registry.ticks.name, args.rate, args.warmup + args.seconds, threading.Event())
        fed = time.time()
        cpu_used = {side: (cpu_seconds(worker.pid) - cpu_at_count[side][1]) / (time.monotonic() - cpu_at_count[side][0])
                    for side, (_, worker) in workers.items() if side in cpu_at_count}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and time.time() - max(fed, *(r.last_read for r in readers)) < 3:
            time.sleep(0.1)  # drained: nothing new for 3 s after the feed (a side still behind shows in its count)
        stop_reading.set()
        for thread in threads:
            thread.join(10)
    finally:
        for _, worker in workers.values():
            worker.terminate()
        for _, worker in workers.values():
            worker.wait(60)
        if burner is not None:
            burner.kill()
            burner.wait()
        delete_topics(BOOTSTRAP, prefix)
        delete_topics(BOOTSTRAP, f"changelog__{prefix}")
    counted_from = began + args.warmup
    result = {"configuration": name, "guarantee": guarantee, "commit_interval_s": interval,
              "poll_timeout_s": poll_timeout, "one_core_busy": busy, "ticks_sent": sent,
              "ticks_counted": sent - round(args.rate * args.warmup),  # each side's count should match (± 1 s)
              "load_average": {"before": [round(x, 2) for x in load_before],
                               "after": [round(x, 2) for x in os.getloadavg()]},
              "worker_cpu_share": {side: round(share, 3) for side, share in cpu_used.items()},
              "idle_cpu_share": {side: round(share, 4) for side, share in idle_cpu.items()}}
    for reader in readers:
        for side, latencies in reader.seen.items():
            result[side] = summary([pair for pair in latencies if pair[0] >= counted_from], counted_from)
    print(json.dumps({key: value for key, value in result.items()
                      if not isinstance(value, dict) or "max_ms_per_second" not in value}
                     | {side: {k: v for k, v in value.items() if k != "max_ms_per_second"}
                        for side, value in result.items() if isinstance(value, dict) and "count" in value}),
          flush=True)
    return result


def throughput(interval: float, ticks: int) -> dict:
    """Backlog drain rate of both sides at a commit interval (bench_process: one partition, same backlog)."""
    from bench.bench_process import measure

    found = measure(ticks, 10, "exactly-once", commit_interval=interval)
    return {"ticks": ticks, "processor": found["processor"], "passthrough": found["passthrough"]}


def latency_figure(name: str, quantile: str, result: dict, how: str, baseline_side: str = "passthrough",
                   baseline_label: str = "Quix pass-through (same ticks, same settings)") -> Figure:
    return Figure(name=name, unit="ms", better="lower", how=how,
                  ours=Measure(label="stockstream process → signals", value=result["processor signals"][quantile]),
                  baseline=Measure(label=baseline_label, value=result[baseline_side][quantile]))


def measure_all(args: argparse.Namespace) -> BenchOutput:
    """Every configuration asked for; figures beside their same-run baselines, raw summaries in details."""
    how = (f"{args.rate:g} ticks/s for {args.seconds:g}s after {args.warmup:g}s warm-up, 4 partitions; ours and "
           "the pass-through consume the same ticks at the same time; ts_init → read by a read_committed consumer")
    figures: list[Figure] = []
    details: dict[str, object] = {"goals_ms": GOALS_MS}
    only = set(args.only.split(",")) if args.only else {"eos", "busy", "alo", "sweep"}
    if "eos" in only:
        eos = run_configuration(f"exactly-once {EOS_DEFAULT:g}s", "exactly-once", EOS_DEFAULT, args,
                                quix_defaults=True)
        details["eos"] = eos
        label = f"exactly-once, {EOS_DEFAULT:g} s commits"
        figures += [latency_figure(f"tick → signal latency {q}, {label}", f"{q}_ms", eos, how)
                    for q in ("p50", "p99", "max")]
        figures.append(Figure(
            name=f"end-of-input stall: pass-through max, {label}", unit="ms", better="lower", how=how,
            ours=Measure(label=f"pass-through, poll timeout {eos['poll_timeout_s']:g} s (as ours)",
                         value=eos["passthrough"]["max_ms"]),
            baseline=Measure(label="pass-through, Quix default poll timeout 1 s",
                             value=eos["passthrough, Quix default poll timeout"]["max_ms"])))
        idle = eos["idle_cpu_share"]
        figures.append(Figure(
            name="CPU of the idle poll loop (no input)", unit="% of one core", better="lower",
            how=f"{args.idle:g} s without input before the feed, /proc CPU time of each worker, same run",
            ours=Measure(label=f"pass-through, poll timeout {eos['poll_timeout_s']:g} s",
                         value=round(idle["passthrough"] * 100, 3)),
            baseline=Measure(label="pass-through, Quix default poll timeout 1 s",
                             value=round(idle["passthrough, Quix default poll timeout"] * 100, 3))))
    if "busy" in only:
        busy = run_configuration(f"exactly-once {EOS_DEFAULT:g}s, one core busy", "exactly-once", EOS_DEFAULT,
                                 args, busy=True)
        details["busy"] = busy
        figures += [latency_figure(f"tick → signal latency {q}, exactly-once {EOS_DEFAULT:g} s, one core busy",
                                   f"{q}_ms", busy, how + "; a CPU burner spins on one core") for q in ("p99", "max")]
    if "alo" in only:
        alo = run_configuration(f"at-least-once {ALO_DEFAULT:g}s", "at-least-once", ALO_DEFAULT, args,
                                batched_reader=True)
        details["alo"] = alo
        figures += [latency_figure(f"tick → signal latency {q}, at-least-once", f"{q}_ms", alo, how)
                    for q in ("p50", "p99")]
        figures.append(Figure(
            name="at-least-once p99: per-record reader vs consume(1000, timeout=0.05)", unit="ms", better="lower",
            how=how + "; two readers of the same outputs in the same run",
            ours=Measure(label="poll, read time per record", value=alo["processor signals"]["p99_ms"]),
            baseline=Measure(label="consume(1000, 0.05): the batch's return time (the old bench reader)",
                             value=alo["processor signals, batched reader"]["p99_ms"])))
    if "sweep" in only:
        sweep = []
        for interval in (float(value) for value in args.intervals.split(",")):
            row = (details["eos"] if interval == EOS_DEFAULT and "eos" in details else
                   run_configuration(f"exactly-once {interval:g}s", "exactly-once", interval, args))
            drained = throughput(interval, args.backlog)
            sweep.append({"commit_interval_s": interval, "latency": row, "throughput": drained})
            figures.append(latency_figure(f"tick → signal latency p99, exactly-once, {interval:g} s commits",
                                          "p99_ms", row, how))
            figures.append(Figure(
                name=f"throughput, exactly-once, {interval:g} s commits", unit="ticks/s", better="higher",
                how=f"{args.backlog:,}-tick backlog on 1 partition drained (bench_process), rate from committed offsets",
                ours=Measure(label="stockstream process", value=float(drained["processor"]["per_second"])),
                baseline=Measure(label="Quix pass-through", value=float(drained["passthrough"]["per_second"]))))
        details["sweep"] = sweep
    details["goals_met"] = goals_met(details)
    return BenchOutput(params={"rate": args.rate, "seconds": args.seconds, "warmup": args.warmup,
                               "intervals": args.intervals, "backlog": args.backlog},
                       figures=figures, details=details)


def goals_met(details: dict) -> dict:
    """Each goal of issue 19 against this run (they are for a quiet machine: see the load averages)."""
    checks = {"eos_p99": ("eos", "p99_ms"), "eos_max": ("eos", "max_ms"), "busy_p99": ("busy", "p99_ms"),
              "alo_p99": ("alo", "p99_ms")}
    found = {}
    for goal, (where, key) in checks.items():
        if where in details:
            value = details[where]["processor signals"][key]
            found[goal] = {"goal_ms": GOALS_MS[goal], "value_ms": value,
                           "met": value < GOALS_MS[goal] if goal == "alo_p99" else value <= GOALS_MS[goal],
                           "load_average_before": details[where]["load_average"]["before"]}
    return found


def arguments(quick: bool, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", default=quick)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=None, help="counted seconds (60; quick 15)")
    parser.add_argument("--warmup", type=float, default=None, help="uncounted seconds first (10; quick 5)")
    parser.add_argument("--intervals", default="0.1,0.25,0.5,1", help="exactly-once commit intervals of the sweep")
    parser.add_argument("--idle", type=float, default=None,
                        help="seconds without input before the headline feed, for the idle loop's CPU (10; quick 5)")
    parser.add_argument("--backlog", type=int, default=None, help="ticks drained per interval (200000; quick 20000)")
    parser.add_argument("--only", default="", help="comma-separated: eos, busy, alo, sweep (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="also write the BenchOutput JSON here")
    args = parser.parse_args(argv if argv is not None else [])
    args.seconds = args.seconds if args.seconds is not None else (15.0 if args.quick else 60.0)
    args.warmup = args.warmup if args.warmup is not None else (5.0 if args.quick else 10.0)
    args.idle = args.idle if args.idle is not None else (5.0 if args.quick else 10.0)
    args.backlog = args.backlog if args.backlog is not None else (20_000 if args.quick else 200_000)
    return args


def run(quick: bool) -> BenchOutput:
    """The common entry point of ``bench/run_all.py``."""
    return measure_all(arguments(quick))


def main() -> None:
    args = arguments(False, sys.argv[1:])
    output = measure_all(args)
    text = output.model_dump_json(indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
