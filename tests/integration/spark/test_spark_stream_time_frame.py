"""The backfill's per-record stream time in Spark (:func:`spark_jobs.backfill.job.with_stream_times`) on a small frame.

The frame has the columns :func:`~spark_jobs.backfill.job.read_log` gives (no Kafka here). Checks the values —
each record gets the highest event time of the earlier usable records of its partition and venue, -1 before
any — and that the frame is narrow: the window sorts a whole partition in one task, and with the payloads in
it a 5,000,000-tick log ran a 4 GiB ``local[2]`` driver out of heap (bench/bench_backfill.py, 2026-12-06).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.core.pipeline import PipelineConfig
from processors.core.timeutil import to_us
from schemas.events import Tick, encode
from spark_jobs.backfill.job import stream_end, with_stream_times

TOPIC = "ticks"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _row(partition: int, offset: int, symbol: str, venue: str, seconds: float, price: float = 100.0) -> tuple:
    moment = START + timedelta(seconds=seconds)
    key = f"{symbol}@{venue}".encode()
    value = encode(Tick(symbol=symbol, venue=venue, price=price, volume=1.0, ts_event=moment, ts_init=moment,
                        source=venue, source_id=f"{partition}-{offset}"))
    return (key.decode(), key, partition, offset, int(moment.timestamp() * 1000), value)


def test_each_record_gets_its_partition_and_venues_stream_time_before_it(spark_session):
    rows = [
        _row(0, 0, "BTC-USD", "a", 10),
        _row(0, 1, "ETH-USD", "a", 30),
        _row(0, 2, "BTC-USD", "b", 5),   # another venue: its own clock
        _row(0, 3, "BTC-USD", "a", 20),  # behind the stream time: does not move it
        _row(0, 4, "ETH-USD", "a", 40, price=5e12),  # out of bounds: never moves the clock
        _row(0, 5, "BTC-USD", "a", 35),
        _row(1, 0, "BTC-USD", "a", 100),  # another partition: its own clock
        _row(1, 1, "SOL-USD", "a", 90),
    ]
    raw = spark_session.spark.createDataFrame(
        rows, "key string, record_key binary, partition int, offset long, timestamp_ms long, value binary")
    clocks = with_stream_times(raw, TOPIC, PipelineConfig(candle_timeframes=("1m",), grace_ms=5_000), None)

    assert clocks.columns == ["partition", "offset", "key", "clock_us", "stream_time"]  # no payload in the window
    found = {(row["partition"], row["offset"]): (row["clock_us"], row["stream_time"]) for row in clocks.collect()}
    us = {seconds: to_us(START + timedelta(seconds=seconds)) for seconds in (5, 10, 20, 30, 35, 90, 100)}
    assert found == {
        (0, 0): (us[10], -1), (0, 1): (us[30], us[10]), (0, 2): (us[5], -1), (0, 3): (us[20], us[30]),
        (0, 4): (-1, us[30]), (0, 5): (us[35], us[30]), (1, 0): (us[100], -1), (1, 1): (us[90], us[100]),
    }
    assert stream_end(clocks) == {(0, "a"): us[35], (0, "b"): us[5], (1, "a"): us[100]}
