"""The write-behind symbol states (processors/stream/states.py) on a real Quix state store.

In-process, against Quix's own in-memory store (same transaction API as RocksDB): a processor is
reused only while it is exactly what the store holds, a checkpoint flush writes each dirty symbol
once, and a tick that makes the step fail leaves no trace (rebuild = last stored state + the
checkpoint's earlier ticks). The end-to-end behaviours (restarts, rebalances) are covered by
test_stream_recovery.py and test_stream_scale_out.py.
"""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry
from quixstreams.state.memory import MemoryStore
from stream_support import make_ticks

from processors.core.pipeline import SymbolProcessor
from processors.core.strategy import PipelineConfigs
from processors.stream.metrics import ProcessMetrics
from processors.stream.states import SEGMENT_KEY, STATE_KEY, SymbolStates
from schemas.events import Lineage, Tick
from schemas.instruments import Instrument

KEY = b"AAA-USD@test"


def ticks(count: int) -> list[tuple[Tick, Lineage]]:
    return [(Tick.model_validate_json(value), Lineage(topic="ticks", partition=0, offset=offset))
            for offset, (_, value) in enumerate(make_ticks(["AAA-USD"], count, seed=9))]


def apply(states: SymbolStates, transaction, batch) -> SymbolProcessor:
    for tick, lineage in batch:
        entry = states.acquire(tick, KEY, transaction)
        entry.processor.process(tick, lineage)
        # what the handler records per step: raw tick, position, stream time given (-1: none), not an advance
        entry.pending += (tick.model_dump_json().encode(), lineage.topic, lineage.partition, lineage.offset, -1, 0)
    return entry.processor


def setup():
    configs = PipelineConfigs(horizons_ms=(1_000, 60_000))  # signals keep outcomes pending in segments
    store = MemoryStore("pipeline", "ticks")
    store.assign_partition(0)
    return configs, store, SymbolStates(configs, ProcessMetrics(CollectorRegistry()))


def reference(configs: PipelineConfigs, batch) -> dict:
    processor = SymbolProcessor(configs.for_symbol("AAA-USD"), Instrument("AAA-USD", "test"))
    for tick, lineage in batch:
        processor.process(tick, lineage)
    return processor.state()


def stored(transaction) -> dict | None:
    """The state the store holds: the document with its pending-outcome segments put back inline."""
    state = transaction.as_state(prefix=KEY)
    raw = state.get_bytes(STATE_KEY)
    if raw is None:
        return None
    document = orjson.loads(raw)
    outcomes = document["outcomes"]
    last = (outcomes["next"] - 1) // 32 if outcomes["next"] else -1
    outcomes["segments"] = {str(n): orjson.loads(state.get_bytes(SEGMENT_KEY.format(n)))
                            for n in range(outcomes["first_segment"], last + 1)}
    return document


def test_a_checkpoint_writes_each_dirty_symbol_once_and_later_checkpoints_reuse_it():
    configs, store, states = setup()
    data = ticks(300)
    first = store.start_partition_transaction(0)
    processor = apply(states, first, data[:100])
    assert first.as_state(prefix=KEY).get_bytes(STATE_KEY) is None  # nothing written per tick
    states.flush()
    document = first.as_state(prefix=KEY).get_bytes(STATE_KEY)
    assert orjson.loads(document)["outcomes"].get("segments") is None  # segments are kept apart
    assert stored(first) == reference(configs, data[:100])
    assert reference(configs, data[:100])["outcomes"]["segments"]  # outcomes were pending
    first.prepare()
    first.flush()

    second = store.start_partition_transaction(0)
    assert apply(states, second, data[100:300]) is processor  # the stored bytes are its own: reused
    assert states.loads == 1
    states.flush()
    assert stored(second) == reference(configs, data)


def test_a_processor_that_is_not_what_the_store_holds_is_reloaded():
    configs, store, states = setup()
    data = ticks(200)
    first = store.start_partition_transaction(0)
    apply(states, first, data[:100])
    states.flush()
    first.prepare()
    first.flush()
    # Another instance moves the symbol on (after a rebalance) and commits its state.
    other = SymbolStates(configs, ProcessMetrics(CollectorRegistry()))
    elsewhere = store.start_partition_transaction(0)
    apply(other, elsewhere, data[100:150])
    other.flush()
    elsewhere.prepare()
    elsewhere.flush()

    back = store.start_partition_transaction(0)
    processor = apply(states, back, data[150:200])
    assert states.loads == 2  # reloaded, not the stale one in memory
    assert processor.state() == reference(configs, data)


def test_an_aborted_checkpoint_is_not_trusted():
    configs, store, states = setup()
    data = ticks(200)
    first = store.start_partition_transaction(0)
    apply(states, first, data[:100])
    states.flush()  # written into a transaction that is then dropped (checkpoint aborted)
    retry = store.start_partition_transaction(0)
    processor = apply(states, retry, data[:100])  # the same records again, from the committed offset
    assert processor.state() == reference(configs, data[:100])


def test_rebuild_undoes_a_failed_tick():
    configs, store, states = setup()
    data = ticks(120)
    first = store.start_partition_transaction(0)
    apply(states, first, data[:50])
    states.flush()
    first.prepare()
    first.flush()
    current = store.start_partition_transaction(0)
    apply(states, current, data[50:100])  # not flushed yet: only in memory and in ``pending``
    entry = states.acquire(data[100][0], KEY, current)
    entry.processor.process(*data[100])  # as if the step had half-applied this tick, then raised
    states.rebuild(Instrument("AAA-USD", "test"), KEY)
    assert entry.processor.state() == reference(configs, data[:100])
    states.flush()
    assert stored(current) == reference(configs, data[:100])
