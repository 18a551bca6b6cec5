"""Binance spot ``<symbol>@trade`` streams.

Connects to ``<base>/ws`` and subscribes with ``{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}``
(one connection for every symbol; the server drops it after 24 h and we reconnect).
A trade carries ``e, E, s, t, p, q, T, m``: ``p``/``q`` strings, ``T`` the trade time in
ms, ``t`` the per-symbol trade id (gaps tracked on it). Combined-stream frames
(``{"stream":…,"data":{…}}``) are unwrapped too. Our ``BTC-USDT`` is Binance's ``BTCUSDT``.
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
from processors.ingest.validation import TimeBounds, parse_amount, parse_epoch, require_amount

SOURCE = "binance"


class BinanceTradeWire(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    e: Literal["trade"]
    E: int | None = None
    s: str | None = None
    t: int | None = Field(None, ge=0)
    p: str | None = None
    q: str | None = None
    T: int | None = None
    m: bool | None = None


_DOMAINS = {"s": "symbol", "t": "trade_id", "p": "price", "q": "volume", "T": "timestamp"}


def venue_symbol(symbol: str) -> str:
    """``BTC-USDT`` → ``BTCUSDT``."""
    return symbol.replace("-", "").replace("/", "")


class BinanceAdapter:
    name = SOURCE

    def __init__(self, base_url: str, symbols: tuple[str, ...], bounds: TimeBounds) -> None:
        self.base_url = base_url
        self.symbols = symbols
        self.by_venue = {venue_symbol(symbol): symbol for symbol in symbols}
        self.sink = TradeSink(SOURCE, symbols, bounds)

    def url(self) -> str:
        return f"{self.base_url}/ws"

    def subscribe_messages(self) -> list[dict[str, object]]:
        streams = [f"{venue_symbol(symbol).lower()}@trade" for symbol in self.symbols]
        return [{"method": "SUBSCRIBE", "params": streams, "id": 1}]

    def parse(self, frame: str | bytes, now: datetime) -> list[Outcome]:
        message = load_object(frame)
        if isinstance(message, Rejected):
            return [message]
        if "stream" in message and isinstance(message.get("data"), dict):
            message = message["data"]  # type: ignore[assignment]
        if message.get("e") != "trade":  # a trade is never taken for an ack or an error, whatever else it holds
            if "result" in message and "id" in message:
                return []  # subscription acknowledgement
            if "error" in message or ("code" in message and "msg" in message):
                return [SourceProblem("venue_error", str(message.get("error") or message.get("msg"))[:500])]
            return [Rejected(reasons.MESSAGE_UNKNOWN, f"event type {str(message.get('e'))[:40]!r}", raw_text(frame))]
        try:
            wire = validate_wire(BinanceTradeWire, message, _DOMAINS)
            return self.to_ticks(wire, now, frame)
        except RecordRejected as error:
            venue = message.get("s")
            symbol = self.by_venue.get(venue.upper()) if isinstance(venue, str) else None
            seen = self.sink.observe_rejected(symbol, message.get("t"))
            return [*seen, reject(error, f"trade {str(venue)[:32]}:{message.get('t')}", frame)]

    def to_ticks(self, wire: BinanceTradeWire, now: datetime, raw: object) -> list[Outcome]:
        """The single conversion of a Binance trade to a tick (and a gap, if trade ids jumped)."""
        if not wire.s:
            raise RecordRejected(reasons.SYMBOL_MISSING, "trade without symbol")
        symbol = self.by_venue.get(wire.s.upper())
        if symbol is None:
            raise RecordRejected(reasons.SYMBOL_UNEXPECTED, f"{wire.s[:32]!r} is not subscribed")
        if wire.t is None:
            raise RecordRejected(reasons.TRADE_ID_MISSING, "trade without id")
        return self.sink.trade(symbol, wire.t, raw, lambda: TradeValues(
            price=require_amount(wire.p, "price"), volume=parse_amount(wire.q, "volume", required=False),
            ts_event=parse_epoch(wire.T, unit="ms"),
        ), now)
