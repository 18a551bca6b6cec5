"""Each bug the fuzz tier found, as a plain deterministic test (the fuzz tests keep them as ``@example`` too)."""

from __future__ import annotations

import json

from processors.ingest.sources.base import Accepted, Rejected, SourceProblem
from processors.ingest.sources.exchanges.binance import BinanceAdapter
from processors.ingest.sources.exchanges.coinbase import CoinbaseAdapter
from processors.ingest.sources.exchanges.kraken import KrakenAdapter
from processors.ingest.validation import TimeBounds
from schemas.events import DeadLetter, encode
from tests.fuzz.invariants import NOW, dead_letter_of
from tests.support.fake_servers.exchange_ws import binance_trade, kraken_trade, kraken_trades

T = "2024-05-01T12:00:00.123456Z"
T_MS = 1_714_564_800_123


def test_dead_letter_with_a_lone_surrogate_still_encodes() -> None:
    """A JSON frame may carry "\\ud800" (valid JSON, not encodable as UTF-8): the ingest service crashed
    publishing its dead letter (PydanticSerializationError). The schema now backslash-escapes it."""
    (rejected,) = BinanceAdapter("ws://x", ("BTC-USDT",), TimeBounds()).parse(
        json.dumps(binance_trade(1, "1", T_MS, symbol="\ud800")), NOW)
    assert isinstance(rejected, Rejected) and rejected.reason == "symbol_unexpected"
    letter = DeadLetter.model_validate_json(encode(dead_letter_of("binance", rejected)))
    assert "\\ud800" in letter.detail


def test_timestamp_without_a_utc_equivalent_is_rejected_not_raised() -> None:
    """``0001-01-01T00:00:00+05:00`` parses but has no UTC datetime: OverflowError escaped the parser."""
    frame = json.dumps({"type": "ticker", "product_id": "BTC-USD", "trade_id": 1, "price": "1",
                        "time": "0001-01-01T00:00:00+05:00"})
    (rejected,) = CoinbaseAdapter("ws://x", ("BTC-USD",), TimeBounds()).parse(frame, NOW)
    assert isinstance(rejected, Rejected) and rejected.reason == "timestamp_invalid"


def test_unhashable_message_type_or_channel_is_a_dead_letter_not_a_crash() -> None:
    """``{"channel": []}`` raised TypeError (unhashable list in a frozenset test) and stopped the feed."""
    (kraken,) = KrakenAdapter("ws://x", ("BTC-USD",), TimeBounds()).parse('{"channel": []}', NOW)
    (coinbase,) = CoinbaseAdapter("ws://x", ("BTC-USD",), TimeBounds()).parse('{"type": {"a": 1}}', NOW)
    assert isinstance(kraken, Rejected) and kraken.reason == "message_unknown"
    assert isinstance(coinbase, Rejected) and coinbase.reason == "message_unknown"


def test_a_trade_carrying_control_keys_is_not_dropped_silently() -> None:
    """A Binance trade with ``result``/``id`` keys was taken for a subscription ack, a Kraken trade message
    with a ``method`` key for a method reply: both vanished without a tick, a dead letter or a count."""
    binance = BinanceAdapter("ws://x", ("BTC-USDT",), TimeBounds()).parse(
        json.dumps({**binance_trade(1, "64000.5", T_MS), "result": None, "id": 5}), NOW)
    kraken = KrakenAdapter("ws://x", ("BTC-USD",), TimeBounds()).parse(
        json.dumps({**kraken_trades("update", [kraken_trade(1, 64000.5, T)]), "method": "trade"}), NOW)
    with_error = BinanceAdapter("ws://x", ("BTC-USDT",), TimeBounds()).parse(
        json.dumps({**binance_trade(1, "64000.5", T_MS), "error": None}), NOW)
    assert [type(o) for o in binance] == [Accepted] and [type(o) for o in kraken] == [Accepted]
    assert not any(isinstance(o, SourceProblem) for o in with_error) and len(with_error) == 1
