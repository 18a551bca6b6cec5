"""The instrument limit of the processor (``MAX_INSTRUMENTS``, ``INSTRUMENT_ALLOW``) on a real Quix store.

``TickHandler.handle`` — the processor's per-record entry point — runs with Quix's in-memory store
(the same transaction API as RocksDB) and the real symbol-state cache, checkpoints committed by
hand. Proven: a partition admits the first instruments of its log order and dead-letters the rest
(``instrument_limit``); the decision survives a restart (a fresh cache over the committed store)
and a checkpoint that aborted; a replay of the same log into a fresh store decides the same way;
the allow-list refuses any other instrument, even one with state; refusals are counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from quixstreams.state.memory import MemoryStore
from stream_support import make_ticks

from processors.core.admission import INSTRUMENT_LIMIT, INSTRUMENT_NOT_ALLOWED, InstrumentPolicy
from processors.core.strategy import PipelineConfigs
from processors.stream.handler import OutputTopics, TickHandler
from processors.stream.metrics import ProcessMetrics
from processors.stream.states import SymbolStates
from schemas.events import DeadLetter
from schemas.upcasters import decode


@dataclass(frozen=True)
class Named:
    name: str


OUTPUTS = OutputTopics(indicators=Named("indicators"), signals=Named("signals"), outcomes=Named("signals.outcomes"),
                       candles={"1m": Named("candles.1m")}, aggregates_daily=Named("aggregates.daily"),
                       dead_letters=Named("ticks.dlq"))
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
