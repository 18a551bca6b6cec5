"""The instrument limit of the processor (``MAX_INSTRUMENTS``, ``INSTRUMENT_ALLOW``) on a real Quix store.

``TickHandler.handle`` — the processor's per-record entry point — runs with Quix's in-memory store
(the same transaction API as RocksDB) and the real symbol-state cache, checkpoints committed by
hand. Proven: a partition admits the first instruments of its log order and dead-letters the rest
(``instrument_limit``); the decision survives a restart (a fresh cache over the committed store)
and a checkpoint that aborted; a replay of the same log into a fresh store decides the same way;
the allow-list refuses any other instrument, even one with state; refusals are counted. Last, the
real ``stockstream process`` on the broker keeps its admitted instruments across a ``kill -9`` and a
deleted state folder (the count is restored from the changelog).
"""

from __future__ import annotations

import shutil

from prometheus_client import CollectorRegistry
from quixstreams.state.memory import MemoryStore
from stream_support import Processor, make_ticks, produce_many, wait_drained

from processors.core.admission import INSTRUMENT_LIMIT, INSTRUMENT_NOT_ALLOWED, InstrumentPolicy
from processors.core.strategy import PipelineConfigs
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from processors.stream.handler import TickHandler
from processors.stream.metrics import ProcessMetrics
from processors.stream.states import SymbolStates
from schemas.events import DeadLetter
from schemas.upcasters import decode
from tests.support.handler_outputs import OUTPUTS
from tests.support.kafka_tools import read_topic

SYMBOLS = ["AAA-USD", "BBB-USD", "CCC-USD", "DDD-USD", "EEE-USD"]
RECORD_MS = 4_102_444_800_000  # the records' Kafka timestamp: after every event time of the feed
RECORDS = make_ticks(SYMBOLS, 50)  # round-robin: the log's first-appearance order is SYMBOLS


def processor(policy: InstrumentPolicy) -> tuple[TickHandler, ProcessMetrics]:
    metrics = ProcessMetrics(CollectorRegistry())
    states = SymbolStates(PipelineConfigs(candle_timeframes=("1m",)), metrics, policy=policy)
    return TickHandler(states, OUTPUTS, metrics, now=lambda: 1_714_521_600.0), metrics


def run(handler: TickHandler, store: MemoryStore, records, first_offset: int = 0, commit: bool = True):
    """Handle ``records`` as one checkpoint; returns the instrument of every tick that went to the DLQ, by reason."""
    transaction = store.start_partition_transaction(0)
    refused: dict[str, set[str]] = {}
    for offset, (key, value) in enumerate(records, start=first_offset):
        for emission in handler.handle(value, key, RECORD_MS, transaction, "ticks", 0, offset):
            if emission.topic.name == "ticks.dlq":
                letter = decode(DeadLetter, emission.value)
                refused.setdefault(letter.reason, set()).add(key.decode())
    handler.states.flush()
    if commit:
        transaction.prepare()
        transaction.flush()
    return refused


def new_store() -> MemoryStore:
    store = MemoryStore("pipeline", "ticks")
    store.assign_partition(0)
    return store


def test_a_partition_admits_the_first_instruments_of_its_log_and_refuses_the_rest():
    handler, metrics = processor(InstrumentPolicy(max_instruments=3))
    refused = run(handler, new_store(), RECORDS)
    assert refused == {INSTRUMENT_LIMIT: {"DDD-USD@test", "EEE-USD@test"}}
    assert metrics.instruments_refused.labels(INSTRUMENT_LIMIT)._value.get() == 20  # 10 ticks each
    assert metrics.hot.dead_letters == {INSTRUMENT_LIMIT: 20}


def test_the_decision_survives_a_restart_and_a_replay_of_the_log():
    policy = InstrumentPolicy(max_instruments=3)
    store = new_store()
    first, _ = processor(policy)
    assert run(first, store, RECORDS[:20]) == {INSTRUMENT_LIMIT: {"DDD-USD@test", "EEE-USD@test"}}
    # A restart: a fresh cache over the committed store. The later records come in another order
    # (EEE first), but the three places are taken: EEE and DDD stay refused, the admitted stay admitted.
    restarted, _ = processor(policy)
    later = sorted(RECORDS[20:], key=lambda record: record[0] != b"EEE-USD@test")
    assert run(restarted, store, later, first_offset=20) == {INSTRUMENT_LIMIT: {"DDD-USD@test", "EEE-USD@test"}}
    # A replay of the same log into a fresh store (a run) decides exactly as the live run did.
    replayed, _ = processor(policy)
    assert run(replayed, new_store(), RECORDS[:20] + later) == {INSTRUMENT_LIMIT: {"DDD-USD@test", "EEE-USD@test"}}


def test_an_aborted_checkpoint_admits_nothing():
    policy = InstrumentPolicy(max_instruments=2)
    store = new_store()
    handler, _ = processor(policy)
    eee_first = [record for record in RECORDS if record[0] == b"EEE-USD@test"][:3]
    run(handler, store, eee_first, commit=False)  # admitted EEE, but the checkpoint never committed
    # The same instance goes on from the committed offset (nothing): the log's order decides again.
    assert run(handler, store, RECORDS) == {INSTRUMENT_LIMIT: {"CCC-USD@test", "DDD-USD@test", "EEE-USD@test"}}


def test_the_allow_list_refuses_every_other_instrument_even_one_with_state():
    store = new_store()
    everything, _ = processor(InstrumentPolicy())
    assert run(everything, store, RECORDS[:10]) == {}
    handler, metrics = processor(InstrumentPolicy(allow=frozenset({"AAA-USD", "BBB-USD@test"})))
    refused = run(handler, store, RECORDS[10:])
    assert refused == {INSTRUMENT_NOT_ALLOWED: {"CCC-USD@test", "DDD-USD@test", "EEE-USD@test"}}
    assert metrics.instruments_refused.labels(INSTRUMENT_NOT_ALLOWED)._value.get() == 24


def test_the_real_processor_keeps_its_admitted_instruments_across_a_kill_and_a_lost_state_folder(stack, namespaces,
                                                                                                 tmp_path):
    """``stockstream process`` on the broker, one partition, ``MAX_INSTRUMENTS=3``: killed with ``kill -9``, its
    state folder deleted (the count comes back from the changelog), fed the later ticks with a refused
    instrument first: the same three instruments are processed, the other two dead-lettered, counted."""
    namespace = namespaces("tadm" + tmp_path.name[-6:].replace("_", "") + ".")
    bootstrap = stack.kafka_bootstrap
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace, partitions=1)
    topics = settings.topics()
    ensure_topics(settings, topics.all())
    records = make_ticks(SYMBOLS, 100)
    produce_many(bootstrap, topics.ticks.name, records[:50])
    env = {"STOCKSTREAM_PARTITIONS": "1", "MAX_INSTRUMENTS": "3"}
    processor = Processor(bootstrap, namespace, f"{namespace}g", tmp_path / "state", **env)
    try:
        wait_drained(bootstrap, f"{namespace}g", topics.ticks.name, processors=[processor])
        assert processor.metric("stockstream_process_instruments_refused_total", reason=INSTRUMENT_LIMIT) == 20
        processor.kill9()
        shutil.rmtree(tmp_path / "state")
        later = sorted(records[50:], key=lambda record: record[0] != b"EEE-USD@test")
        produce_many(bootstrap, topics.ticks.name, later)
        processor.restart()
        wait_drained(bootstrap, f"{namespace}g", topics.ticks.name, processors=[processor])
        letters = [decode(DeadLetter, r.value) for r in read_topic(bootstrap, topics.ticks_dlq.name)]
        assert {letter.reason for letter in letters} == {INSTRUMENT_LIMIT}
        refused = [r.key for r in read_topic(bootstrap, topics.ticks.name)
                   if r.offset in {letter.origin.offset for letter in letters if letter.origin is not None}]
        assert sorted(set(refused)) == [b"DDD-USD@test", b"EEE-USD@test"] and len(refused) == 40
        processed = {r.key for r in read_topic(bootstrap, topics.indicators.name)}
        assert processed == {b"AAA-USD@test", b"BBB-USD@test", b"CCC-USD@test"}
    finally:
        processor.terminate()
