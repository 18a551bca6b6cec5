"""Helpers shared by the exchange adapters: frame decoding and trade-to-tick conversion."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    except (ValueError, RecursionError) as error:  # JSON, UTF-8, and numbers of more than 4,300 digits
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
    """Per-adapter state and the last step of every trade: gap check, then tick build.

    The trade id is observed before the values are checked, so a delivered but invalid
    trade is a rejection, not a gap.
    """

    def __init__(self, source: str, symbols: tuple[str, ...], bounds: TimeBounds) -> None:
        self.source = source
        self.allowed = frozenset(symbols)
        self.bounds = bounds
        self.gaps = GapTracker()

    def trade(self, symbol: str, trade_id: int, raw: object, values: Callable[[], TradeValues],
              now: datetime) -> list[Outcome]:
        gap = self.gaps.observe(symbol, trade_id)
        outcomes: list[Outcome] = [gap] if gap is not None else []
        try:
            trade = values()
            outcomes.append(Accepted(build_tick(
                source=self.source, venue=self.source, source_id=f"{symbol}:{trade_id}", symbol=symbol, price=trade.price,
                volume=trade.volume, bid=trade.bid, ask=trade.ask, ts_event=trade.ts_event, ts_init=now,
                bounds=self.bounds,
            )))
        except RecordRejected as error:
            outcomes.append(reject(error, f"trade {symbol}:{trade_id}", raw))
        return outcomes


    def observe_rejected(self, symbol: str | None, trade_id: object) -> list[Outcome]:
        """Track the id of a trade refused for its shape, so it does not show up as a gap later."""
        if symbol not in self.allowed or not isinstance(trade_id, int) or isinstance(trade_id, bool):
            return []
        gap = self.gaps.observe(symbol, trade_id)
        return [gap] if gap is not None else []


@dataclass(frozen=True)
class TradeValues:
    """The parsed values of one trade (the adapter's conversion fills it)."""

    price: float
    ts_event: datetime
    volume: float | None = None
    bid: float | None = None
    ask: float | None = None


def reject(error: RecordRejected, locator: str, raw: object) -> Rejected:
    text = raw if isinstance(raw, str | bytes) else json.dumps(raw, default=str)
    return Rejected(error.reason, f"{locator}: {error.detail}", raw_text(text))
