"""Coinbase, Binance and Kraken v2 feeds against a local WebSocket server replaying their messages:
subscribe, parse, drop → reconnect, silence → heartbeat timeout → reconnect, trade-id gaps counted."""

from __future__ import annotations

import pytest
from ingest_support import IngestRun, ingest_settings, run_ingest

from tests.support.fake_servers.exchange_ws import (
    KRAKEN_HEARTBEAT,
    Close,
    Drop,
    FakeExchangeServer,
    Pause,
    Send,
    Silence,
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

pytestmark = pytest.mark.integration

T0 = 1_714_564_800_000  # 2024-05-01T12:00:00Z in ms


def iso(offset_s: int) -> str:
    return f"2024-05-01T12:00:{offset_s:02d}.000000Z"


def feed_settings(stack, namespace, source: str, server: FakeExchangeServer, **overrides):
    url_field = {"coinbase": "coinbase_ws_url", "binance": "binance_ws_url", "kraken": "kraken_ws_url"}[source]
    values = {"source": source, url_field: server.url, "ws_idle_timeout_seconds": 0.5,
              "max_future_seconds": 10**9}
    values.update(overrides)
    return ingest_settings(stack, namespace, **values)


def counted(run: IngestRun, name: str, **labels: str) -> float:
    return run.metric(f"stockstream_ingest_{name}", source=run.source.name, **labels)


def assert_connection_life(run: IngestRun, server: FakeExchangeServer) -> None:
    assert server.connections >= 3
    assert counted(run, "source_errors_total", kind="connection_closed") >= 1  # the drop
    assert counted(run, "source_errors_total", kind="heartbeat_timeout") >= 1  # the silence
    assert counted(run, "reconnects_total") >= 2


def test_coinbase_ticker_feed(stack, namespace):
    scripts = [
        [Send(coinbase_subscriptions(["BTC-USD"])), Send(coinbase_ticker(1, "65000.10", iso(1))),
         Send(coinbase_heartbeat(last_trade_id=1)), Send(coinbase_ticker(2, "65000.20", iso(2))),
         Send(coinbase_ticker(4, "65000.40", iso(4))),  # trade 3 never came: a gap
         Send("{malformed"), Send(coinbase_ticker(5, "NaN", iso(5))), Drop()],
        [Send(coinbase_subscriptions(["BTC-USD"])), Send(coinbase_ticker(6, "65000.60", iso(6))), Silence()],
        [Send(coinbase_subscriptions(["BTC-USD"])), Send(coinbase_ticker(6, "65000.60", iso(6))),  # replayed
         Send(coinbase_ticker(7, "65000.70", iso(7), best_bid="65000.6", best_ask="65000.8")),
         Send(coinbase_ticker(8, "65000.80", iso(8))), Close()],
    ]
    with FakeExchangeServer(scripts) as server:
        run = run_ingest(feed_settings(stack, namespace, "coinbase", server),
                         until=lambda run: run.published() >= 6 and server.connections >= 3, timeout_s=120)
    assert server.subscriptions[0] == {"type": "subscribe", "product_ids": ["BTC-USD"],
                                       "channels": ["ticker", "heartbeat"]}
    ticks = run.ticks()
    assert sorted(t.source_id for t in ticks) == [f"BTC-USD:{i}" for i in (1, 2, 4, 6, 7, 8)]  # each once
    seven = next(t for t in ticks if t.source_id == "BTC-USD:7")
    assert (seven.price, seven.bid, seven.ask, seven.source) == (65000.7, 65000.6, 65000.8, "coinbase")
    assert sorted(d.reason for d in run.dead_letters()) == ["malformed_json", "price_not_finite"]
    assert counted(run, "sequence_gaps_total", symbol="BTC-USD") == 1
    assert counted(run, "sequence_missing_total", symbol="BTC-USD") == 1
    assert counted(run, "records_duplicate_total") >= 1
    assert_connection_life(run, server)


def test_binance_trade_feed(stack, namespace):
    scripts = [
        [Send(binance_ack()), Send(binance_trade(100, "64000.5", T0)), Send(binance_trade(101, "64000.6", T0 + 5)),
         Send(binance_trade(105, "64001.0", T0 + 9)),  # 102..104 missing
         Send({**binance_trade(106, "1", T0 + 10), "p": True}), Send({"e": "kline", "s": "BTCUSDT"}), Drop()],
        [Send(binance_ack()), Silence()],
        [Send(binance_ack()), Send(binance_trade(107, "64002", T0 + 20)), Pause(0.05),
         Send(binance_trade(108, "64003", T0 + 21, qty="0.3"))],
    ]
    with FakeExchangeServer(scripts) as server:
        run = run_ingest(feed_settings(stack, namespace, "binance", server),
                         until=lambda run: run.published() >= 5 and server.connections >= 3, timeout_s=120)
    assert server.subscriptions[0] == {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}
    ticks = run.ticks()
    assert sorted(t.source_id for t in ticks) == [f"BTC-USDT:{i}" for i in (100, 101, 105, 107, 108)]
    assert {t.symbol for t in ticks} == {"BTC-USDT"}
    assert next(t for t in ticks if t.source_id == "BTC-USDT:108").volume == 0.3
    assert sorted(d.reason for d in run.dead_letters()) == ["message_unknown", "price_not_number"]
    assert counted(run, "sequence_gaps_total", symbol="BTC-USDT") == 1
    assert counted(run, "sequence_missing_total", symbol="BTC-USDT") == 3
    assert_connection_life(run, server)


def test_kraken_v2_trade_feed_with_heartbeats_and_snapshots(stack, namespace):
    scripts = [
        [Send(kraken_status()), Send(kraken_subscribed()), Send(KRAKEN_HEARTBEAT),
         Send(kraken_trades("snapshot", [kraken_trade(1, 65000.1, iso(1)), kraken_trade(2, 65000.2, iso(2))])),
         Send(KRAKEN_HEARTBEAT), Send(kraken_trades("update", [kraken_trade(3, 65000.3, iso(3))])),
         Send(kraken_trades("update", [kraken_trade(6, 65000.6, iso(6))])),  # 4, 5 missing
         Send(KRAKEN_HEARTBEAT), Drop()],
        [Send(kraken_status()), Send(kraken_subscribed()),
         Send(kraken_trades("snapshot", [kraken_trade(3, 65000.3, iso(3)), kraken_trade(6, 65000.6, iso(6))])),
         Send(KRAKEN_HEARTBEAT), Silence()],
        [Send(kraken_status()), Send(kraken_subscribed()),
         Send(kraken_trades("snapshot", [kraken_trade(6, 65000.6, iso(6))])),
         Send(kraken_trades("update", [kraken_trade(7, 65000.7, iso(7)),
                                       {**kraken_trade(8, 65000.8, iso(8)), "price": "65000.8"},
                                       kraken_trade(9, 65000.9, iso(9), qty=0.25)])),
         Send(KRAKEN_HEARTBEAT), Pause(0.2), Send(KRAKEN_HEARTBEAT), Pause(0.2), Send(KRAKEN_HEARTBEAT)],
    ]
    with FakeExchangeServer(scripts) as server:
        run = run_ingest(feed_settings(stack, namespace, "kraken", server),
                         until=lambda run: run.published() >= 6 and server.connections >= 3, timeout_s=120)
    assert server.subscriptions[0] == {"method": "subscribe",
                                       "params": {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": True}}
    ticks = run.ticks()
    assert sorted(t.source_id for t in ticks) == [f"BTC-USD:{i}" for i in (1, 2, 3, 6, 7, 9)]
    assert next(t for t in ticks if t.source_id == "BTC-USD:9").volume == 0.25
    assert [d.reason for d in run.dead_letters()] == ["price_not_number"]
    assert counted(run, "sequence_gaps_total", symbol="BTC-USD") == 1  # 3 → 6 only; the bad trade 8 was delivered
    assert counted(run, "sequence_missing_total", symbol="BTC-USD") == 2
    assert counted(run, "records_duplicate_total") == 3  # snapshots after reconnects
    assert_connection_life(run, server)
