"""The materializer's instrument bound (processors/materialize/admission.py) through the pure planner."""

from __future__ import annotations

from datetime import UTC, datetime

from processors.core.admission import INSTRUMENT_LIMIT, INSTRUMENT_NOT_ALLOWED, InstrumentPolicy
from processors.materialize.admission import ViewAdmission
from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputRecord, InputTopics
from schemas.events import Tick, encode
from schemas.topics import TopicRegistry

NOW = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
REGISTRY = TopicRegistry(prefix="ns.", partitions=2)


def tick_record(symbol: str, venue: str, offset: int) -> InputRecord:
    tick = Tick(symbol=symbol, venue=venue, price=1.0, source="test", source_id=str(offset),
                ts_event=NOW, ts_init=NOW)
    return InputRecord("ns.ticks", 0, offset, f"{symbol}@{venue}".encode(), encode(tick))


def planner(admission: ViewAdmission) -> BatchPlanner:
    return BatchPlanner(ViewKeys("p:"), InputTopics.from_registry(REGISTRY), Caps(), lambda: NOW, admission)


def test_views_take_new_instruments_up_to_the_total_and_keep_those_they_hold():
    # 3 over 2 partitions: the processor may admit 2 per partition, so the views hold up to 4.
    admission = ViewAdmission(InstrumentPolicy(max_instruments=3, partitions=2), known=[b"OLD-USD@test"])
    records = [tick_record(symbol, "test", offset)
               for offset, symbol in enumerate(["AAA-USD", "BBB-USD", "CCC-USD", "DDD-USD", "AAA-USD", "OLD-USD"])]
    batch = planner(admission).plan(records)
    assert batch.instruments == {"OLD-USD@test", "AAA-USD@test", "BBB-USD@test", "CCC-USD@test"}
    assert [(letter.reason, letter.origin.offset) for letter in batch.dead_letters] == [(INSTRUMENT_LIMIT, 3)]
    assert "MAX_INSTRUMENTS=3" in batch.dead_letters[0].detail
    assert batch.events_by_topic["ticks"] == 5


def test_the_allow_list_refuses_other_instruments_even_those_the_views_hold():
    admission = ViewAdmission(InstrumentPolicy(allow=frozenset({"AAA-USD"})), known=["BBB-USD@test"])
    batch = planner(admission).plan([tick_record("AAA-USD", "kraken", 0), tick_record("BBB-USD", "test", 1)])
    assert batch.instruments == {"AAA-USD@kraken"}
    assert [letter.reason for letter in batch.dead_letters] == [INSTRUMENT_NOT_ALLOWED]
