"""Spark backfill throughput beside replaying the same log through the live processors and a vectorized pandas run.

    .venv/bin/python -m bench.bench_backfill [--ticks 5000000] [--quick] [--keep]

1. Fills a fresh namespace's ``ticks`` (4 partitions) with N ticks over 10 symbols from the
   built-in simulator on a simulated clock (``stockstream ingest --source simulator --rate 0
   --start-time … --step 0.1``: 1 s between ticks of a symbol, N/10 s of event time).
2. **Spark start-up**: time to a usable ``local[2]`` session with the Kafka jars, and the
   first (trivial) job.
3. **Backfill** of the whole log with ``local[2]`` into Parquet (automatic chunks): end-to-end
   (read, plan, recompute, write) and the recompute step alone.
4. **Chunking**: one symbol's backfill (N/10 ticks) unsplit (``chunks=1``) vs automatic chunks.
5. **Replay** of the same log through the live processor (``stockstream replay --from 0``
   with a fresh group); its rate is timed from outside like ``bench_process`` does: the group's
   committed offsets, from the first commit seen to the end (start-up reported apart).
6. **Vectorized** pandas/numpy computation of the same indicators (tick timeframe and 1m
   candle closes) in one process: compute only, and with loading the ticks from Kafka; its
   values are checked against the backfill's for one symbol.

Prints a JSON summary; ``run(quick)`` (``make bench``) returns the figures, each beside its
same-run baseline. The namespace is deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.common import BenchOutput, Figure, Measure
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from spark_jobs.backfill.job import BackfillRequest, run_backfill
from spark_jobs.progress import SparkProgress
from spark_jobs.session import build_session
from spark_jobs.settings import SparkJobSettings
from tests.support.kafka_tools import delete_topics, end_offsets

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "XRP-USD", "DOT-USD", "LTC-USD", "AVAX-USD",
           "LINK-USD", "ATOM-USD")


def log(message: str) -> None:
    print(f"[bench_backfill] {message}", file=sys.stderr, flush=True)


def generate(prefix: str, ticks: int) -> float:
    """Fill ``<prefix>ticks`` with the simulator; returns the seconds it took."""
    settings = KafkaSettings(topic_prefix=prefix, bootstrap_servers=BOOTSTRAP)
    ensure_topics(settings, settings.topics().all())
    began = time.perf_counter()
    subprocess.run(  # noqa: S603
        [STOCKSTREAM, "ingest", "--source", "simulator", "--symbols", ",".join(SYMBOLS), "--rate", "0",
         "--count", str(ticks), "--seed", "1", "--start-time", "2024-01-01T00:00:00", "--step", "0.1",
         "--metrics-port", "0", "--log-level", "WARNING"],
        env={**os.environ, "STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP},
        check=True)
    written = sum(end_offsets(BOOTSTRAP, f"{prefix}ticks").values())
    assert written == ticks, f"{written} ticks written, {ticks} wanted"
    return time.perf_counter() - began


def spark_backfill(prefix: str, folder: Path) -> dict[str, object]:
    """Start-up, the whole-log backfill and the chunking comparison, in one Spark session."""
    settings = SparkJobSettings(topic_prefix=prefix, bootstrap_servers=BOOTSTRAP, spark_master="local[2]")
    began = time.perf_counter()
    session = build_session(settings, "bench-backfill")
    startup = session.startup_s
    first_job = time.perf_counter()
    session.spark.range(1).count()
    first_job_s = time.perf_counter() - first_job
    out: dict[str, object] = {"startup_s": startup, "first_job_s": first_job_s,
                              "session_total_s": time.perf_counter() - began}
    try:
        with SparkProgress(session.spark, enabled=False) as progress:
            began = time.perf_counter()
            result = run_backfill(session.spark, settings, BackfillRequest(output=str(folder / "all")), progress)
            total = time.perf_counter() - began
        out["all"] = {"rows": result.rows, "seconds": total, "recompute_s": result.timings["recompute"],
                      "groups": len(result.groups), "timings": result.timings, "events": result.events,
                      "statuses": sorted({group.status for group in result.groups})}
        log(f"backfill: {result.rows:,} ticks in {total:.1f}s ({result.rows / total:,.0f} ticks/s end to end)")
        for label, chunks in (("one_symbol_unsplit", 1), ("one_symbol_chunked", None)):
            with SparkProgress(session.spark, enabled=False) as progress:
                began = time.perf_counter()
                single = run_backfill(session.spark, settings, BackfillRequest(
                    symbols=("BTC-USD",), chunks=chunks, output=str(folder / label)), progress)
                total = time.perf_counter() - began
            out[label] = {"rows": single.rows, "seconds": total, "recompute_s": single.timings["recompute"],
                          "chunks": len(single.groups),
                          "warmup_ticks": sum(group.warmup_ticks for group in single.groups)}
            log(f"{label}: {single.rows:,} ticks, {len(single.groups)} group(s), recompute "
                f"{single.timings['recompute']:.1f}s")
    finally:
        session.stop()
    return out


def _committed(admin: AdminClient, group: str, topic: str) -> int:
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
    return sum(tp.offset for tp in future.result().topic_partitions if tp.topic == topic and tp.offset > 0)


def replay(prefix: str, ticks: int) -> dict[str, float]:
    """``stockstream replay --from 0`` under a fresh group, timed from the group's commits."""
    group = f"{prefix}bench-replay-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic = f"{prefix}ticks"
    launched = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603
        [STOCKSTREAM, "replay", "--from", "0", "--group", group],
        env={**os.environ, "STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
             "LOG_LEVEL": "WARNING"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first_at = first_done = None
    done = 0
    while process.poll() is None:
        time.sleep(0.05)
        done = _committed(admin, group, topic)
        if done > 0 and first_at is None:
            first_at, first_done = time.perf_counter(), done
        if done >= ticks:
            break
    finished = time.perf_counter()
    stderr = process.communicate(timeout=600)[1]
    assert process.returncode == 0, stderr[-2000:]
    assert first_at is not None and first_done is not None
    rate = (ticks - first_done) / max(1e-9, finished - first_at)
    log(f"replay: {ticks:,} ticks, {rate:,.0f} ticks/s after a {first_at - launched:.1f}s start")
    return {"rate": rate, "startup_s": first_at - launched, "seconds": finished - launched}


# -- the vectorized baseline ---------------------------------------------------------------------------

def _seeded_ewm(values: np.ndarray, period: int, alpha: float) -> np.ndarray:
    """The contract's EMA: the mean of the first ``period`` values, then ``e += alpha·(x − e)``."""
    out = np.full(len(values), np.nan)
    if len(values) >= period:
        tail = values[period - 1:].copy()
        tail[0] = values[:period].mean()
        out[period - 1:] = pd.Series(tail).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def indicators(prices: np.ndarray, volumes: np.ndarray, days: np.ndarray) -> dict[str, np.ndarray]:
    """SMA 20/50, EMA 12/26, RSI 14 (Wilder), MACD 12/26/9, Bollinger 20×2, daily VWAP — vectorized."""
    series = pd.Series(prices)
    out = {f"sma_{n}": series.rolling(n).mean().to_numpy() for n in (20, 50)}
    for n in (12, 26):
        out[f"ema_{n}"] = _seeded_ewm(prices, n, 2 / (n + 1))
    change = np.diff(prices)
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    average_gain, average_loss = _seeded_ewm(gains, 14, 1 / 14), _seeded_ewm(losses, 14, 1 / 14)
    both = average_gain + average_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(both > 0, 100 * average_gain / both, 50.0)
    out["rsi_14"] = np.concatenate([[np.nan], np.where(np.isnan(both), np.nan, rsi)])
    macd = out["ema_12"] - out["ema_26"]
    signal = np.full(len(prices), np.nan)
    if len(prices) >= 25:
        signal[25:] = _seeded_ewm(macd[25:], 9, 2 / 10)
    out.update(macd=macd, macd_signal=signal, macd_hist=macd - signal)
    middle = series.rolling(20).mean()
    width = 2 * series.rolling(20).std(ddof=0)
    out.update(bb_upper=(middle + width).to_numpy(), bb_middle=middle.to_numpy(), bb_lower=(middle - width).to_numpy())
    frame = pd.DataFrame({"pv": prices * volumes, "v": volumes, "day": days})
    grouped = frame.groupby("day", sort=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["vwap"] = (grouped["pv"].cumsum() / grouped["v"].cumsum()).to_numpy()
    return out


def load_ticks(prefix: str) -> dict[str, pd.DataFrame]:
    """Every tick of the namespace from Kafka, per symbol, in log order (ts µs, price, volume)."""
    topic = f"{prefix}ticks"
    ends = end_offsets(BOOTSTRAP, topic)
    consumer = KafkaConsumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"bench-load-{uuid.uuid4().hex}",
                              "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    columns: dict[str, tuple[list[int], list[float], list[float]]] = {}
    left = {p for p, end in ends.items() if end > 0}
    while left:
        for message in consumer.consume(10_000, timeout=1.0):
            if message.error():
                continue
            tick = orjson.loads(message.value())
            ts, price, volume = columns.setdefault(tick["symbol"], ([], [], []))
            ts.append(_micros(tick["ts_event"]))
            price.append(tick["price"])
            volume.append(tick["volume"] or 0.0)
            if message.offset() + 1 >= ends[message.partition()]:
                left.discard(message.partition())
    consumer.close()
    return {symbol: pd.DataFrame({"ts": ts, "price": price, "volume": volume})
            for symbol, (ts, price, volume) in columns.items()}


def _micros(text: str) -> int:
    # "2024-01-01T00:00:01Z" / with fractions: numpy parses ISO 8601 (drop the Z).
    return int(np.datetime64(text.rstrip("Z"), "us").astype(np.int64))


def vectorized(frames: dict[str, pd.DataFrame]) -> tuple[float, dict[str, dict[str, np.ndarray]]]:
    """Seconds to compute every symbol's tick and 1m-candle indicators, and the tick values."""
    began = time.perf_counter()
    ticks: dict[str, dict[str, np.ndarray]] = {}
    for symbol, frame in frames.items():
        prices, volumes, ts = frame["price"].to_numpy(), frame["volume"].to_numpy(), frame["ts"].to_numpy()
        ticks[symbol] = indicators(prices, volumes, ts // 86_400_000_000)
        minute = ts // 60_000_000
        candles = frame.assign(minute=minute).groupby("minute", sort=True).agg(close=("price", "last"),
                                                                                 volume=("volume", "sum"))
        indicators(candles["close"].to_numpy(), candles["volume"].to_numpy(),
                   candles.index.to_numpy() // 1440)
    return time.perf_counter() - began, ticks


def compare_with_backfill(folder: Path, symbol: str, values: dict[str, np.ndarray]) -> float:
    """Largest relative difference between the vectorized and the backfill tick values of one symbol."""
    frame = (pd.read_parquet(folder / "indicators", filters=[("symbol", "=", symbol), ("timeframe", "=", "tick")])
             .sort_values(["partition", "offset"]))
    worst = 0.0
    for name, computed in values.items():
        ours = frame[f"i_{name}"].to_numpy(dtype=float, na_value=np.nan)
        both = ~np.isnan(ours) & ~np.isnan(computed[:len(ours)])
        if both.any():
            a, b = ours[both], computed[:len(ours)][both]
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))))
    return worst


def measure(ticks: int, keep: bool = False) -> dict[str, object]:
    prefix = f"benchbf{uuid.uuid4().hex[:6]}."
    results: dict[str, object] = {"ticks": ticks, "symbols": len(SYMBOLS), "prefix": prefix,
                                  "load_average_start": os.getloadavg()}
    try:
        log(f"generating {ticks:,} ticks into {prefix}ticks")
        results["generate_s"] = generate(prefix, ticks)
        with tempfile.TemporaryDirectory(prefix="bench-backfill-") as scratch:
            folder = Path(scratch)
            results["spark"] = spark_backfill(prefix, folder)
            began = time.perf_counter()
            frames = load_ticks(prefix)
            results["load_s"] = time.perf_counter() - began
            compute_s, values = vectorized(frames)
            results["vectorized_s"] = compute_s
            results["vectorized_max_rel_diff_btc"] = compare_with_backfill(folder / "all", "BTC-USD", values["BTC-USD"])
            log(f"vectorized: {ticks / compute_s:,.0f} ticks/s compute, load {results['load_s']:.1f}s")
        results["replay"] = replay(prefix, ticks)
        results["load_average_end"] = os.getloadavg()
    finally:
        if not keep:
            delete_topics(BOOTSTRAP, prefix)
    return results


def figures(results: dict[str, object]) -> list[Figure]:
    spark: dict = results["spark"]  # type: ignore[assignment]
    ticks = int(results["ticks"])  # type: ignore[arg-type]
    backfill = spark["all"]["rows"] / spark["all"]["seconds"]
    recompute = spark["all"]["rows"] / spark["all"]["recompute_s"]
    replayed: dict = results["replay"]  # type: ignore[assignment]
    vector = ticks / float(results["vectorized_s"])  # type: ignore[arg-type]
    vector_loaded = ticks / (float(results["vectorized_s"]) + float(results["load_s"]))  # type: ignore[arg-type]
    unsplit, chunked = spark["one_symbol_unsplit"], spark["one_symbol_chunked"]
    return [
        Figure(name="backfill throughput (local[2], 10 symbols)", unit="ticks/s", better="higher",
               ours=Measure(label="Spark backfill, read→Parquet", value=backfill),
               baseline=Measure(label="stockstream replay (live processor)", value=replayed["rate"]),
               how="one run each, same log; replay timed from its first commit", goal=2.0),
        Figure(name="backfill recompute vs vectorized limit", unit="ticks/s", better="higher",
               ours=Measure(label="Spark recompute step", value=recompute),
               baseline=Measure(label="pandas/numpy vectorized, indicators only", value=vector),
               how="vectorized: compute only, one process"),
        Figure(name="backfill vs vectorized incl. reading Kafka", unit="ticks/s", better="higher",
               ours=Measure(label="Spark backfill, read→Parquet", value=backfill),
               baseline=Measure(label="pandas/numpy, load + compute", value=vector_loaded),
               how="one run each", goal=0.2),
        Figure(name="chunking one symbol (local[2])", unit="ticks/s", better="higher",
               ours=Measure(label=f"{chunked['chunks']} chunks", value=chunked["rows"] / chunked["recompute_s"]),
               baseline=Measure(label="1 chunk", value=unsplit["rows"] / unsplit["recompute_s"]),
               how="recompute step, same session"),
        Figure(name="start-up overhead", unit="s", better="lower",
               ours=Measure(label="Spark session + jars + first job", value=spark["startup_s"] + spark["first_job_s"]),
               baseline=Measure(label="stockstream replay to first commit", value=replayed["startup_s"]),
               how="one run each"),
    ]


def run(quick: bool) -> BenchOutput:
    ticks = 500_000 if quick else 5_000_000
    results = measure(ticks)
    return BenchOutput(params={"ticks": ticks, "symbols": len(SYMBOLS), "master": "local[2]", "partitions": 4},
                       figures=figures(results), details=results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=5_000_000)
    parser.add_argument("--quick", action="store_true", help="500k ticks")
    parser.add_argument("--keep", action="store_true", help="keep the namespace's topics")
    args = parser.parse_args(argv)
    results = measure(500_000 if args.quick else args.ticks, keep=args.keep)
    output = {"results": results, "figures": [f.model_dump() for f in figures(results)]}
    print(json.dumps(output, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
