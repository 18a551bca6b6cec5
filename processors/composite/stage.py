"""The composite stage's per-record logic: a ``ticks`` record in, a composite ``Tick`` (encoded) out, or nothing.

Called by the Quix dataframe of :mod:`processors.composite.service`: :meth:`CompositeStage.read`
once per ``ticks`` record (before the re-keying by symbol), :meth:`CompositeStage.step` once per
input of a composite symbol (after it, with the symbol's state). A record that does not decode, a
symbol without a composite and the composite's own ticks are skipped (the stream processor
dead-letters bad records; the composite only reads good ones), counted in
``stockstream_composite_inputs_total{outcome}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from prometheus_client import Counter
from pydantic import ValidationError

from processors.core.composite import SOURCE, CompositeState, composite_step
from processors.core.timeutil import from_us, to_us
from schemas.events import Tick, encode
from schemas.instruments import COMPOSITE_VENUE, instrument_key
from schemas.upcasters import UnsupportedSchemaVersionError, decode_tick

STATE_KEY = "composite"
INPUTS = Counter("stockstream_composite_inputs_total", "Ticks records read by the composite stage, by outcome",
                 ["outcome"])
EMITTED = Counter("stockstream_composite_ticks_total", "Composite index ticks emitted, by symbol", ["symbol"])


class State(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...


class CompositeStage:
    """The composite of ``symbols``; venues count while younger than ``stale_us`` (event time)."""

    def __init__(self, symbols: tuple[str, ...], stale_us: int) -> None:
        self.symbols = frozenset(symbols)
        self.stale_us = stale_us

    def read(self, value: bytes | None) -> dict[str, Any] | None:
        """The input fields of a composite symbol's tick (JSON-ready, for the re-keying), else None."""
        if value is None:
            INPUTS.labels("invalid").inc()
            return None
        try:
            tick = decode_tick(value)
        except (ValidationError, UnsupportedSchemaVersionError):
            INPUTS.labels("invalid").inc()
            return None
        if tick.venue == COMPOSITE_VENUE or tick.symbol not in self.symbols:
            INPUTS.labels("other").inc()
            return None
        INPUTS.labels("read").inc()
        return {"symbol": tick.symbol, "venue": tick.venue, "price": tick.price, "ts_us": to_us(tick.ts_event),
                "ts_init": tick.ts_init.isoformat(), "source_id": tick.source_id}

    def step(self, item: dict[str, Any], state: State) -> bytes | None:
        """Apply one input to its symbol's state; the encoded composite tick when the value changed."""
        current: CompositeState | None = state.get(STATE_KEY)
        updated, emitted = composite_step(current, item["venue"], item["price"], item["ts_us"], self.stale_us)
        state.set(STATE_KEY, updated)
        if emitted is None:
            return None
        EMITTED.labels(item["symbol"]).inc()
        tick = Tick(symbol=item["symbol"], venue=COMPOSITE_VENUE, price=emitted.price, ts_event=from_us(emitted.ts_us),
                    ts_init=datetime.fromisoformat(item["ts_init"]), source=SOURCE,
                    source_id=f"{item['venue']}:{item['source_id']}"[:128])
        return encode(tick)


def composite_key(value: bytes) -> bytes:
    """The record key of an encoded composite tick: ``SYMBOL@index``."""
    return instrument_key(Tick.model_validate_json(value).symbol, COMPOSITE_VENUE)
