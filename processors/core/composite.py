"""The composite index of a symbol: the median of its venues' latest prices, over the venues still fresh.

``BTC-USD@index`` is a derived price series for a symbol traded on several venues (opt-in per
symbol, ``COMPOSITE_SYMBOLS``). Its definition, for one symbol, over the ticks of every venue
but ``index`` in the order the composite stage reads them (:mod:`processors.composite`):

- each venue's **latest price** is the price of its most recent tick read (``latest[v]``,
  with that tick's event time ``t[v]``);
- the **clock** is the largest event time read so far (event time, never the wall clock, so a
  replay gives the same series);
- a venue is **fresh** while ``clock − t[v] < stale`` (``COMPOSITE_STALE_S``, default 10 s): a
  venue whose feed stops drops out once the others have moved ``stale`` past its last tick,
  and counts again from its next tick;
- the **value** is the median of the fresh venues' latest prices (the mean of the two middle
  ones for an even count); with no fresh venue there is no value;
- a composite tick is **emitted on every input tick that changes the value** (a value equal to
  the last one emitted is not repeated), with ``ts_event`` = the clock (so the index's own series
  is in event order), ``ts_init`` = the input tick's, ``source`` = ``composite`` and
  ``source_id`` = the input's venue and source id.

Pure: :func:`composite_step` takes and returns a JSON-compatible state (a Quix state value).
tests/unit/core/test_core_composite.py holds it to a pandas computation of this definition.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from schemas.instruments import COMPOSITE_VENUE

CompositeState = dict[str, Any]
"""``{"venues": {venue: [price, ts_us]}, "clock": ts_us | None, "last": price | None}``."""

SOURCE = "composite"


@dataclass(frozen=True, slots=True)
class CompositeValue:
    """One emission: the new index price and its event time (µs since the epoch)."""

    price: float
    ts_us: int
    fresh_venues: int


def new_state() -> CompositeState:
    return {"venues": {}, "clock": None, "last": None}


def composite_step(state: CompositeState | None, venue: str, price: float, ts_us: int,
                   stale_us: int) -> tuple[CompositeState, CompositeValue | None]:
    """Read one tick of ``venue``; the new state (a fresh dict) and the emission, if the value changed.

    Raises ``ValueError`` for the composite's own venue (its ticks are outputs, never inputs).
    """
    if venue == COMPOSITE_VENUE:
        raise ValueError("the composite index never reads its own ticks")
    current = new_state() if state is None else state
    venues = dict(current["venues"])
    venues[venue] = [price, ts_us]
    clock = ts_us if current["clock"] is None else max(current["clock"], ts_us)
    fresh = [latest for latest, seen in venues.values() if clock - seen < stale_us]
    last = current["last"]
    emitted = None
    if fresh:
        value = statistics.median(fresh)
        if value != last:
            emitted = CompositeValue(value, clock, len(fresh))
            last = value
    return {"venues": venues, "clock": clock, "last": last}, emitted
