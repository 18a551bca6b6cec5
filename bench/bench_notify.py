"""Notifier throughput and latency against the running local broker, each beside the bare sender.

Measures, in one run (the load average is recorded around every phase: the machine is shared):

1. **bare senders** — the webhook sender alone (sequential POSTs to a local receiver, no Kafka, no
   ledger: per-call latency p50/p99 and calls/s) and the console sender alone (lines into a file);
2. **webhook lane** — ``stockstream notify`` with one webhook channel (rate limit lifted) over N
   waiting fresh signals: deliveries/s from the first to the last delivery the receiver saw, each
   one a concurrent delivery, a ledger entry and a share of a batched exactly-once commit;
3. **console lane** — ``stockstream notify`` without a subscription file (every signal on the
   console) over N waiting signals: deliveries/s from the first to the last line on its stdout;
4. **latency** — signals produced at a steady rate (500/s) while the webhook lane runs: signal event
   time (= produce time) → the receiver has the request; p50/p95/p99/max, compared like with like
   with the bare POST's p50/p99;
5. **start-up** — process start → first delivery of a signal already waiting (a detail).

Goals (issue 12): webhook lane ≥ 1,000 deliveries/s, console lane ≥ 5,000/s, p99 < 1 s at 500 signals/s.

A/B against another implementation: with ``BENCH_NOTIFY_BASELINE_TREE=<folder>`` (a source export of
another commit, e.g. ``git archive main | tar -x -C <folder>``; ``BENCH_NOTIFY_BASELINE_LABEL`` names
it) phases 2–4 also run that tree's ``stockstream notify`` (same interpreter and packages, its
source first on ``PYTHONPATH`` and as the working folder, so the lanes the supervisor starts with
``python -m`` import it too), alternating with ours, and each is reported beside it.

Run: ``.venv/bin/python bench/bench_notify.py [--quick] [--baseline-tree FOLDER]`` (prints the JSON), or
``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from bench.common import BenchOutput, Figure, Measure, percentile
from processors.notify.channels import build_sender
from processors.notify.channels.console import ConsoleSender
from processors.notify.channels.webhook import WebhookSender
from processors.notify.notification import render
from processors.notify.settings import NotifySettings
from processors.notify.subscriptions import NotifyConfig
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Lineage, Signal, encode, make_signal_id
from tests.support.fake_receivers.http import HttpReceiver
from tests.support.processes import ServiceProcess

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "XRP-USD", "DOGE-USD", "AVAX-USD", "DOT-USD")
TARGETS = {"webhook_per_s": 1000.0, "console_per_s": 5000.0, "latency_p99_ms": 1000.0}
SIZES = {  # quick, full
    True: {"webhook_signals": 1000, "console_signals": 5000, "latency_rate": 500.0, "latency_s": 6.0},
    False: {"webhook_signals": 10_000, "console_signals": 40_000, "latency_rate": 500.0, "latency_s": 30.0},
}


def signal(index: int, ts_event: datetime) -> Signal:
    symbol = SYMBOLS[index % len(SYMBOLS)]
    return Signal(signal_id=make_signal_id(symbol, "simulator", "1m", "rsi_reversal", "BUY", ts_event, 0, index),
                  symbol=symbol, venue="simulator", timeframe="1m", rule="rsi_reversal", side="BUY", price=43_000 + index,
                  strategy="rsi_reversal", strategy_version=None, condition=None,
                  indicators={"rsi_14": 30.5, "ema_12": 43_001.5, "ema_26": 42_990.1}, ts_event=ts_event,
                  ts_init=ts_event, lineage=Lineage(topic="ticks", partition=0, offset=index))


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def wait_for(check, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark step timed out: {what}")
        time.sleep(0.01)


class Run:
    """One namespaced notifier: a webhook channel on the local receiver, or the default console."""

    def __init__(self, bootstrap: str, folder: Path, name: str, web: HttpReceiver | None,
                 source: Path | None = None) -> None:
        self.namespace = f"bench{uuid.uuid4().hex[:8]}."
        self.bootstrap = bootstrap
        self.kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=self.namespace)
        topics = self.kafka.topics()
        ensure_topics(self.kafka, [topics.signals, topics.notifications_dlq])
        self.topic = topics.signals.name
        self.path = f"/{name}"
        self.env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STOCKSTREAM_TOPIC_PREFIX": self.namespace,
                    "NOTIFY_CONSUMER_GROUP": f"{self.namespace}notify", "NOTIFY_STATE_DIR": str(folder / name),
                    "NOTIFY_SUBSCRIPTIONS": "", "METRICS_PORT": "0", "LOG_LEVEL": "INFO",
                    "NOTIFY_MAX_AGE_S": "3600", "PYTHONUNBUFFERED": "1"}
        # Another implementation's source, found before the installed one: first on PYTHONPATH, and the
        # working folder (the supervisor starts each lane with ``python -m``, which puts it first on sys.path).
        self.source = source
        if source is not None:
            self.env["PYTHONPATH"] = str(source)
        if web is not None:
            subscriptions = folder / f"{name}.toml"
            # The rate limit is lifted so the figures measure the notifier, not the (default 10/s) webhook limit.
            subscriptions.write_text(f'[channels.hook]\ntype = "webhook"\nallow_private_network = true\nurl = "{web.url(self.path)}"\n'
                                     'rate_limit = {per_second = 10000, burst = 10000}\n'
                                     '[[subscriptions]]\nchannel = "hook"\ncooldown = 0\n')
            self.env["NOTIFY_SUBSCRIPTIONS"] = str(subscriptions)
        self.process: ServiceProcess | None = None
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})

    def produce(self, signals: list[Signal]) -> None:
        for item in signals:
            while True:
                try:
                    self.producer.produce(self.topic, key=item.symbol, value=encode(item))
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.producer.poll(0)
        self.producer.flush(60)

    def start(self) -> float:
        started = time.monotonic()
        self.process = ServiceProcess(["notify"], self.env, cwd=str(self.source) if self.source else None)
        print(f"{self.path[1:]}: notifier log {self.process.log_path}", file=sys.stderr)
        return started

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate(30)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        mine = [name for name in admin.list_topics(timeout=10).topics if self.namespace in name]
        if mine:
            for future in admin.delete_topics(mine, operation_timeout=30).values():
                future.exception()


def lane_cpu_s(supervisor_pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by the notifier's lane processes."""
    total = 0
    children = Path(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children")
    for pid in children.read_text().split() if children.exists() else []:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


class LineCounter:
    """Counts ``NOTIFY`` lines in a growing log file, reading only what is new at each call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._offset = 0
        self._partial = b""

    def __call__(self) -> int:
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
            self._offset = handle.tell()
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        self.count += sum(1 for line in lines if line.startswith(b"NOTIFY "))
        return self.count


def bare_webhook(web: HttpReceiver, count: int) -> dict[str, float]:
    """The webhook sender alone: ``count`` sequential POSTs on one event loop (the lane's client, kept alive)."""
    config = NotifyConfig.model_validate({"channels": {"hook": {"type": "webhook", "url": web.url("/baseline"),
                                                                "allow_private_network": True}},
                                          "subscriptions": [{"channel": "hook"}]})
    sender = build_sender("hook", config.channels["hook"], dict[str, SecretStr](), NotifySettings(),
                          now=lambda: datetime.now(UTC))
    assert isinstance(sender, WebhookSender)  # noqa: S101 - a webhook channel
    notes = [render(signal(i, datetime.now(UTC))) for i in range(count)]
    calls: list[float] = []

    async def post_all() -> float:
        started = time.monotonic()
        for note in notes:
            began = time.perf_counter()
            await sender.send(note)
            calls.append((time.perf_counter() - began) * 1000)
        elapsed = time.monotonic() - started
        await sender.aclose()
        return elapsed

    elapsed = asyncio.run(post_all())
    return {"per_s": count / elapsed, "ms_mean": sum(calls) / count, "ms_p50": percentile(calls, 0.5),
            "ms_p99": percentile(calls, 0.99), "count": count}


def bare_console(folder: Path, count: int) -> dict[str, float]:
    notes = [render(signal(i, datetime.now(UTC))) for i in range(count)]
    with (folder / "console-baseline.log").open("w") as stream:
        sender = ConsoleSender("console", stream)
        started = time.monotonic()
        for note in notes:
            sender.send(note)
        elapsed = time.monotonic() - started
    return {"per_s": count / elapsed, "count": count}


def webhook_lane(bootstrap: str, web: HttpReceiver, folder: Path, count: int, source: Path | None = None,
                 name: str = "webhook") -> dict[str, object]:
    run = Run(bootstrap, folder, name, web, source)
    try:
        now = datetime.now(UTC)
        run.produce([signal(i, now) for i in range(count)])
        began_load = load()
        started = run.start()
        assert run.process is not None
        supervisor = run.process.process.pid
        wait_for(lambda: len(web.answered(run.path)) >= 1, 180, "first webhook delivery")
        cpu_first = lane_cpu_s(supervisor)
        first = web.answered(run.path)[0].received_at
        wait_for(lambda: len(web.answered(run.path)) >= count, 900, "every webhook delivery")
        cpu_last = lane_cpu_s(supervisor)
        last = max(request.received_at for request in web.answered(run.path))
        return {"per_s": (count - 1) / (last - first), "count": count, "seconds": last - first,
                "per_lane_cpu_s": (count - 1) / max(cpu_last - cpu_first, 1e-9), "lane_cpu_s": cpu_last - cpu_first,
                "startup_to_first_delivery_s": first - started, "load_before": began_load, "load_after": load()}
    finally:
        run.stop()


def console_lane(bootstrap: str, folder: Path, count: int, source: Path | None = None,
                 name: str = "console") -> dict[str, object]:
    run = Run(bootstrap, folder, name, None, source)
    try:
        now = datetime.now(UTC)
        run.produce([signal(i, now) for i in range(count)])
        began_load = load()
        run.start()
        assert run.process is not None
        lines = LineCounter(run.process.log_path)
        supervisor = run.process.process.pid
        wait_for(lambda: lines() >= 1, 180, "first console line")
        first, cpu_first, seen_first = time.monotonic(), lane_cpu_s(supervisor), lines.count
        wait_for(lambda: lines() >= count, 900, "every console line")
        last, cpu_last = time.monotonic(), lane_cpu_s(supervisor)
        return {"per_s": (lines.count - 1) / (last - first), "count": count, "seconds": last - first,
                "per_lane_cpu_s": (lines.count - seen_first) / max(cpu_last - cpu_first, 1e-9),
                "lane_cpu_s": cpu_last - cpu_first,
                "poll_interval_s": 0.01, "load_before": began_load, "load_after": load()}
    finally:
        run.stop()


def latency(bootstrap: str, web: HttpReceiver, folder: Path, rate: float, seconds: float,
            source: Path | None = None, name: str = "latency") -> dict[str, object]:
    run = Run(bootstrap, folder, name, web, source)
    try:
        run.produce([signal(10_000_000, datetime.now(UTC))])  # warm-up: the lane is up and has delivered once
        run.start()
        wait_for(lambda: len(web.answered(run.path)) >= 1, 180, "the latency lane's first delivery")
        count = int(rate * seconds)
        began_load = load()
        began = time.monotonic()
        for index in range(count):
            due = began + index / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing the load generator at `rate`, not waiting for a result
            fresh = signal(20_000_000 + index, datetime.now(UTC))
            run.producer.produce(run.topic, key=fresh.symbol, value=encode(fresh))
            run.producer.poll(0)
        run.producer.flush(60)
        achieved = count / (time.monotonic() - began)
        wait_for(lambda: len(web.answered(run.path)) >= count + 1, 600, "every latency delivery")
        values = []
        for request in web.answered(run.path)[1:]:
            sent = datetime.fromisoformat(request.json()["signal"]["ts_event"])
            values.append((request.received_wall - sent).total_seconds() * 1000)
        return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "p99": percentile(values, 0.99),
                "max": max(values), "count": len(values), "rate_per_s": rate, "achieved_rate_per_s": achieved,
                "load_before": began_load, "load_after": load()}
    finally:
        run.stop()


def measure(quick: bool, bootstrap: str, baseline_tree: Path | None = None,
            baseline_label: str = "") -> dict[str, object]:
    """Every phase; with ``baseline_tree``, phases 2–4 for that implementation too (it goes first in each pair)."""
    sizes = SIZES[quick]
    results: dict[str, object] = {"sizes": sizes, "load_at_start": load()}
    if baseline_tree is not None:
        results["baseline_tree"] = {"label": baseline_label or str(baseline_tree), "path": str(baseline_tree)}
    with HttpReceiver() as web, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["bare_webhook_sender"] = bare_webhook(web, min(2000, int(sizes["webhook_signals"])))
        results["bare_console_sender"] = bare_console(folder, int(sizes["console_signals"]))
        hooks, lines = int(sizes["webhook_signals"]), int(sizes["console_signals"])
        rate, seconds = float(sizes["latency_rate"]), float(sizes["latency_s"])
        if baseline_tree is not None:
            results["baseline_webhook_lane"] = webhook_lane(bootstrap, web, folder, hooks, baseline_tree, "b-webhook")
        results["webhook_lane"] = webhook_lane(bootstrap, web, folder, hooks)
        if baseline_tree is not None:
            results["baseline_console_lane"] = console_lane(bootstrap, folder, lines, baseline_tree, "b-console")
        results["console_lane"] = console_lane(bootstrap, folder, lines)
        if baseline_tree is not None:
            results["baseline_latency_ms"] = latency(bootstrap, web, folder, rate, seconds, baseline_tree, "b-latency")
        results["latency_ms"] = latency(bootstrap, web, folder, rate, seconds)
    results["load_at_end"] = load()
    return results


def baseline_figures(found: dict[str, object]) -> list[Figure]:
    """Ours beside the other implementation (``BENCH_NOTIFY_BASELINE_TREE``), phase by phase, same run."""
    label = found["baseline_tree"]["label"]  # type: ignore[index]
    pairs = [
        ("webhook lane, A/B", "deliveries/s", "higher", "webhook_lane", "per_s", TARGETS["webhook_per_s"]),
        ("webhook lane per CPU second, A/B", "deliveries per CPU s", "higher", "webhook_lane", "per_lane_cpu_s",
         TARGETS["webhook_per_s"]),
        ("console lane, A/B", "deliveries/s", "higher", "console_lane", "per_s", TARGETS["console_per_s"]),
        ("console lane per CPU second, A/B", "deliveries per CPU s", "higher", "console_lane", "per_lane_cpu_s",
         TARGETS["console_per_s"]),
        ("latency p50 at 500 signals/s, A/B", "ms", "lower", "latency_ms", "p50", None),
        ("latency p99 at 500 signals/s, A/B", "ms", "lower", "latency_ms", "p99", TARGETS["latency_p99_ms"]),
    ]
    return [Figure(name=f"notifier {name}", unit=unit, better=better, target=target,
                   how="the same phase for both implementations, one after the other (the baseline first)",
                   baseline=Measure(label=f"stockstream notify at {label}",
                                    value=float(found[f"baseline_{phase}"][key])),  # type: ignore[index]
                   ours=Measure(label="stockstream notify, this tree", value=float(found[phase][key])))  # type: ignore[index]
            for name, unit, better, phase, key, target in pairs]


def run(quick: bool) -> BenchOutput:
    """The common entry point of ``bench/run_all.py``: each lane beside its bare sender, same run."""
    tree = os.environ.get("BENCH_NOTIFY_BASELINE_TREE")
    found = measure(quick, os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                    Path(tree) if tree else None, os.environ.get("BENCH_NOTIFY_BASELINE_LABEL", ""))
    sizes = SIZES[quick]
    hook, console = found["bare_webhook_sender"], found["bare_console_sender"]
    lane, lines, latency_ms = found["webhook_lane"], found["console_lane"], found["latency_ms"]
    rate = sizes["latency_rate"]
    how_latency = f"{latency_ms['count']} signals at {rate:g}/s; bare POSTs: {hook['count']} sequential calls"  # type: ignore[index]
    return BenchOutput(
        params=sizes,
        figures=[
            Figure(name="notifier webhook lane (concurrent deliveries, ledger, batched exactly-once commits)",
                   unit="deliveries/s", better="higher", target=TARGETS["webhook_per_s"],
                   how=f"{sizes['webhook_signals']} waiting signals, first to last delivery",
                   baseline=Measure(label="the webhook sender alone: sequential POSTs, no Kafka, no ledger",
                                    value=float(hook["per_s"])),  # type: ignore[index]
                   ours=Measure(label="stockstream notify, one webhook lane", value=float(lane["per_s"]))),  # type: ignore[index]
            Figure(name="notifier console lane (ledger, batched exactly-once commits)", unit="deliveries/s",
                   better="higher", target=TARGETS["console_per_s"],
                   how=f"{sizes['console_signals']} waiting signals, first to last line on stdout",
                   baseline=Measure(label="the console sender alone: lines into a file", value=float(console["per_s"])),  # type: ignore[index]
                   ours=Measure(label="stockstream notify, the console lane", value=float(lines["per_s"]))),  # type: ignore[index]
            Figure(name="notifier webhook lane per CPU second of the lane process (load-independent)",
                   unit="deliveries per CPU s", better="higher", target=TARGETS["webhook_per_s"],
                   how="the lane's user+system CPU between its first and last delivery; the bare sender's rate "
                       "is its wall rate on one thread",
                   baseline=Measure(label="the webhook sender alone: sequential POSTs (wall rate)",
                                    value=float(hook["per_s"])),  # type: ignore[index]
                   ours=Measure(label="stockstream notify, one webhook lane",
                                value=float(lane["per_lane_cpu_s"]))),  # type: ignore[index]
            Figure(name="notifier console lane per CPU second of the lane process (load-independent)",
                   unit="deliveries per CPU s", better="higher", target=TARGETS["console_per_s"],
                   how="the lane's user+system CPU between its first and last line",
                   baseline=Measure(label="the console sender alone: lines into a file (wall rate)",
                                    value=float(console["per_s"])),  # type: ignore[index]
                   ours=Measure(label="stockstream notify, the console lane",
                                value=float(lines["per_lane_cpu_s"]))),  # type: ignore[index]
            Figure(name="notifier latency p50 (signal event time → receiver)", unit="ms", better="lower",
                   how=how_latency, baseline=Measure(label="one bare webhook POST, p50", value=float(hook["ms_p50"])),  # type: ignore[index]
                   ours=Measure(label="stockstream notify p50", value=float(latency_ms["p50"]))),  # type: ignore[index]
            Figure(name="notifier latency p99 (signal event time → receiver)", unit="ms", better="lower",
                   target=TARGETS["latency_p99_ms"], how=how_latency,
                   baseline=Measure(label="one bare webhook POST, p99", value=float(hook["ms_p99"])),  # type: ignore[index]
                   ours=Measure(label="stockstream notify p99", value=float(latency_ms["p99"]))),  # type: ignore[index]
            *(baseline_figures(found) if "baseline_tree" in found else []),
        ],
        details=found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--baseline-tree", type=Path, help="another implementation's source folder, run A/B")
    args = parser.parse_args()
    results = measure(args.quick, args.bootstrap, args.baseline_tree)
    json.dump(results, sys.stdout, indent=2, default=lambda v: round(v, 2))
    print()


if __name__ == "__main__":
    main()
