"""The processor's per-record handler keeps the partition's stream time like the core's rule says.

``TickHandler.handle`` runs with a real Quix in-memory store transaction and the real state cache,
checkpointed at random and restarted from the store (a new cache: every state and the partition
clock loaded back); its emissions must be byte for byte the core's partition runner's
(:func:`processors.core.stream_time.process_in_partition` over in-memory processors): the quiet
instrument's windows closed by the others' ticks, forming candles, throttled summaries.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from quixstreams.state.memory import MemoryStore

from processors.core.pipeline import SymbolProcessor
from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs
from processors.core.stream_time import PartitionClock, process_in_partition
from processors.stream.encoding import encode_derived
from processors.stream.handler import TickHandler
from processors.stream.metrics import ProcessMetrics
from processors.stream.states import SymbolStates
from schemas.events import Lineage, Tick, encode
from schemas.instruments import parse_instrument
from schemas.upcasters import decode_candle
from tests.support.handler_outputs import OUTPUTS

T0 = datetime(2024, 5, 1, 23, 55, tzinfo=UTC)
CONFIGS = PipelineConfigs(DEFAULT_STRATEGY, candle_timeframes=("1m",), grace_ms=5_000, live_update_ms=1_000)


def feed(seed: int, count: int) -> list[Tick]:
    """Two busy instruments and a quiet one, in event order with a few late and out-of-order ticks."""
    rng = random.Random(seed)
    seconds, ticks = 0.0, []
    for n in range(count):
        seconds += rng.choice([0.3, 1.0, 2.5, 9.0])
        symbol = rng.choice(["BTC-USD"] * 6 + ["ETH-USD"] * 3 + ["SOL-USD"])
        moment = seconds - (rng.uniform(0, 40) if rng.random() < 0.05 else 0)
        ticks.append(Tick(symbol=symbol, venue="test", price=round(100 + rng.gauss(0, 2), 2), volume=1.0,
                          ts_event=T0 + timedelta(seconds=moment), ts_init=T0 + timedelta(seconds=moment),
                          source="test", source_id=str(n)))
    return ticks


def core_run(ticks: list[Tick]) -> list[tuple[bytes, bytes]]:
    processors: dict[str, SymbolProcessor] = {}
    clocks: dict[str, PartitionClock] = {}  # by venue

    def processor_of(key: str) -> SymbolProcessor:
        if key not in processors:
            processors[key] = SymbolProcessor(CONFIGS.for_symbol(key.split("@")[0]), parse_instrument(key))
        return processors[key]

    out = []
    for offset, tick in enumerate(ticks):
        key = f"{tick.symbol}@{tick.venue}"
        lineage = Lineage(topic="ticks", partition=0, offset=offset)
        clock = clocks.setdefault(tick.venue, PartitionClock())
        for name, output in process_in_partition(clock, key, processor_of(key), tick, lineage, processor_of):
            derived = [*output.snapshots, *output.candles, *output.signals, *output.summaries, *output.outcomes]
            out += [(name.encode(), encode_derived(event)) for event in derived]
            out += [(b"test", encode(letter)) for letter in output.rejections]
    return out


def handler_run(ticks: list[Tick], checkpoints: list[bool], restarts: list[bool],
                positions: list[int] | None = None) -> list[tuple[bytes, bytes]]:
    """The handler's emissions (``positions``: gets the input offset that produced each one)."""
    store = MemoryStore("pipeline", "ticks")
    store.assign_partition(0)

    def new_handler() -> tuple[SymbolStates, TickHandler]:
        metrics = ProcessMetrics(CollectorRegistry())
        states = SymbolStates(CONFIGS, metrics)
        return states, TickHandler(states, OUTPUTS, metrics, now=lambda: 0.0)

    states, handler = new_handler()
    transaction = store.start_partition_transaction(0)
    out = []
    for offset, tick in enumerate(ticks):
        emissions = handler.handle(encode(tick), f"{tick.symbol}@{tick.venue}".encode(), 0, transaction, "ticks", 0,
                                   offset)
        out += [(e.key, e.value) for e in emissions]
        if positions is not None:
            positions += [offset] * len(emissions)
        if offset < len(checkpoints) and checkpoints[offset]:
            states.flush()
            transaction.prepare()
            transaction.flush()
            transaction = store.start_partition_transaction(0)
            if offset < len(restarts) and restarts[offset]:
                states, handler = new_handler()
    return out


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), checkpoints=st.lists(st.booleans(), max_size=400),
       restarts=st.lists(st.booleans(), max_size=400))
def test_the_handler_emits_what_the_core_partition_runner_does_through_checkpoints_and_restarts(
        seed: int, checkpoints: list[bool], restarts: list[bool]) -> None:
    ticks = feed(seed, 400)
    expected = core_run(ticks)
    assert handler_run(ticks, checkpoints, restarts) == expected
    values = b"\n".join(value for _, value in expected)
    assert b'"final":false' in values and b'"final":true' in values


def test_a_quiet_instruments_candle_is_closed_by_the_other_instruments_records():
    ticks = feed(7, 300)
    end = max(t.ts_event for t in ticks)
    ticks += [Tick(symbol="BTC-USD", venue="test", price=100.0, ts_event=end + timedelta(seconds=s),
                   ts_init=end + timedelta(seconds=s), source="test", source_id=f"after-{s}") for s in range(1, 120)]
    quiet_last = max(i for i, t in enumerate(ticks) if t.symbol == "SOL-USD")
    positions: list[int] = []
    rows = handler_run(ticks, [], [], positions)
    closers = set()  # the input records whose handling emitted a final SOL candle
    for (key, value), offset in zip(rows, positions, strict=True):
        if key == b"SOL-USD@test" and b'"trade_count"' in value and b'"final":true' in value:
            closers.add(offset)
            # whoever closed it, it carries its own last tick (docs/core.md, "What a close emits")
            assert ticks[decode_candle(value).lineage.offset].symbol == "SOL-USD"
    assert closers and all(ticks[offset].symbol != "SOL-USD" for offset in closers if offset > quiet_last)
    assert any(offset > quiet_last for offset in closers)  # its last candle closed after its last tick
    assert not any(b'"processing_failed"' in value for _, value in rows)
