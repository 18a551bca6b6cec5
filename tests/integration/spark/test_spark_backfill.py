"""The Spark backfill against the real Kafka log: its events equal a full in-process run of the live logic.

The reference (see :mod:`synthetic`) runs the live processor's per-record code over the whole
log from offset 0; a backfill of any range must produce the same events for the records in
that range, value for value (floats to 1e-9), whatever the warm-up and chunking. One test
compares with the output topics of a real ``stockstream process`` run over the same log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from processors.core.timeutil import to_us
from processors.materialize.keys import ViewKeys
from spark_jobs.backfill.job import BackfillRequest, BackfillResult, run_backfill
from spark_jobs.backfill.ranges import RangeRequest
from spark_jobs.progress import SparkProgress
from tests.integration.spark.compare import differences, rank_frame, ranked, read_dataset, same_json
from tests.integration.spark.conftest import LOG_START, SYMBOLS
from tests.support.kafka_tools import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.spark]
KINDS = ("indicators", "candles", "signals", "daily", "dead_letters")


def _backfill(spark_session, spark_log, request):
    with SparkProgress(spark_session.spark, enabled=False) as progress:
        return run_backfill(spark_session.spark, spark_log.settings(), request, progress)


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class Chunked:
    starts: dict[int, int]
    output: Path
    result: BackfillResult


@pytest.fixture(scope="module")
def chunked(spark_session, spark_log, tmp_path_factory) -> Chunked:
    """A backfill from 40 % into every partition: warm-up before the range, three chunks per symbol."""
    starts = {p: end * 2 // 5 for p, end in spark_log.ends().items()}
    # The record whose key is not UTF-8 stays in the range: its partition also holds the keyless records,
    # which the producer spreads at random, so 40 % of that partition may or may not pass it.
    odd = next(record for record in spark_log.records if record.key and not _utf8(record.key))
    starts[odd.partition] = min(starts[odd.partition], odd.offset)
    output = tmp_path_factory.mktemp("chunked") / "out"
    request = BackfillRequest(range=RangeRequest(from_offset=starts), output=str(output), chunks=3)
    return Chunked(starts, output, _backfill(spark_session, spark_log, request))


def test_backfill_from_an_offset_in_chunks_equals_the_run_from_the_log_start(chunked, spark_log):
    """Every chunk is warmed up on its own and still equals the sequential run from offset 0."""
    result, ends = chunked.result, spark_log.ends()
    instruments = [f"{symbol}@synthetic" for symbol in SYMBOLS]  # a group per instrument
    symbols = [group for group in result.groups if group.key in instruments]
    odd = [group for group in result.groups if group.key not in (*instruments, None)]
    # The record keyed b"\xe2\x82BTC-USD@synthetic\xff" (not UTF-8): a group of its own (U+FFFD for the bad
    # bytes), kept.
    assert [(g.key.strip("\ufffd"), g.rows) for g in odd] == [("BTC-USD@synthetic", 1)], odd
    assert sorted((g.key, g.chunk) for g in symbols) == [(s, c) for s in sorted(instruments) for c in range(3)]
    assert all(group.status == "converged" for group in symbols), symbols
    assert all(group.warmup_before_day >= result.warmup.periods for group in symbols)
    keyless = [group for group in result.groups if group.key is None]
    assert keyless and all(group.status == "exact" for group in keyless), "records without a key: no state"
    for kind in KINDS:
        expected = spark_log.reference.between(kind, chunked.starts)
        problems = differences(kind, read_dataset(chunked.output, kind), expected)
        assert not problems, "\n".join(problems)
        assert result.events[kind] == len(expected), kind
    assert result.rows == sum(ends[p] - chunked.starts[p] for p in ends)
    assert result.events["dead_letters"] > 0 and result.events["signals"] > 0


def test_backfill_equals_the_live_processors_output_topics(chunked, live_outputs):
    """The same backfill against what `stockstream process` (LIVE_UPDATE_INTERVAL=0) committed to its output topics.

    Every event, value for value. The processor closes a quiet instrument's windows when the other
    instruments of its partition move the stream time, the backfill when the instrument's own next tick
    does (or, for its last windows, at the stream time of the log's end); what a close emits is the same
    either way — the window's last tick's ``ts_init`` and lineage, ids made from it (docs/core.md, "What
    a close emits") — and so is each instrument's sequence of events of each kind. Only *after which
    record* a close is written differs, so the instrument's events are paired by their order: the backfill
    from 40 % of the log writes exactly the last events of each instrument and kind of the live run. Dead
    letters, written by their own record, are paired by position as before.
    """
    for kind in ("indicators", "signals", "daily", "candles"):
        frame = read_dataset(chunked.output, kind)
        instruments = sorted(set(zip(frame["symbol"], frame["venue"], strict=True)))
        assert instruments, kind
        expected, rows = [], []
        for number, (symbol, venue) in enumerate(instruments):
            ours = frame[(frame["symbol"] == symbol) & (frame["venue"] == venue)]  # in emission order already
            live = [event for *_, event in sorted(  # a topic partition per instrument: its offsets are its order
                (item for item in getattr(live_outputs, kind) if (item[3].symbol, item[3].venue) == (symbol, venue)),
                key=lambda item: item[2])]
            assert len(live) >= len(ours) > 0, (kind, symbol)
            tail = live[len(live) - len(ours):]
            expected += [(number, index, 0, event) for index, event in enumerate(tail)]
            ours = ours.assign(partition=number, offset=range(len(ours)), seq=0)
            rows.append(ours)
        problems = differences(kind, pd.concat(rows, ignore_index=True), expected)
        assert not problems, "\n".join(problems)
    expected = ranked(live_outputs.between("dead_letters", chunked.starts))
    problems = differences("dead_letters", rank_frame(read_dataset(chunked.output, "dead_letters")), expected)
    assert not problems, "\n".join(problems)
    assert len(expected) > 0


def test_backfill_of_the_whole_log_to_parquet_and_topics_equals_the_full_run(spark_session, spark_log, tmp_path):
    """≥100k ticks, automatic chunks; the .backfill topics carry byte-identical events in log order."""
    request = BackfillRequest(output=str(tmp_path / "out"), topics=True)
    result = _backfill(spark_session, spark_log, request)

    assert result.rows == len(spark_log.records) >= 100_000
    assert all(group.status in ("exact", "converged") for group in result.groups)
    assert any(group.status == "exact" for group in result.groups)
    for kind in KINDS:
        problems = differences(kind, read_dataset(tmp_path / "out", kind), getattr(spark_log.reference, kind))
        assert not problems, "\n".join(problems)

    registry = spark_log.settings().topics()
    signals = read_topic(spark_log.bootstrap, registry.signals.name + ".backfill")
    expected = [event for _, _, _, event in spark_log.reference.signals]
    by_symbol: dict[str, list[bytes]] = {}
    for record in signals:
        by_symbol.setdefault(record.key.decode(), []).append(record.value)
    for symbol, values in by_symbol.items():
        assert values == [e.model_dump_json().encode() for e in expected if f"{e.symbol}@{e.venue}" == symbol], symbol
    assert sum(len(v) for v in by_symbol.values()) == len(expected)
    daily = read_topic(spark_log.bootstrap, registry.aggregates_daily.name + ".backfill")
    assert len(daily) == len(spark_log.reference.daily)
    dead = read_topic(spark_log.bootstrap, registry.ticks_dlq.name + ".backfill")
    assert sorted(r.value for r in dead) == sorted(e.model_dump_json().encode()
                                                   for *_, e in spark_log.reference.dead_letters)


def test_backfill_of_an_event_time_range_for_one_symbol_with_redis_views(spark_session, spark_log, tmp_path,
                                                                         redis_prefix):
    """--from-time/--to-time select by tick event time; --symbols narrows the read; views land in Redis."""
    begin, end = LOG_START.replace(hour=0, minute=0) + _days(3.5), LOG_START + _days(5)
    # Two chunks asked for: the automatic count keeps chunks ≥ four warm-ups, and the default 1d scorecard
    # horizon makes the warm-up 7 h + 1 day (longer than this 1.5-day range's share).
    request = BackfillRequest(range=RangeRequest(from_time=begin, to_time=end), symbols=("ETH-USD",),
                              output=str(tmp_path / "out"), redis_prefix=redis_prefix.prefix, chunks=2)
    result = _backfill(spark_session, spark_log, request)

    assert [group.key for group in result.groups] == ["ETH-USD@synthetic"] * len(result.groups)
    assert len(result.groups) > 1
    assert all(group.status == "converged" for group in result.groups)
    # The range: from ETH-USD's first tick at/after `begin` to its last one before `end`, in log order.
    eth = sorted((r.partition, r.offset, _ts(r.value)) for r in spark_log.records if r.key == b"ETH-USD@synthetic")
    inside = [i for i, (_, _, ts) in enumerate(eth) if ts is not None and to_us(begin) <= ts < to_us(end)]
    first, last = eth[inside[0]][:2], eth[inside[-1]][:2]
    for kind in ("indicators", "signals", "daily", "candles"):
        expected = [item for item in getattr(spark_log.reference, kind)
                    if item[3].symbol == "ETH-USD" and first <= item[:2] <= last]
        problems = differences(kind, read_dataset(tmp_path / "out", kind), expected)
        assert not problems, "\n".join(problems)
        if kind == "indicators":
            last_tick = [e for *_, e in expected if e.timeframe == "tick"][-1]
        if kind == "daily":
            last_daily = {e.date.isoformat(): e for *_, e in expected}

    # Views hold the events' JSON; after a warm-up floats agree to 1e-9 (not bit for bit: SMA sums
    # are re-derived at a different ring phase), so compare values, not bytes.
    keys, client = ViewKeys(redis_prefix.prefix), redis_prefix.client
    assert same_json(client.hget(keys.latest("ETH-USD@synthetic"), "ind:tick"), last_tick.model_dump_json())
    stored = {field.decode(): value for field, value in client.hgetall(keys.daily("ETH-USD@synthetic")).items()}
    assert stored.keys() == last_daily.keys()
    assert all(same_json(stored[day], event.model_dump_json()) for day, event in last_daily.items())


def _days(count: float):
    from datetime import timedelta

    return timedelta(days=count)


def _ts(value: bytes) -> int | None:
    from datetime import datetime

    try:
        return to_us(datetime.fromisoformat(json.loads(value)["ts_event"]))
    except ValueError:
        return None
