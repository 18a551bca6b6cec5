"""Throughput of the materializer against a plain pipelined ``HSET`` loop (redis-py), same Redis, same run.

    .venv/bin/python -m bench.bench_materialize [--ticks 18000] [--symbols 4] [--rounds 3] [--batch 2000]

Input: a realistic log — per symbol, ticks one second apart with everything the processors
derive from them (tick-timeframe indicator snapshot per tick, 1m candles and their snapshots,
rsi_reversal/ema_cross signals, a running daily summary): about 2.2 events per tick.

1. Write path (records already in memory, as after ``consume``): the materializer's
   ``BatchPlanner.plan`` + ``ViewStore.apply`` per batch (strict pydantic decoding, Lua
   compare-and-set, capped sorted sets, live PUBLISH) versus, per batch, one redis-py
   pipeline with one ``HSET key field raw_value`` per record. Rounds are interleaved.
2. End to end (Kafka → Redis): the backlog in a fresh 4-partition namespace, drained by the
   real ``Materializer`` (commits after each batch) versus a bare confluent-kafka consumer
   doing the pipelined HSET loop and the same async commits. Rate = records / (time the last
   one was written − time the first one was written), so start-up is excluded.

The figure reported is materializer / HSET loop (goal ≥ 50 %), the median of the per-round ratios
(each round runs both back to back, so a busy machine affects both alike): the figure and its
baseline are the two rates of the round whose ratio is that median (:func:`median_round`), so the
ratio shown is the median ratio itself, not a ratio of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime

import redis
from confluent_kafka import Consumer

from bench.common import BenchOutput, Figure, Measure
from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, InputRecord
from processors.materialize.service import Materializer
from processors.materialize.settings import MaterializeSettings
from processors.materialize.store import ViewStore
from processors.runtime.kafka_admin import ensure_topics
from tests.integration.views.streams import Stream, make_stream, produce_stream
from tests.integration.views.test_views_store import log_of
from tests.support.kafka_tools import delete_topics

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def build_stream(ticks: int, symbols: int) -> Stream:
    stream = Stream()
    for index in range(symbols):
        stream.extend(make_stream(f"SYM{index}-USD", count=ticks, price=100.0 * (index + 1), seed=index))
    return stream


def drop(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=prefix + "*", count=5000))
    for start in range(0, len(keys), 5000):
        client.delete(*keys[start:start + 5000])


def hset_loop(client: redis.Redis, prefix: str, batches: list[list[InputRecord]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        pipe = client.pipeline(transaction=False)
        for record in batch:
            pipe.hset(f"{prefix}{record.key.decode()}", record.topic, record.value)  # type: ignore[union-attr]
        pipe.execute()
    return time.perf_counter() - started


def materializer_path(client: redis.Redis, prefix: str, batches: list[list[InputRecord]],
                      settings: MaterializeSettings) -> float:
    keys = ViewKeys(prefix)
    planner = BatchPlanner(keys, settings.input_topics(), settings.caps(), lambda: datetime.now(UTC))
    store = ViewStore(client, keys)
    started = time.perf_counter()
    for batch in batches:
        store.apply(planner.plan(batch))
    return time.perf_counter() - started


def write_path(stream: Stream, rounds: int, batch_size: int) -> dict[str, object]:
    from schemas.topics import TopicRegistry

    settings = MaterializeSettings(topic_prefix="x.")
    assert settings.topics().ticks.name == TopicRegistry(prefix="x.").ticks.name
    records = log_of(stream)
    records.sort(key=lambda r: (r.offset, r.topic))  # interleave topics roughly as a consumer sees them
    batches = [records[i:i + batch_size] for i in range(0, len(records), batch_size)]
    client = redis.Redis.from_url(REDIS_URL)
    baseline, ours = [], []
    for _ in range(rounds):
        for name, runner, results in (("hset", None, baseline), ("materialize", settings, ours)):
            prefix = f"bench.{uuid.uuid4().hex[:6]}:"
            try:
                seconds = (hset_loop(client, prefix, batches) if runner is None
                           else materializer_path(client, prefix, batches, runner))
            finally:
                drop(client, prefix)
            results.append(len(records) / seconds)
            print(f"  write path {name:<11} {len(records) / seconds:>10,.0f} events/s")
    client.close()
    return {"events": len(records), **median_round(ours, baseline, "events")}


def _watch(total: int, read: callable) -> tuple[float, float]:  # type: ignore[valid-type]
    """Poll ``read()`` (records done so far) until it reaches ``total``; (first-progress time, done time)."""
    first = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        done = read()
        now = time.perf_counter()
        if done > 0 and first is None:
            first = now
        if done >= total:
            return first or now, now
        time.sleep(0.01)
    raise TimeoutError(f"only {read()} of {total} records done")


def _hset_consumer(settings: MaterializeSettings, client: redis.Redis, group: str, prefix: str,
                   total: int) -> float:
    """Bare consumer + pipelined HSET + async commit per batch; returns records/s."""
    consumed = [0]
    stop = threading.Event()

    def run() -> None:
        consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "enable.auto.commit": False,
                             "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
        consumer.subscribe(settings.input_topics().names)
        while not stop.is_set():
            messages = [m for m in consumer.consume(settings.batch_max_records, timeout=0.2) if not m.error()]
            if not messages:
                continue
            pipe = client.pipeline(transaction=False)
            for message in messages:
                pipe.hset(f"{prefix}{message.key().decode()}", message.topic(), message.value())
            pipe.execute()
            consumer.commit(asynchronous=True)
            consumed[0] += len(messages)
        consumer.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    first, last = _watch(total, lambda: consumed[0])
    stop.set()
    thread.join(30)
    return total / (last - first)


def _materializer(settings: MaterializeSettings, total: int) -> float:
    """The real Materializer (own group, own prefix) in a thread; returns records/s."""
    stop = threading.Event()
    materializer = Materializer(settings, stop=stop)
    thread = threading.Thread(target=materializer.run, daemon=True)
    thread.start()
    first, last = _watch(total, lambda: materializer.records_done)
    stop.set()
    thread.join(30)
    return total / (last - first)


def end_to_end(stream: Stream, rounds: int) -> dict[str, object]:
    namespace = f"bench{uuid.uuid4().hex[:6]}."
    base = MaterializeSettings(bootstrap_servers=BOOTSTRAP, topic_prefix=namespace, redis_url=REDIS_URL,
                               redis_key_prefix=namespace, metrics_port=0, partitions=4)
    ensure_topics(base, base.topics().all())
    total = produce_stream(BOOTSTRAP, base.topics(), stream)
    client = redis.Redis.from_url(REDIS_URL)
    baseline, ours = [], []
    try:
        for index in range(rounds):
            baseline.append(_hset_consumer(base, client, f"{namespace}hset{index}", f"{namespace}h{index}:", total))
            print(f"  end to end hset loop   {baseline[-1]:>10,.0f} records/s")
            settings = base.model_copy(update={"consumer_group": f"{namespace}mat{index}",
                                               "redis_key_prefix": f"{namespace}m{index}:"})
            ours.append(_materializer(settings, total))
            print(f"  end to end materialize {ours[-1]:>10,.0f} records/s")
            drop(client, namespace)
    finally:
        drop(client, namespace)
        client.close()
        delete_topics(BOOTSTRAP, namespace)
    return {"records": total, **median_round(ours, baseline, "records")}


def median_round(ours: list[float], baseline: list[float], unit: str) -> dict[str, object]:
    """The round whose ratio (ours / baseline of that round) is the median of the per-round ratios.

    Its two rates are the reported figure and baseline, so the figure's ratio *is* the median of the
    per-round ratios (the lower median for an even number of rounds: always a real round), and the
    figure and its baseline come from the same round. Every round's rates and ratio are kept.
    """
    ratios = [mine / theirs for mine, theirs in zip(ours, baseline, strict=True)]
    median = statistics.median_low(ratios)
    chosen = ratios.index(median)
    return {f"hset_{unit}_per_s": baseline[chosen], f"materialize_{unit}_per_s": ours[chosen],
            "median_round": chosen, f"hset_{unit}_per_s_per_round": baseline,
            f"materialize_{unit}_per_s_per_round": ours, "ratio_per_round": ratios, "ratio": median}


def measure(ticks: int, symbols: int, rounds: int, batch: int, skip_kafka: bool = False) -> dict[str, object]:
    print(f"building {symbols} × {ticks} ticks with derived events…")
    stream = build_stream(ticks, symbols)
    print(f"{stream.size:,} events ({len(stream.ticks):,} ticks, {len(stream.indicators):,} snapshots, "
          f"{len(stream.candles):,} candles, {len(stream.signals):,} signals, {len(stream.daily):,} daily)")
    results: dict[str, object] = {"load_average_at_start": os.getloadavg(),
                                  "write_path": write_path(stream, rounds, batch)}
    if not skip_kafka:
        results["end_to_end"] = end_to_end(stream, rounds)
    return results


def run(quick: bool) -> BenchOutput:
    """The common entry point of ``bench/run_all.py``: the materializer beside a pipelined HSET loop."""
    ticks, symbols, rounds = (1_500, 2, 3) if quick else (18_000, 4, 3)
    found = measure(ticks, symbols, rounds, 2000)
    write, e2e = found["write_path"], found["end_to_end"]
    how = (f"the round with the median ratio of {rounds} interleaved rounds ({symbols} symbols × {ticks:,} ticks"
           " + derived events)")
    return BenchOutput(
        params={"ticks_per_symbol": ticks, "symbols": symbols, "rounds": rounds, "batch": 2000},
        figures=[
            Figure(name="materializer write path (records in memory → Redis)", unit="events/s", better="higher",
                   how=how, ours=Measure(label="BatchPlanner.plan + ViewStore.apply (decode, CAS, caps, live)",
                                         value=float(write["materialize_events_per_s"])),  # type: ignore[index]
                   baseline=Measure(label="redis-py pipelined HSET per record, same batches",
                                    value=float(write["hset_events_per_s"]))),  # type: ignore[index]
            Figure(name="materializer end to end (Kafka → Redis, commits)", unit="records/s", better="higher",
                   how=how, ours=Measure(label="stockstream materialize (Materializer)",
                                         value=float(e2e["materialize_records_per_s"])),  # type: ignore[index]
                   baseline=Measure(label="bare confluent-kafka consumer + pipelined HSET + async commit",
                                    value=float(e2e["hset_records_per_s"]))),  # type: ignore[index]
        ],
        details=found)


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=18_000, help="ticks per symbol")
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--skip-kafka", action="store_true", help="only the write path")
    args = parser.parse_args()
    results = measure(args.ticks, args.symbols, args.rounds, args.batch, args.skip_kafka)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
