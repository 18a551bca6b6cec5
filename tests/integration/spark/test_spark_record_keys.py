"""Records whose key is not their tick's symbol: the backfill dead-letters them exactly as the live processor.

Pure (no JVM): :func:`run_group` on pandas frames shaped as ``applyInPandas`` hands them
(``record_key`` = the record's own key bytes, the group key = that key as Spark's string shows
it). The Spark tests run the same records through the real job (see :mod:`synthetic`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs
from processors.stream import reasons
from schemas.events import Tick, encode
from spark_jobs.backfill.job import _Configs
from spark_jobs.backfill.plan import GroupPlan, Warmup, position
from spark_jobs.backfill.rows import EVENT_KINDS
from spark_jobs.backfill.runner import GroupContext, run_group
from tests.integration.spark.compare import differences
from tests.integration.spark.synthetic import reference_events
from tests.support.kafka_tools import Record

TOPIC = "ticks"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ODD_KEY = b"\xe2\x82BTC-USD@test\xff"  # not UTF-8


def _tick(index: int, symbol: str = "BTC-USD") -> bytes:
    moment = START + timedelta(seconds=20 * index)
    return encode(Tick(symbol=symbol, venue="test", price=100 + index % 7, volume=1.0, ts_event=moment, ts_init=moment,
                       source="test", source_id=str(index)))


def _records() -> list[Record]:
    """40 BTC-USD ticks; #12 is an ETH-USD tick keyed BTC-USD, #25 a BTC-USD tick keyed with bytes not UTF-8."""
    records = []
    for index in range(40):
        key, value = b"BTC-USD@test", _tick(index)
        if index == 12:
            value = _tick(index, "ETH-USD")
        elif index == 25:
            key = ODD_KEY
        produced = START + timedelta(seconds=20 * index + 1)  # a second after its event time, as a producer stamps it
        records.append(Record(TOPIC, 0, index, key, value, int(produced.timestamp() * 1000)))
    return records


def _run(records: list[Record]) -> pd.DataFrame:
    """Every group of the records (one per key, whole log, one chunk), as the job runs them."""
    configs = _Configs(DEFAULT_STRATEGY, ("1m",), 5_000)
    context = GroupContext(TOPIC, Warmup(periods=10, duration_us=3600 * 10**6), DEFAULT_STRATEGY.indicator_names(),
                           True, None, frozenset({0}))
    frame = pd.DataFrame({
        "record_key": [r.key for r in records], "partition": [r.partition for r in records],
        "offset": [r.offset for r in records], "pos": [position(r.partition, r.offset) for r in records],
        "timestamp_ms": [r.timestamp_ms for r in records], "value": [r.value for r in records],
    })
    groups = frame.groupby(frame["record_key"].map(lambda key: key.decode("utf-8", "replace")))
    outputs = []
    for number, (key, rows) in enumerate(groups):
        plan = GroupPlan(group=number, key=key, chunk=0, emit_from=0, emit_to=int(rows["pos"].max()),
                         start_us=None, warm_from_us=None, rows=len(rows))
        outputs.append(run_group(rows, plan, context, configs))
    result = pd.concat(outputs, ignore_index=True)
    return result[result["kind"] != "group"]


def test_a_record_keyed_with_another_symbol_is_the_live_processors_dead_letter():
    records = _records()
    events = _run(records)
    reference = reference_events(records, PipelineConfigs(DEFAULT_STRATEGY, candle_timeframes=("1m",),
                                                          grace_ms=5_000))

    dead = events[events["kind"] == "dead_letters"].sort_values("offset")
    assert dead["offset"].tolist() == [12, 25]
    assert dead["reason"].tolist() == [reasons.KEY_MISMATCH] * 2
    # The detail shows the record's own key bytes, as the live processor's (not the group's string).
    assert dead["detail"].tolist() == [
        "record key 'BTC-USD@test' is not the tick's instrument 'ETH-USD@test'",
        "record key '\\\\xe2\\\\x82BTC-USD@test\\\\xff' is not the tick's instrument 'BTC-USD@test'",
    ]
    for kind in EVENT_KINDS:
        expected = getattr(reference, kind)
        got = events[events["kind"] == kind].sort_values(["offset", "seq"])
        assert not differences(kind, got, expected), kind
        # with_events: the exact JSON the live processor would produce, event for event
        assert got["event"].tolist() == [encode(event).decode() for *_, event in expected], kind
    # neither mismatched tick reached BTC-USD's state: 38 tick snapshots, none caused by them
    ticked = [offset for _, offset, _, snapshot in reference.indicators if snapshot.timeframe == "tick"]
    assert len(ticked) == 38 and not {12, 25} & set(ticked)
