"""A log written by the release before instruments (schema v1) still replays and backfills, equal to the same ticks as v2.

The v1 log is written with that release's encoder, frozen in tests/support/legacy/events_v1.py
(proven byte-equal to it by tests/unit/schemas/test_legacy_fixture.py): keyed by symbol, with two
sources (``coinbase``, ``kraken``) quoting the same symbols at overlapping times, as a v1
deployment running two feeds wrote them. The same ticks are written as v2 (venue = source, key
``SYMBOL@venue``) into a second namespace. Both logs have one partition, so every tick sits at
the same offset in both and the lineage of every derived event is the same.

Then, with the new code, on each log:

- a replay: the real ``stockstream process`` from offset 0 (what ``stockstream replay`` runs);
  every output topic must hold the same records (key and value bytes, in order) for both logs,
  and the dead letters the same (reason, origin);
- a Spark backfill of the whole log to Parquet: every dataset must be equal row for row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import chain, zip_longest

import pandas as pd
import pytest

from processors.runtime.kafka_admin import ensure_topics
from schemas.events import Candle, DailySummary, IndicatorSnapshot, Signal
from schemas.upcasters import decode, decode_dead_letter
from spark_jobs.backfill.job import BackfillRequest, run_backfill
from spark_jobs.progress import SparkProgress
from spark_jobs.settings import SparkJobSettings
from tests.integration.spark.compare import read_dataset
from tests.integration.spark.synthetic import produce_all, synthetic_log
from tests.support.kafka_tools import committed_or_none, delete_topics, end_offsets, read_topic, wait_until
from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.spark]
SYMBOLS = ("BTC-USD", "ETH-USD")
PER_VENUE = 3_000
START = datetime(2024, 3, 1, 23, 0, tzinfo=UTC)  # crosses a UTC midnight: final daily summaries too
KINDS = ("indicators", "candles", "signals", "daily", "outcomes", "dead_letters")


def _log(version: int) -> list[tuple[bytes | None, bytes]]:
    """Both venues' ticks interleaved one by one; kraken's clock runs 1.5 s behind coinbase's."""
    coinbase = synthetic_log(SYMBOLS, PER_VENUE, START, timedelta(seconds=2), seed=11, venue="coinbase",
                             version=version)
    kraken = synthetic_log(SYMBOLS, PER_VENUE, START - timedelta(seconds=1.5), timedelta(seconds=2), seed=12,
                           venue="kraken", version=version)
    return [record for record in chain.from_iterable(zip_longest(coinbase, kraken)) if record is not None]


def _settings(prefix: str, bootstrap: str) -> SparkJobSettings:
    return SparkJobSettings(topic_prefix=prefix, bootstrap_servers=bootstrap, partitions=1, spark_master="local[2]")


@pytest.fixture(scope="module")
def logs(stack, tmp_path_factory):
    """Two one-partition namespaces, ``v1`` and ``v2``, each processed by a real ``stockstream process``."""
    run = uuid.uuid4().hex[:6]
    prefixes = {version: f"tv{version}{run}." for version in (1, 2)}
    processes = []
    try:
        for version, prefix in prefixes.items():
            settings = _settings(prefix, stack.kafka_bootstrap)
            ensure_topics(settings, settings.topics().all())
            produce_all(stack.kafka_bootstrap, settings.topics().ticks.name, _log(version))
            processes.append(ServiceProcess(["process", "--metrics-port", "0"], {
                "STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
                "STOCKSTREAM_PARTITIONS": "1", "PROCESS_STATE_DIR": str(tmp_path_factory.mktemp(f"v{version}"))}))
        for prefix, process in zip(prefixes.values(), processes, strict=True):
            wait_until(lambda prefix=prefix, process=process: _drained(stack.kafka_bootstrap, prefix)
                       or not process.alive(), timeout_s=900, message=f"stockstream process to drain {prefix}ticks")
            assert process.alive(), process.output[-3000:]
        yield prefixes
    finally:
        for process in processes:
            process.terminate()
        for prefix in prefixes.values():
            delete_topics(stack.kafka_bootstrap, prefix)


def _drained(bootstrap: str, prefix: str) -> bool:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{prefix}stockstream-process",
                         "enable.auto.commit": False})
    try:
        ends = end_offsets(bootstrap, f"{prefix}ticks")
        done = committed_or_none(consumer, [TopicPartition(f"{prefix}ticks", p) for p in ends], timeout_s=30)
        return done is not None and all(tp.offset >= ends[tp.partition] for tp in done)
    finally:
        consumer.close()


def _outputs(bootstrap: str, prefix: str, name: str, model: type) -> list[tuple[bytes | None, bytes]]:
    """The records of an output topic, in order: key and value bytes, the namespace taken out of the lineage.

    The two namespaces differ only in their topic prefix, which every derived event names in its lineage;
    with it removed the values must be the same bytes.
    """
    found = []
    for record in read_topic(bootstrap, f"{prefix}{name}"):
        value = record.value.replace(f'"topic":"{prefix}ticks"'.encode(), b'"topic":"ticks"')
        assert decode(model, value).lineage.topic == "ticks"  # a current-version event, lineage rewritten
        found.append((record.key, value))
    return found


def test_the_v1_log_holds_v1_records_keyed_by_symbol(stack, logs):
    v1 = read_topic(stack.kafka_bootstrap, f"{logs[1]}ticks")
    assert len(v1) == 2 * PER_VENUE
    assert b'"schema_version":1' in v1[0].value and b'"venue"' not in v1[0].value
    assert {record.key for record in v1} >= {b"BTC-USD", b"ETH-USD"}


def test_a_replay_of_the_v1_log_equals_the_replay_of_the_same_ticks_as_v2(stack, logs):
    outputs = {"indicators": IndicatorSnapshot, "signals": Signal, "candles.1m": Candle,
               "aggregates.daily": DailySummary}
    for name, model in outputs.items():
        v1 = _outputs(stack.kafka_bootstrap, logs[1], name, model)
        v2 = _outputs(stack.kafka_bootstrap, logs[2], name, model)
        assert v1 == v2, name
        assert v1, name
    keys = {r.key for r in read_topic(stack.kafka_bootstrap, f"{logs[1]}indicators")}
    # The v1 log's two feeds of one symbol became two instruments: never one mixed series again.
    assert keys == {f"{symbol}@{venue}".encode() for symbol in SYMBOLS for venue in ("coinbase", "kraken")}

    def letters(prefix: str) -> list[tuple[str, int | None]]:
        found = [decode_dead_letter(r.value) for r in read_topic(stack.kafka_bootstrap, f"{prefix}ticks.dlq")]
        return sorted((letter.reason, letter.origin.offset if letter.origin else None) for letter in found)

    assert letters(logs[1]) == letters(logs[2])
    reasons = {reason for reason, _ in letters(logs[1])}
    assert {"malformed_json", "key_mismatch", "key_missing"} <= reasons  # the poison of both logs


def test_a_backfill_of_the_v1_log_equals_the_backfill_of_the_same_ticks_as_v2(spark_session, stack, logs, tmp_path):
    frames = {}
    for version, prefix in logs.items():
        output = tmp_path / f"v{version}"
        with SparkProgress(spark_session.spark, enabled=False) as progress:
            result = run_backfill(spark_session.spark, _settings(prefix, stack.kafka_bootstrap),
                                  BackfillRequest(output=str(output)), progress)
        assert result.rows == 2 * PER_VENUE
        frames[version] = {kind: read_dataset(output, kind) for kind in KINDS}
    for kind in KINDS:
        v1, v2 = frames[1][kind], frames[2][kind]
        if kind == "dead_letters":
            # raw and detail quote the record as written (v1 JSON, v1 key); symbol and venue name the group
            # of a record that does not decode, i.e. its raw key (BTC-USD vs BTC-USD@coinbase); such a
            # letter's ts_init is its record's Kafka timestamp (when each log was produced): all differ by
            # construction. The reason, source and log position of every dead letter must not.
            dropped = ["raw", "detail", "symbol", "venue", "ts_init"]
            v1, v2 = v1.drop(columns=dropped), v2.drop(columns=dropped)
        assert len(v1) > 0, kind
        pd.testing.assert_frame_equal(v1, v2, check_like=True, obj=kind)
    venues = set(frames[1]["indicators"]["venue"])
    assert venues == {"coinbase", "kraken"}
