"""Notifier throughput, latency and start-up, against the running local broker.

Measures, in one run:
1. **baseline** — the webhook sender alone (no Kafka, no ledger): sequential POSTs to a local
   receiver, the cost of the HTTP call itself;
2. **deliver** — ``stockstream notify`` with one webhook channel over N pre-produced fresh
   signals: deliveries/s from the first to the last, each one a delivery, a ledger write and
   an exactly-once commit;
3. **skip** — N stale signals between two fresh markers on one partition (recorded as
   skipped-stale, nothing sent): records/s of the ledger + commit path alone;
4. **latency** — signals produced one by one at a steady rate while the notifier runs:
   signal event time (= produce time) → the receiver has the request; p50/p95/p99/max;
5. **start-up** — process start → first delivery of a signal already waiting in the log.

Run: ``.venv/bin/python bench/bench_notify.py [--signals N] [--rate R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from bench.common import BenchOutput, Figure, Measure
from processors.notify.channels import build_sender
from processors.notify.notification import render
from processors.notify.settings import NotifySettings
from processors.notify.subscriptions import NotifyConfig
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Lineage, Signal, encode, make_signal_id
from tests.support.fake_receivers.http import HttpReceiver
from tests.support.kafka_tools import produce
from tests.support.processes import ServiceProcess

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD")


def signal(index: int, ts_event: datetime, symbol: str | None = None) -> Signal:
    symbol = symbol or SYMBOLS[index % len(SYMBOLS)]
    return Signal(signal_id=make_signal_id(symbol, "1m", "rsi_reversal", "BUY", ts_event, 0, index), symbol=symbol,
                  timeframe="1m", rule="rsi_reversal", side="BUY", price=43_000 + index,
                  indicators={"rsi_14": 30.5, "ema_12": 43_001.5, "ema_26": 42_990.1}, ts_event=ts_event,
                  ts_init=ts_event, lineage=Lineage(topic="ticks", partition=0, offset=index))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Run:
    """One namespaced notifier with a webhook channel on a local receiver."""

    def __init__(self, bootstrap: str, web: HttpReceiver, folder: Path, name: str) -> None:
        self.namespace = f"bench{uuid.uuid4().hex[:8]}."
        self.bootstrap = bootstrap
        self.kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=self.namespace)
        topics = self.kafka.topics()
        ensure_topics(self.kafka, [topics.signals, topics.notifications_dlq])
        self.topic = topics.signals.name
        self.path = f"/{name}"
        subscriptions = folder / f"{name}.toml"
        # The rate limit is lifted so the figures measure the notifier, not the (default 10/s) webhook limit.
        subscriptions.write_text(f'[channels.hook]\ntype = "webhook"\nurl = "{web.url(self.path)}"\n'
                                 'rate_limit = {per_second = 10000, burst = 10000}\n'
                                 '[[subscriptions]]\nchannel = "hook"\ncooldown = 0\n')
        self.env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STOCKSTREAM_TOPIC_PREFIX": self.namespace,
                    "NOTIFY_CONSUMER_GROUP": f"{self.namespace}notify", "NOTIFY_STATE_DIR": str(folder / name),
                    "NOTIFY_SUBSCRIPTIONS": str(subscriptions), "METRICS_PORT": "0", "LOG_LEVEL": "INFO",
                    "NOTIFY_MAX_AGE_S": "3600"}
        self.process: ServiceProcess | None = None
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0})

    def produce(self, signals: list[Signal]) -> None:
        produce(self.bootstrap, self.topic, [(s.symbol, encode(s)) for s in signals])

    def produce_now(self, index: int) -> None:
        """One fresh signal through a long-lived producer, stamped right before it is sent."""
        fresh = signal(index, datetime.now(UTC))
        self.producer.produce(self.topic, key=fresh.symbol, value=encode(fresh))
        self.producer.flush()

    def start(self) -> float:
        started = time.monotonic()
        self.process = ServiceProcess(["notify"], self.env)
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


def wait_for(check, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.01)


def baseline(web: HttpReceiver, count: int) -> dict[str, float]:
    config = NotifyConfig.model_validate({"channels": {"hook": {"type": "webhook", "url": web.url("/baseline")}},
                                          "subscriptions": [{"channel": "hook"}]})
    sender = build_sender("hook", config.channels["hook"], dict[str, SecretStr](), NotifySettings(),
                          now=lambda: datetime.now(UTC))
    notes = [render(signal(i, datetime.now(UTC))) for i in range(count)]
    started = time.monotonic()
    for note in notes:
        sender.send(note)
    elapsed = time.monotonic() - started
    sender.close()
    return {"per_s": count / elapsed, "ms_each": 1000 * elapsed / count}


def measure(signals: int, rate: float, latency_signals: int, bootstrap: str) -> dict[str, object]:
    results: dict[str, object] = {"signals": signals}
    with HttpReceiver() as web, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["baseline_sender"] = baseline(web, signals)

        deliver = Run(bootstrap, web, folder, "deliver")
        try:
            now = datetime.now(UTC)
            deliver.produce([signal(i, now) for i in range(signals)])
            started = deliver.start()
            wait_for(lambda: len(web.answered(deliver.path)) >= 1, 120)
            first = web.answered(deliver.path)[0].received_at
            results["startup_to_first_delivery_s"] = first - started
            wait_for(lambda: len(web.answered(deliver.path)) >= signals, 600)
            last = web.answered(deliver.path)[-1].received_at
            results["deliver_per_s"] = (signals - 1) / (last - first)
        finally:
            deliver.stop()

        skip = Run(bootstrap, web, folder, "skip")
        try:
            # One symbol (one partition, so order holds): a fresh marker, N stale signals, a fresh marker.
            old = datetime.now(UTC) - timedelta(days=1)
            fresh = datetime.now(UTC) + timedelta(minutes=5)
            skip.produce([signal(0, fresh, "BTC-USD"), *(signal(i, old, "BTC-USD") for i in range(1, signals + 1)),
                          signal(signals + 1, fresh, "BTC-USD")])
            skip.start()
            wait_for(lambda: len(web.answered(skip.path)) >= 2, 600)
            first, last = web.answered(skip.path)[:2]
            results["skip_per_s"] = signals / (last.received_at - first.received_at)
        finally:
            skip.stop()

        live = Run(bootstrap, web, folder, "latency")
        try:
            live.produce([signal(10_000_000, datetime.now(UTC))])
            live.start()
            wait_for(lambda: len(web.answered(live.path)) >= 1, 120)
            interval = 1.0 / rate
            for index in range(latency_signals):
                live.produce_now(20_000_000 + index)
                time.sleep(interval)  # pacing the load generator, not waiting for a result
            wait_for(lambda: len(web.answered(live.path)) >= latency_signals + 1, 120)
            latencies = []
            for request in web.answered(live.path)[1:]:
                sent = datetime.fromisoformat(request.json()["signal"]["ts_event"])
                latencies.append((request.received_wall - sent).total_seconds() * 1000)
            results["latency_ms"] = {"p50": statistics.median(latencies), "p95": percentile(latencies, 0.95),
                                     "p99": percentile(latencies, 0.99), "max": max(latencies),
                                     "rate_per_s": rate, "count": len(latencies)}
        finally:
            live.stop()
    return results


def run(quick: bool) -> BenchOutput:
    """The common entry point of ``bench/run_all.py``: the notifier beside the bare webhook sender."""
    signals, rate, latency_signals = (100, 20.0, 40) if quick else (500, 20.0, 200)
    found = measure(signals, rate, latency_signals, os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    sender = found["baseline_sender"]
    latency = found["latency_ms"]
    bare = Measure(label="the webhook sender alone: sequential POSTs to the local receiver (no Kafka, no ledger)",
                   value=float(sender["per_s"]))  # type: ignore[index]
    call = Measure(label="one bare webhook POST (the sender alone)", value=float(sender["ms_each"]))  # type: ignore[index]
    return BenchOutput(
        params={"signals": signals, "latency_rate_per_s": rate, "latency_signals": latency_signals},
        figures=[
            Figure(name="notifier deliveries (webhook, ledger, exactly-once commit)", unit="deliveries/s",
                   better="higher", how=f"{signals} waiting signals, first to last delivery", baseline=bare,
                   ours=Measure(label="stockstream notify, one webhook lane",
                                value=float(found["deliver_per_s"]))),  # type: ignore[arg-type]
            Figure(name="notifier latency p50 (signal event time → receiver)", unit="ms", better="lower",
                   how=f"{latency_signals} signals at {rate:g}/s", baseline=call,
                   ours=Measure(label="stockstream notify p50", value=float(latency["p50"]))),  # type: ignore[index]
            Figure(name="notifier latency p99 (signal event time → receiver)", unit="ms", better="lower",
                   how=f"{latency_signals} signals at {rate:g}/s", baseline=call,
                   ours=Measure(label="stockstream notify p99", value=float(latency["p99"]))),  # type: ignore[index]
        ],
        details=found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signals", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="signals per second in the latency run")
    parser.add_argument("--latency-signals", type=int, default=200)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    args = parser.parse_args()
    results = measure(args.signals, args.rate, args.latency_signals, args.bootstrap)
    json.dump(results, sys.stdout, indent=2, default=lambda v: round(v, 2))
    print()


if __name__ == "__main__":
    main()
