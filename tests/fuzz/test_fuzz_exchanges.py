"""Coinbase, Binance and Kraken WebSocket frames: ``Adapter.parse`` (what ``WebSocketFeed`` calls per frame).

Properties, for any frame (mutated venue messages, deep nesting, truncated JSON, raw bytes):
parse never raises; every outcome is publishable (tick valid, dead letter encodes, reason in the
closed set); a frame that claims to carry trades yields one tick or one dead letter per trade —
never nothing.
"""

from __future__ import annotations

import json

from hypothesis import example, given

from processors.ingest.sources.base import Accepted, Rejected, SequenceGap
from processors.ingest.sources.exchanges.binance import BinanceAdapter
from processors.ingest.sources.exchanges.coinbase import CoinbaseAdapter
from processors.ingest.sources.exchanges.kraken import KrakenAdapter
from processors.ingest.validation import TimeBounds
from tests.fuzz.invariants import NOW, check_outcomes
from tests.fuzz.strategies import frames, fuzz
from tests.support.fake_servers.exchange_ws import (
    KRAKEN_HEARTBEAT,
    binance_ack,
    binance_trade,
    coinbase_heartbeat,
    coinbase_subscriptions,
    coinbase_ticker,
    kraken_status,
    kraken_subscribed,
    kraken_trade,
    kraken_trades,
)

T = "2024-05-01T12:00:00.123456Z"
T_MS = 1_714_564_800_123


def _object(frame: str | bytes) -> object:
    try:
        return json.loads(frame)
    except (ValueError, RecursionError):
        return None


def _records(outcomes: list[object]) -> list[object]:
    return [outcome for outcome in outcomes if isinstance(outcome, Accepted | Rejected)]


COINBASE = [coinbase_ticker(7, "65000.01", T, best_bid="65000.00", best_ask="65000.02"),
            coinbase_heartbeat(), coinbase_subscriptions(["BTC-USD"]),
            {"type": "error", "message": "Failed to subscribe", "reason": "ETH-XYZ is not a valid product"}]


@given(frame=frames(COINBASE, extra_keys=["type", "product_id", "trade_id", "sequence"]))
@example(frame='{"type":"ticker","product_id":"\\ud800","trade_id":1}')
@example(frame='{"type":"error","message":"\\udcff","reason":"\\ud800"}')
@example(frame='{"type":"ticker","product_id":"BTC-USD","trade_id":1,"price":"1","time":"0001-01-01T00:00:00+05:00"}')
@fuzz(700)
def test_coinbase_frames(frame: str | bytes) -> None:
    adapter = CoinbaseAdapter("ws://x", ("BTC-USD", "ETH-USD"), TimeBounds())
    outcomes = adapter.parse(frame, NOW)
    check_outcomes("coinbase", outcomes, adapter.symbols)
    message = _object(frame)
    if isinstance(message, dict) and message.get("type") == "ticker":
        assert len(_records(outcomes)) == 1, outcomes


BINANCE = [binance_trade(42, "64000.5", T_MS, qty="0.25"), binance_ack(),
           {"stream": "btcusdt@trade", "data": binance_trade(43, "64000.6", T_MS)},
           {"error": {"code": 2, "msg": "Invalid request"}, "id": 1}]


@given(frame=frames(BINANCE, extra_keys=["e", "s", "t", "stream", "data", "result", "id", "code", "msg"]))
@example(frame='{"e":"trade","s":"\\ud800","t":1,"p":"1","q":"1","T":1714564800123}')
@example(frame='{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"1","T":1714564800123,"result":null,"id":5}')
@example(frame='{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"1","T":1' + "0" * 400 + "}")
@fuzz(700)
def test_binance_frames(frame: str | bytes) -> None:
    adapter = BinanceAdapter("ws://x", ("BTC-USDT", "ETH-USDT"), TimeBounds())
    outcomes = adapter.parse(frame, NOW)
    check_outcomes("binance", outcomes, adapter.symbols)
    message = _object(frame)
    if isinstance(message, dict) and "stream" in message and isinstance(message.get("data"), dict):
        message = message["data"]
    if isinstance(message, dict) and message.get("e") == "trade":
        assert len(_records(outcomes)) == 1, outcomes


KRAKEN = [kraken_trades("update", [kraken_trade(9, 64000.5, T), kraken_trade(10, 64000.7, T, qty=0.5)]),
          kraken_trades("snapshot", [kraken_trade(8, 64000.1, T)]), kraken_subscribed(), kraken_status(),
          KRAKEN_HEARTBEAT, {"method": "subscribe", "success": False, "error": "Currency pair not supported"}]


@given(frame=frames(KRAKEN, extra_keys=["channel", "type", "data", "method", "success"]))
@example(frame=json.dumps(kraken_trades("update", [{**kraken_trade(1, 1.0, T), "symbol": "\ud800"}])))
@example(frame=json.dumps({**kraken_trades("update", [kraken_trade(1, 1.0, T)]), "method": "trade"}))
@example(frame=json.dumps(kraken_trades("update", [kraken_trade(1, 1e308 * 10, T), 5, None, []])))
@fuzz(700)
def test_kraken_frames(frame: str | bytes) -> None:
    adapter = KrakenAdapter("ws://x", ("BTC-USD", "ETH-USD"), TimeBounds())
    outcomes = adapter.parse(frame, NOW)
    check_outcomes("kraken", outcomes, adapter.symbols)
    message = _object(frame)
    if (isinstance(message, dict) and message.get("channel") == "trade"
            and message.get("type") in ("snapshot", "update") and isinstance(message.get("data"), list)):
        assert len(_records(outcomes)) == len(message["data"]), outcomes


@given(frames=frames(KRAKEN).map(lambda f: [f]) | frames(KRAKEN).flatmap(lambda f: frames(KRAKEN).map(lambda g: [f, g])))
@fuzz(400)
def test_kraken_gap_tracking_survives_any_sequence(frames: list[str | bytes]) -> None:
    """Gap state carried between hostile frames never breaks a later valid frame."""
    adapter = KrakenAdapter("ws://x", ("BTC-USD",), TimeBounds())
    for frame in frames:
        check_outcomes("kraken", adapter.parse(frame, NOW), adapter.symbols)
    after = adapter.parse(json.dumps(kraken_trades("update", [kraken_trade(10**9, 64000.5, T)])), NOW)
    assert [type(o) for o in after if not isinstance(o, SequenceGap)] == [Accepted]
