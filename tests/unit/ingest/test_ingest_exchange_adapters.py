"""Exchange adapters: each venue's frames → ticks, control messages, problems, rejections, gaps."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from processors.ingest.sources.base import Accepted, Rejected, SequenceGap, SourceProblem
from processors.ingest.sources.exchanges.binance import BinanceAdapter
from processors.ingest.sources.exchanges.coinbase import CoinbaseAdapter
from processors.ingest.sources.exchanges.kraken import KrakenAdapter
from processors.ingest.validation import TimeBounds
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

NOW = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
T = "2024-05-01T12:00:00.123456Z"
T_MS = 1_714_564_800_123


def frame(message: object) -> str:
    return json.dumps(message)


def test_coinbase_ticker_to_tick_with_bid_ask_and_trade_size():
    adapter = CoinbaseAdapter("ws://x", ("BTC-USD",), TimeBounds())
    assert adapter.subscribe_messages() == [
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["ticker", "heartbeat"]}]
    (outcome,) = adapter.parse(frame(coinbase_ticker(7, "65000.01", T, best_bid="65000.00", best_ask="65000.02",
                                                     last_size="0.25")), NOW)
    tick = outcome.tick
    assert (tick.symbol, tick.price, tick.volume, tick.bid, tick.ask) == ("BTC-USD", 65000.01, 0.25, 65000.0, 65000.02)
    assert tick.ts_event == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert (tick.source, tick.source_id, tick.ts_init) == ("coinbase", "BTC-USD:7", NOW)
    assert adapter.parse(frame(coinbase_subscriptions(["BTC-USD"])), NOW) == []
    assert adapter.parse(frame(coinbase_heartbeat()), NOW) == []
    (problem,) = adapter.parse(frame({"type": "error", "message": "Failed to subscribe", "reason": "x"}), NOW)
    assert isinstance(problem, SourceProblem) and problem.kind == "venue_error"


@pytest.mark.parametrize(("message", "reason"), [
    ("{oops", "malformed_json"), ("[]", "not_an_object"), ({"type": "l2update"}, "message_unknown"),
    ({**coinbase_ticker(1, "1", T), "price": "NaN"}, "price_not_finite"),
    ({**coinbase_ticker(1, "1", T), "product_id": "ETH-USD"}, "symbol_unexpected"),
    ({**coinbase_ticker(1, "1", T), "trade_id": "1"}, "trade_id_invalid"),
    ({k: v for k, v in coinbase_ticker(1, "1", T).items() if k != "trade_id"}, "trade_id_missing"),
    ({**coinbase_ticker(1, "1", T), "time": "noon"}, "timestamp_invalid"),
    ({**coinbase_ticker(1, "1", T), "best_bid": "0"}, "bid_not_positive"),
])
def test_coinbase_rejections(message, reason):
    adapter = CoinbaseAdapter("ws://x", ("BTC-USD",), TimeBounds())
    (outcome,) = adapter.parse(message if isinstance(message, str) else frame(message), NOW)
    assert isinstance(outcome, Rejected) and outcome.reason == reason


def test_binance_trade_ack_and_combined_stream():
    adapter = BinanceAdapter("ws://x", ("BTC-USDT", "ETH-USDT"), TimeBounds())
    assert adapter.url() == "ws://x/ws"
    assert adapter.subscribe_messages() == [{"method": "SUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@trade"], "id": 1}]
    assert adapter.parse(frame(binance_ack()), NOW) == []
    (outcome,) = adapter.parse(frame(binance_trade(12345, "0.001", T_MS, qty="100")), NOW)
    assert (outcome.tick.symbol, outcome.tick.price, outcome.tick.volume) == ("BTC-USDT", 0.001, 100.0)
    assert outcome.tick.ts_event == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    (wrapped,) = adapter.parse(frame({"stream": "ethusdt@trade", "data": binance_trade(9, "3000", T_MS, "ETHUSDT")}), NOW)
    assert wrapped.tick.source_id == "ETH-USDT:9"
    (problem,) = adapter.parse(frame({"error": {"code": 2, "msg": "Invalid request"}, "id": 1}), NOW)
    assert problem.kind == "venue_error"


@pytest.mark.parametrize(("message", "reason"), [
    ({**binance_trade(1, "1", T_MS), "s": "DOGEUSDT"}, "symbol_unexpected"),
    ({**binance_trade(1, "1", T_MS), "p": 1.5}, "price_not_number"),
    ({**binance_trade(1, "1", T_MS), "q": "-2"}, "volume_negative"),
    ({**binance_trade(1, "1", T_MS), "T": "1714564800123"}, "timestamp_invalid"),
    ({**binance_trade(1, "1", T_MS), "T": 10**20}, "timestamp_invalid"),
    ({"e": "kline"}, "message_unknown"),
])
def test_binance_rejections(message, reason):
    adapter = BinanceAdapter("ws://x", ("BTC-USDT",), TimeBounds())
    (outcome,) = adapter.parse(frame(message), NOW)
    assert isinstance(outcome, Rejected) and outcome.reason == reason


def test_kraken_snapshot_update_heartbeats_and_per_element_rejection():
    adapter = KrakenAdapter("ws://x", ("BTC-USD",), TimeBounds())
    assert adapter.subscribe_messages() == [
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": True}}]
    for control in (KRAKEN_HEARTBEAT, kraken_status(), kraken_subscribed()):
        assert adapter.parse(frame(control), NOW) == []
    outcomes = adapter.parse(frame(kraken_trades("snapshot", [
        kraken_trade(1, 65000.1, T), {**kraken_trade(2, 65000.2, T), "price": "65000.2"}, kraken_trade(3, 65000.3, T),
    ])), NOW)
    # The invalid trade 2 was delivered: it is a rejection, not a gap before trade 3.
    assert [type(o).__name__ for o in outcomes] == ["Accepted", "Rejected", "Accepted"]
    assert outcomes[1].reason == "price_not_number" and json.loads(outcomes[1].raw)["trade_id"] == 2
    assert outcomes[0].tick.symbol == "BTC-USD" and outcomes[2].tick.source_id == "BTC-USD:3"
    (problem,) = adapter.parse(frame({"method": "subscribe", "success": False, "error": "Currency pair not supported"}), NOW)
    assert problem.kind == "venue_error"
    (unknown,) = adapter.parse(frame({"channel": "book", "type": "update", "data": []}), NOW)
    assert unknown.reason == "message_unknown"


def test_gaps_are_detected_per_symbol_and_replays_are_not_gaps():
    adapter = KrakenAdapter("ws://x", ("BTC-USD", "ETH-USD"), TimeBounds())

    def ids(*trade_ids: int, symbol: str = "BTC/USD") -> list[object]:
        return adapter.parse(frame(kraken_trades("update", [kraken_trade(i, 1.0, T, symbol) for i in trade_ids])), NOW)

    assert not [o for o in ids(10, 11) if isinstance(o, SequenceGap)]
    assert not [o for o in ids(500, symbol="ETH/USD") if isinstance(o, SequenceGap)]
    gaps = [o for o in ids(15) if isinstance(o, SequenceGap)]
    assert gaps == [SequenceGap("BTC-USD", 12, 15)] and gaps[0].missing == 3
    assert not [o for o in ids(13, 14, 15, 16) if isinstance(o, SequenceGap)]  # snapshot replay after reconnect
    assert all(isinstance(o, Accepted) for o in ids(17))
