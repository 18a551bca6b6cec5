"""Helpers shared by the exchange adapters: frame decoding and trade-to-tick conversion."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from processors.ingest import reasons
from processors.ingest.reasons import RecordRejected
from processors.ingest.sequence import GapTracker
from processors.ingest.sources.base import Accepted, Outcome, Rejected, raw_text
from processors.ingest.validation import TimeBounds, build_tick, rejection_from_validation_error


def load_object(frame: str | bytes) -> dict[str, object] | Rejected:
    """The JSON object of one frame, or the rejection of a frame that is not one."""
    try:
        payload = json.loads(frame)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        return Rejected(reasons.MALFORMED_JSON, f"frame is not JSON: {str(error)[:160]}", raw_text(frame))
    if not isinstance(payload, dict):
        return Rejected(reasons.NOT_AN_OBJECT, f"frame is a JSON {type(payload).__name__}", raw_text(frame))
    return payload


WireModel = TypeVar("WireModel", bound=BaseModel)


def validate_wire(model: type[WireModel], payload: object, domains: Mapping[str, str]) -> WireModel:
    """``model.model_validate(payload)`` with shape errors mapped to reason codes."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise rejection_from_validation_error(error, domains) from None


class TradeSink:
    """Per-adapter state and the last step of every trade: gap check, then tick build."""

    def __init__(self, source: str, symbols: tuple[str, ...], bounds: TimeBounds) -> None:
        self.source = source
        self.allowed = frozenset(symbols)
        self.bounds = bounds
        self.gaps = GapTracker()

    def trade(
        self, *, symbol: str, trade_id: int, price: float, volume: float | None, ts_event: datetime,
        now: datetime, bid: float | None = None, ask: float | None = None,
    ) -> list[Outcome]:
        tick = build_tick(
            source=self.source, source_id=f"{symbol}:{trade_id}", symbol=symbol, price=price, volume=volume,
            bid=bid, ask=ask, ts_event=ts_event, ts_init=now, bounds=self.bounds,
        )
        gap = self.gaps.observe(symbol, trade_id)
        return [gap, Accepted(tick)] if gap is not None else [Accepted(tick)]


def reject(error: RecordRejected, locator: str, raw: object) -> Rejected:
    text = raw if isinstance(raw, str | bytes) else json.dumps(raw, default=str)
    return Rejected(error.reason, f"{locator}: {error.detail}", raw_text(text))
