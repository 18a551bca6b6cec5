"""Coinbase Exchange ``ticker`` channel (plus ``heartbeat`` to detect silence).

Subscribe: ``{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker","heartbeat"]}``.
A ticker carries ``product_id, price, time, sequence, trade_id, last_size, best_bid,
best_ask`` (money as strings). Gaps are tracked on ``trade_id`` (one per trade and
product); the ``sequence`` is the order-book sequence and skips by design on this channel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from processors.ingest import reasons
from processors.ingest.reasons import RecordRejected
from processors.ingest.sources.base import Outcome, Rejected, SourceProblem, raw_text
from processors.ingest.sources.exchanges.common import (
    TradeSink,
    TradeValues,
    load_object,
    reject,
    validate_wire,
)
from processors.ingest.validation import (
    TimeBounds,
    parse_amount,
    parse_iso_timestamp,
    parse_symbol,
    require_amount,
)

SOURCE = "coinbase"
CONTROL_TYPES = frozenset({"subscriptions", "heartbeat"})


class CoinbaseTickerWire(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    type: Literal["ticker"]
    sequence: int | None = None
    product_id: str | None = None
    price: str | None = None
    time: str | None = None
    trade_id: int | None = Field(None, ge=0)
    last_size: str | None = None
    best_bid: str | None = None
    best_ask: str | None = None


_DOMAINS = {"product_id": "symbol", "price": "price", "time": "timestamp", "trade_id": "trade_id",
            "last_size": "volume", "best_bid": "bid", "best_ask": "ask"}


class CoinbaseAdapter:
    name = SOURCE

    def __init__(self, base_url: str, symbols: tuple[str, ...], bounds: TimeBounds) -> None:
        self.base_url = base_url
        self.symbols = symbols
        self.sink = TradeSink(SOURCE, symbols, bounds)

    def url(self) -> str:
        return self.base_url

    def subscribe_messages(self) -> list[dict[str, object]]:
        return [{"type": "subscribe", "product_ids": list(self.symbols), "channels": ["ticker", "heartbeat"]}]

    def parse(self, frame: str | bytes, now: datetime) -> list[Outcome]:
        message = load_object(frame)
        if isinstance(message, Rejected):
            return [message]
        kind = message.get("type")
        if isinstance(kind, str) and kind in CONTROL_TYPES:  # any JSON value may arrive; a list is unhashable
            return []
        if kind == "error":
            return [SourceProblem("venue_error", f"{message.get('message')}: {message.get('reason')}"[:500])]
        if kind != "ticker":
            return [Rejected(reasons.MESSAGE_UNKNOWN, f"message type {str(kind)[:40]!r}", raw_text(frame))]
        try:
            wire = validate_wire(CoinbaseTickerWire, message, _DOMAINS)
            return self.to_ticks(wire, now, frame)
        except RecordRejected as error:
            product = message.get("product_id")
            seen = self.sink.observe_rejected(product if isinstance(product, str) else None, message.get("trade_id"))
            return [*seen, reject(error, f"ticker {str(product)[:32]}:{message.get('trade_id')}", frame)]

    def to_ticks(self, wire: CoinbaseTickerWire, now: datetime, raw: object) -> list[Outcome]:
        """The single conversion of a Coinbase ticker to a tick (and a gap, if trade ids jumped)."""
        symbol = parse_symbol(wire.product_id, self.sink.allowed)
        if wire.trade_id is None:
            raise RecordRejected(reasons.TRADE_ID_MISSING, "ticker without trade_id")
        return self.sink.trade(symbol, wire.trade_id, raw, lambda: TradeValues(
            price=require_amount(wire.price, "price"),
            volume=parse_amount(wire.last_size, "volume", required=False),
            bid=parse_amount(wire.best_bid, "bid", required=False),
            ask=parse_amount(wire.best_ask, "ask", required=False),
            ts_event=parse_iso_timestamp(wire.time),
        ), now)
