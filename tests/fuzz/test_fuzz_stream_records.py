"""Raw ``ticks`` records as ``stockstream process`` sees them: ``TickHandler.handle`` with a real Quix store.

The handler is the processor's per-record entry point (bytes value, bytes key, record timestamp);
here it runs with a real Quix in-memory store transaction, the real symbol-state cache (flushed
at random "checkpoints", then reloaded) and the default strategy with 1m candles and live updates
(forming candles, stream-time closing). Records are sequences of valid ticks with extreme values (any date, prices from 5e-324 to 1.8e308, huge
volumes), mutated tick JSON, garbage bytes, missing/wrong/garbage keys. Properties: handle never
raises; an unusable record becomes exactly one dead letter with a code of the closed set; a step
failure (``processing_failed`` — a bug) never happens; every output decodes as its topic's event;
states written at a checkpoint load again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import event as hypothesis_event
from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from quixstreams.state.memory import MemoryStore

from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs
from processors.stream.handler import TickHandler
from processors.stream.metrics import ProcessMetrics
from processors.stream.reasons import ALL_REASONS, PROCESSING_FAILED
from processors.stream.records import decode_tick as decode_record
from processors.stream.states import SymbolStates
from schemas.events import Candle, DailySummary, DeadLetter, IndicatorSnapshot, Lineage, Signal, Tick, encode
from schemas.upcasters import decode
from tests.fuzz.strategies import fuzz, json_values, mostly_ascii_bytes, mutated
from tests.support.handler_outputs import OUTPUTS

SYMBOLS = ["BTC-USD", "ETH-USD"]


MODELS = {"indicators": IndicatorSnapshot, "signals": Signal, "candles.1m": Candle,
          "aggregates.daily": DailySummary, "ticks.dlq": DeadLetter}

def weighted(usual: st.SearchStrategy[object], *rare: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """``usual`` about 70 % of the time, else one of ``rare`` (plain ``one_of`` would weigh them alike)."""
    return st.integers(0, 9).flatmap(lambda pick: usual if pick < 7 else st.one_of(*rare))


MOMENTS = weighted(
    # candles close and a UTC day ends within these twenty minutes
    st.datetimes(min_value=datetime(2024, 5, 1, 23, 50), max_value=datetime(2024, 5, 2, 0, 10),  # noqa: DTZ001
                 timezones=st.just(UTC)),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(9999, 12, 30), timezones=st.just(UTC)),  # noqa: DTZ001 - naive bounds
    st.datetimes(max_value=datetime(1, 1, 2), timezones=st.just(UTC)),  # noqa: DTZ001
)
PRICES = weighted(
    st.one_of(st.floats(min_value=60_000, max_value=70_000), st.floats(min_value=1e-12, max_value=1e12)),
    st.floats(min_value=0, exclude_min=True, allow_infinity=False),
    st.sampled_from([5e-324, 1e-12, 1e12, 1.7976931348623157e308]),
)
VOLUMES = weighted(st.one_of(st.none(), st.floats(min_value=0, max_value=1e15)),
                   st.floats(min_value=0, allow_infinity=False), st.sampled_from([0.0, 1e-12, 1e15, 1e300]))


def _tick(symbol: str, moment: datetime, price: float, volume: float | None, index: int) -> Tick:
    return Tick(symbol=symbol, venue="fuzz", price=price, volume=volume, ts_event=moment, ts_init=moment,
                source="fuzz", source_id=str(index))


VALID = st.builds(_tick, st.sampled_from(SYMBOLS), MOMENTS, PRICES, VOLUMES, st.integers(0, 10**6))
TEMPLATE = json.loads(encode(_tick("BTC-USD", datetime(2024, 5, 1, tzinfo=UTC), 64000.5, 0.25, 1)))


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    """One (value, key) pair as it may sit in the topic."""
    kind = draw(st.integers(0, 9))
    if kind <= 5:
        tick = draw(VALID)
        value: bytes | None = encode(tick)
        right = st.just(f"{tick.symbol}@{tick.venue}".encode())
        key: bytes | None = draw(st.one_of(right, right, right, st.none(),
                                           st.sampled_from([b"", b"btc-usd", b"ETH-USD@fuzz", b"BTC-USD", b"\xff"])))
        return value, key
    if kind == 6:
        value = json.dumps(draw(mutated(TEMPLATE, extra_keys=["schema_version", "symbol"])),
                           allow_nan=True, default=str).encode()
    elif kind == 7:
        value = json.dumps(draw(json_values()), allow_nan=True, default=str).encode()
    elif kind == 8:
        value = draw(st.one_of(st.none(), st.just(b""), mostly_ascii_bytes(200)))
    else:
        value = draw(st.sampled_from([b"[" * 100_000, b'{"symbol":"\\ud800"}', b"\xef\xbb\xbf{}", b"null"]))
    keys = [key for s in SYMBOLS for key in (s.encode(), f"{s}@fuzz".encode())]  # v1 and v2 keys
    return value, draw(st.one_of(st.none(), st.sampled_from(keys), st.binary(max_size=8)))


def _run(batch: list[tuple[bytes | None, bytes | None]], checkpoints: list[bool]) -> None:
    metrics = ProcessMetrics(CollectorRegistry())
    states = SymbolStates(PipelineConfigs(DEFAULT_STRATEGY, candle_timeframes=("1m",), grace_ms=5_000,
                                          live_update_ms=1_000), metrics)
    handler = TickHandler(states, OUTPUTS, metrics, now=lambda: 1_714_521_600.0)
    store = MemoryStore("pipeline", "ticks")
    store.assign_partition(0)
    transaction = store.start_partition_transaction(0)
    for offset, ((value, key), checkpoint) in enumerate(zip(batch, checkpoints, strict=False)):
        emissions = handler.handle(value, key, 1_714_521_600_000 + offset, transaction, "ticks", 0, offset)
        letters = []
        for emission in emissions:
            event = decode(MODELS[emission.topic.name], emission.value)
            if isinstance(event, DeadLetter):
                letters.append(event)
                hypothesis_event(f"dead letter {event.reason}")
                assert event.reason in ALL_REASONS and event.reason != PROCESSING_FAILED, event
                assert event.origin is not None and event.origin.offset == offset
            else:
                hypothesis_event(f"emitted {emission.topic.name}")
                # Outputs are keyed by the instrument, also for a v1 tick keyed by its symbol.
                assert emission.key == f"{event.symbol}@{event.venue}".encode()  # type: ignore[attr-defined]
                assert key in (emission.key, event.symbol.encode())  # type: ignore[attr-defined]
        decoded = decode_record(value, key, 0, Lineage(topic="ticks", partition=0, offset=offset))
        if isinstance(decoded, DeadLetter):
            assert len(emissions) == 1 and len(letters) == 1, emissions
        if checkpoint:
            states.flush()
            transaction.prepare()
            transaction.flush()
            transaction = store.start_partition_transaction(0)
    states.flush()
    assert not metrics.state_resets._metrics, "a state written at a checkpoint did not load again"  # noqa: SLF001


@given(batch=st.lists(records(), min_size=1, max_size=40), checkpoints=st.lists(st.booleans(), max_size=40))
@example(batch=[(encode(_tick("BTC-USD", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), 1.0, None, 1)),
                 b"BTC-USD@fuzz")], checkpoints=[])
@example(batch=[(encode(_tick("BTC-USD", datetime(2024, 5, 1, tzinfo=UTC), 1.7976931348623157e308, 1e300, i)),
                 b"BTC-USD@fuzz") for i in range(3)], checkpoints=[True])
@example(batch=[(b'{"symbol":"BTC-USD","price":1,"ts_event":"0001-01-01T00:00:00+05:00",'
                 b'"ts_init":"2024-01-01T00:00:00Z","source":"x","source_id":"1"}', b"BTC-USD")], checkpoints=[])
@fuzz(400)
def test_tick_records(batch: list[tuple[bytes | None, bytes | None]], checkpoints: list[bool]) -> None:
    _run(batch, checkpoints)


@given(ticks=st.lists(st.builds(_tick, st.just("BTC-USD"), MOMENTS, PRICES, VOLUMES, st.integers(0, 99)),
                      min_size=5, max_size=80).map(lambda items: sorted(items, key=lambda t: t.ts_event)),
       checkpoints=st.lists(st.booleans(), max_size=80))
@fuzz(200)
def test_ordered_extreme_ticks_of_one_symbol(ticks: list[Tick], checkpoints: list[bool]) -> None:
    """In-order ticks open and close candle windows and days: extreme values must survive the arithmetic."""
    _run([(encode(tick), b"BTC-USD@fuzz") for tick in ticks], checkpoints)
