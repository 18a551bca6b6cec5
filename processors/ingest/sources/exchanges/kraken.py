"""Kraken WebSocket v2 ``trade`` channel.

Subscribe: ``{"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD"]}}``. Trades
arrive as ``{"channel":"trade","type":"snapshot|update","data":[{symbol, side, price, qty,
ord_type, trade_id, timestamp}]}`` with numbers as JSON numbers; each element is one
record (a bad one is dead-lettered alone). ``heartbeat`` and ``status`` frames keep the
idle timer alive. After a reconnect the snapshot repeats recent trades: the service's
duplicate guard drops them, and the gap tracker ignores ids it has passed.
"""

from __future__ import annotations

import json
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

SOURCE = "kraken"
Number = float | int


class KrakenTradeWire(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    symbol: str | None = None
    side: str | None = None
    price: Number | None = None
    qty: Number | None = None
    trade_id: int | None = Field(None, ge=0)
    timestamp: str | None = None


class KrakenTradeMessageWire(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    channel: Literal["trade"]
    type: Literal["snapshot", "update"]
    data: list[object]


_DOMAINS = {"symbol": "symbol", "price": "price", "qty": "volume", "trade_id": "trade_id", "timestamp": "timestamp"}
CONTROL_CHANNELS = frozenset({"heartbeat", "status"})


class KrakenAdapter:
    name = SOURCE

    def __init__(self, base_url: str, symbols: tuple[str, ...], bounds: TimeBounds) -> None:
        self.base_url = base_url
        self.symbols = symbols
        self.sink = TradeSink(SOURCE, symbols, bounds)

    def url(self) -> str:
        return self.base_url

    def subscribe_messages(self) -> list[dict[str, object]]:
        pairs = [symbol.replace("-", "/", 1) for symbol in self.symbols]
        return [{"method": "subscribe", "params": {"channel": "trade", "symbol": pairs, "snapshot": True}}]

    def parse(self, frame: str | bytes, now: datetime) -> list[Outcome]:
        message = load_object(frame)
        if isinstance(message, Rejected):
            return [message]
        channel = message.get("channel")
        if channel != "trade":  # a trade message is never taken for a control one, whatever else it holds
            if (isinstance(channel, str) and channel in CONTROL_CHANNELS) or message.get("method") == "pong":
                return []
            if "method" in message:
                if message.get("success") is False:
                    return [SourceProblem("venue_error", f"{message.get('method')}: {message.get('error')}"[:500])]
                return []
        try:
            envelope = validate_wire(KrakenTradeMessageWire, message, {})
        except RecordRejected:
            return [Rejected(reasons.MESSAGE_UNKNOWN,
                             f"channel {str(message.get('channel'))[:40]!r} type {str(message.get('type'))[:20]!r}",
                             raw_text(frame))]
        outcomes: list[Outcome] = []
        for index, item in enumerate(envelope.data):
            try:
                if not isinstance(item, dict):
                    raise RecordRejected(reasons.NOT_AN_OBJECT, "trade is not an object")
                raw = json.dumps(item, default=str)
                outcomes.extend(self.to_ticks(validate_wire(KrakenTradeWire, item, _DOMAINS), now, raw))
            except RecordRejected as error:
                if isinstance(item, dict):
                    pair = item.get("symbol")
                    symbol = pair.replace("/", "-") if isinstance(pair, str) else None
                    outcomes.extend(self.sink.observe_rejected(symbol, item.get("trade_id")))
                outcomes.append(reject(error, f"{envelope.type}[{index}]", json.dumps(item, default=str)))
        return outcomes

    def to_ticks(self, wire: KrakenTradeWire, now: datetime, raw: object) -> list[Outcome]:
        """The single conversion of a Kraken trade to a tick (and a gap, if trade ids jumped)."""
        symbol = parse_symbol(wire.symbol, self.sink.allowed)
        if wire.trade_id is None:
            raise RecordRejected(reasons.TRADE_ID_MISSING, "trade without trade_id")
        return self.sink.trade(symbol, wire.trade_id, raw, lambda: TradeValues(
            price=require_amount(wire.price, "price"), volume=parse_amount(wire.qty, "volume", required=False),
            ts_event=parse_iso_timestamp(wire.timestamp),
        ), now)
