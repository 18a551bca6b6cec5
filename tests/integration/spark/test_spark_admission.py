"""The Spark backfill applies MAX_INSTRUMENTS / INSTRUMENT_ALLOW exactly as the processor does.

A two-partition log (records placed on their partition by hand) where the order matters: in partition
0 the first record of AAA-USD is malformed, so BBB and CCC are the first two instruments to *decode*
and AAA is refused although its key came first; DDD comes too late; EEE is not on the allow-list; in
partition 1 FFF and AAA are admitted and GGG is refused. MAX_INSTRUMENTS=4 over STOCKSTREAM_PARTITIONS=2:
two per partition. A
record of BBB under another key (``key_mismatch``) admits nothing.

The reference is the processor's own per-record entry point, :class:`TickHandler`, over the records as
the log holds them, with Quix's in-memory store and the same policy (tests/integration/stream/
test_stream_admission.py proves it behaves as the running processor). Equal: every dead letter
(reason, detail, position), and every position that produced an indicator snapshot. Then a backfill of
a later offset range of two symbols decides the same way (the limit counts from the log's first record,
read for the decision alone) and the summary lists the refused instruments and ticks.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry
from quixstreams.state.memory import MemoryStore

from processors.core.admission import INSTRUMENT_LIMIT, INSTRUMENT_NOT_ALLOWED, InstrumentPolicy
from processors.core.strategy import PipelineConfigs
from processors.runtime.kafka_admin import ensure_topics
from processors.stream.handler import TickHandler
from processors.stream.metrics import ProcessMetrics
from processors.stream.states import SymbolStates
from schemas.events import DeadLetter, Tick, encode
from schemas.upcasters import decode
from spark_jobs.backfill.admission import FirstTick, decide
from spark_jobs.backfill.job import BackfillRequest, run_backfill
from spark_jobs.backfill.ranges import RangeRequest
from spark_jobs.progress import SparkProgress
from spark_jobs.settings import SparkJobSettings
from tests.integration.spark.compare import read_dataset
from tests.support.handler_outputs import OUTPUTS
from tests.support.kafka_tools import Record, delete_topics, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.spark]
START = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
ALLOW = frozenset({"AAA-USD", "BBB-USD", "CCC-USD", "DDD-USD", "FFF-USD@test", "GGG-USD"})
REFUSALS = (INSTRUMENT_LIMIT, INSTRUMENT_NOT_ALLOWED)
PER_SYMBOL = 300


def _tick(symbol: str, index: int) -> bytes:
    moment = START + timedelta(seconds=index * 7)
    return encode(Tick(symbol=symbol, venue="test", price=100.0 + (index * 37 % 11) - 5, volume=1.0,
                       ts_event=moment, ts_init=moment, source="test", source_id=f"{symbol}-{index}"))


def _log() -> list[tuple[int, bytes | None, bytes]]:
    """(partition, key, value) in produce order."""
    records: list[tuple[int, bytes | None, bytes]] = [(0, b"AAA-USD@test", b'{"symbol": "AAA-USD", "price": oops}')]
    records.append((0, b"CCC-USD@test", _tick("BBB-USD", 0)))  # key_mismatch: admits nothing
    for index in range(PER_SYMBOL):
        for symbol in ("BBB-USD", "CCC-USD", "AAA-USD", "EEE-USD") + (("DDD-USD",) if index >= 5 else ()):
            records.append((0, f"{symbol}@test".encode(), _tick(symbol, index)))
        for symbol in ("FFF-USD", "AAA-USD", "GGG-USD"):
            records.append((1, f"{symbol}@test".encode(), _tick(symbol, index)))
    return records


def _produce(bootstrap: str, topic: str, records: list[tuple[int, bytes | None, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    errors: list[str] = []
    for partition, key, value in records:
        producer.produce(topic, value=value, key=key, partition=partition,
                         on_delivery=lambda error, _m: errors.append(str(error)) if error else None)
        producer.poll(0)
    assert producer.flush(60) == 0 and not errors, errors[:3]


def _reference(records: list[Record], policy: InstrumentPolicy) -> tuple[set, set]:
    """(dead letters as (partition, offset, reason, detail), positions with an indicator snapshot) of the processor."""
    metrics = ProcessMetrics(CollectorRegistry())
    states = SymbolStates(PipelineConfigs(candle_timeframes=("1m",)), metrics, policy=policy)
    handler = TickHandler(states, OUTPUTS, metrics, now=lambda: 1_714_521_600.0)
    store = MemoryStore("pipeline", "ticks")
    letters, snapshots = set(), set()
    for partition in sorted({record.partition for record in records}):
        store.assign_partition(partition)
        transaction = store.start_partition_transaction(partition)
        for record in sorted((r for r in records if r.partition == partition), key=lambda r: r.offset):
            for emission in handler.handle(record.value, record.key, record.timestamp_ms, transaction, record.topic,
                                           partition, record.offset):
                if emission.topic.name == "ticks.dlq":
                    letter = decode(DeadLetter, emission.value)
                    letters.add((partition, record.offset, letter.reason, letter.detail))
                elif emission.topic.name == "indicators":
                    snapshots.add((partition, record.offset))
        states.flush()
        transaction.prepare()
        transaction.flush()
    return letters, snapshots


@pytest.fixture(scope="module")
def log(stack):
    prefix = f"tadm{uuid.uuid4().hex[:6]}."
    settings = SparkJobSettings(topic_prefix=prefix, bootstrap_servers=stack.kafka_bootstrap, partitions=2,
                                spark_master="local[2]", max_instruments=4, instrument_allow=ALLOW)
    ensure_topics(settings, [settings.topics().ticks])
    _produce(stack.kafka_bootstrap, settings.topics().ticks.name, _log())
    records = read_topic(stack.kafka_bootstrap, settings.topics().ticks.name)
    yield settings, records
    delete_topics(stack.kafka_bootstrap, prefix)


def _backfill(spark_session, settings, output, **request):
    with SparkProgress(spark_session.spark, enabled=False) as progress:
        result = run_backfill(spark_session.spark, settings, BackfillRequest(output=str(output), **request), progress)
    letters = read_dataset(output, "dead_letters")
    snapshots = read_dataset(output, "indicators")
    return (result,
            {(int(r.partition), int(r.offset), r.reason, r.detail) for r in letters.itertuples()},
            {(int(r.partition), int(r.offset)) for r in snapshots.itertuples() if r.timeframe == "tick"})


def test_the_backfill_refuses_the_instruments_the_processor_refuses(spark_session, log, tmp_path):
    settings, records = log
    letters, snapshots = _reference(records, settings.instrument_policy())
    reasons = {reason for _, _, reason, _ in letters}
    assert reasons == {INSTRUMENT_LIMIT, INSTRUMENT_NOT_ALLOWED, "malformed_json", "key_mismatch"}

    result, got_letters, got_snapshots = _backfill(spark_session, settings, tmp_path / "all")
    assert got_letters == letters
    assert got_snapshots == snapshots
    assert result.refused == {INSTRUMENT_LIMIT: ["AAA-USD@test", "DDD-USD@test", "GGG-USD@test"],
                              INSTRUMENT_NOT_ALLOWED: ["EEE-USD@test"]}
    assert result.refused_ticks == sum(1 for letter in letters if letter[2] in REFUSALS)
    processed = {symbol for symbol in read_dataset(tmp_path / "all", "indicators")["symbol"].astype(str)}
    assert processed == {"BBB-USD", "CCC-USD", "FFF-USD", "AAA-USD"}  # AAA: its partition-1 ticks only


def test_a_later_range_of_some_symbols_decides_from_the_log_start(spark_session, log, tmp_path):
    settings, records = log
    letters, snapshots = _reference(records, settings.instrument_policy())
    start = {0: 900, 1: 450}
    result, got_letters, got_snapshots = _backfill(
        spark_session, settings, tmp_path / "later", symbols=("AAA-USD", "FFF-USD"),
        range=RangeRequest(from_offset=start))
    in_range = {(r.partition, r.offset) for r in records
                if r.key in (b"AAA-USD@test", b"FFF-USD@test") and r.offset >= start[r.partition]}
    assert got_letters == {letter for letter in letters if letter[:2] in in_range}
    assert got_snapshots == {position for position in snapshots if position in in_range}
    assert any(letter[2] == INSTRUMENT_LIMIT for letter in got_letters)  # AAA in partition 0
    assert result.refused_ticks > 0


def test_decide_admits_the_first_allowed_instruments_of_each_partition_in_log_order():
    policy = InstrumentPolicy(max_instruments=4, partitions=2, allow=frozenset({"AAA-USD", "BBB-USD", "CCC-USD@x"}))
    firsts = [FirstTick(0, 7, "CCC-USD", "x"), FirstTick(0, 3, "BBB-USD", "x"), FirstTick(0, 9, "AAA-USD", "x"),
              FirstTick(0, 1, "ZZZ-USD", "x"), FirstTick(1, 5, "AAA-USD", "x"), FirstTick(1, 2, "CCC-USD", "y")]
    admission = decide(policy, firsts)
    assert admission.refused == {(0, "AAA-USD@x"): INSTRUMENT_LIMIT, (0, "ZZZ-USD@x"): INSTRUMENT_NOT_ALLOWED,
                                 (1, "CCC-USD@y"): INSTRUMENT_NOT_ALLOWED}
    assert admission.refusal(1, "AAA-USD", "x") is None  # admitted in partition 1, refused in partition 0
    reason, detail = admission.refusal(0, "AAA-USD", "x")
    assert reason == INSTRUMENT_LIMIT and "MAX_INSTRUMENTS=4" in detail
    assert admission.refusal(0, "QQQ-USD", "x")[0] == INSTRUMENT_NOT_ALLOWED  # never seen: the allow-list decides
    assert admission.instruments() == {INSTRUMENT_LIMIT: ["AAA-USD@x"],
                                       INSTRUMENT_NOT_ALLOWED: ["CCC-USD@y", "ZZZ-USD@x"]}
