"""A local WebSocket server that replays exchange messages (Coinbase, Binance, Kraken v2 shapes).

Each accepted connection plays one script: the n-th connection gets ``scripts[n]``,
later ones get ``after`` (default: silence). A script first waits for the client's
subscribe message (recorded in ``subscriptions``), then runs its steps:

- :class:`Send` one frame (a dict is JSON-encoded; a str is sent as is, malformed or not);
- :class:`Pause` for a while;
- :class:`Drop` the TCP connection without a close handshake;
- :class:`Close` cleanly with a code;
- :class:`Silence` — send nothing more (protocol pings are still answered) until the client leaves.

A script that runs out of steps goes silent. Usage::

    with FakeExchangeServer([[Send(ticker(...)), Drop()], [Silence()], [Send(...)]]) as server:
        ... COINBASE_WS_URL=server.url ...
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from types import TracebackType

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


@dataclass(frozen=True)
class Send:
    message: dict[str, object] | list[object] | str


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Drop:
    pass


@dataclass(frozen=True)
class Close:
    code: int = 1001
    reason: str = "going away"


@dataclass(frozen=True)
class Silence:
    pass


Step = Send | Pause | Drop | Close | Silence


@dataclass
class FakeExchangeServer:
    scripts: list[list[Step]]
    after: list[Step] = field(default_factory=lambda: [Silence()])
    subscriptions: list[object] = field(default_factory=list)
    connections: int = 0
    finished_scripts: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-exchange-ws", daemon=True)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await serve(self._handle, "127.0.0.1", 0, ping_interval=None)
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    async def _handle(self, connection: ServerConnection) -> None:
        with self._lock:
            index = self.connections
            self.connections += 1
        steps = self.scripts[index] if index < len(self.scripts) else self.after
        try:
            try:
                first = await asyncio.wait_for(connection.recv(), 5)
                with self._lock:
                    self.subscriptions.append(json.loads(first))
            except TimeoutError:
                pass
            for step in steps:
                if isinstance(step, Send):
                    payload = step.message if isinstance(step.message, str) else json.dumps(step.message)
                    await connection.send(payload)
                elif isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Drop):
                    connection.transport.abort()
                    return
                elif isinstance(step, Close):
                    await connection.close(step.code, step.reason)
                    return
                elif isinstance(step, Silence):
                    break
            with self._lock:
                self.finished_scripts += 1
            await connection.wait_closed()
        except ConnectionClosed:
            return

    def start(self) -> FakeExchangeServer:
        self._thread.start()
        if not self._ready.wait(120):
            raise RuntimeError("fake exchange server did not start")
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FakeExchangeServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


# --- message builders in each venue's documented shape -------------------------------------------


def coinbase_ticker(trade_id: int, price: str, time: str, product_id: str = "BTC-USD", sequence: int | None = None,
                    last_size: str = "0.01", best_bid: str | None = None, best_ask: str | None = None) -> dict[str, object]:
    bid = best_bid or price
    ask = best_ask or price
    return {
        "type": "ticker", "sequence": sequence if sequence is not None else 1_000_000 + trade_id * 7,
        "product_id": product_id, "price": price, "open_24h": price, "volume_24h": "1000.0", "low_24h": price,
        "high_24h": price, "volume_30d": "30000.0", "best_bid": bid, "best_bid_size": "0.5", "best_ask": ask,
        "best_ask_size": "0.7", "side": "buy", "time": time, "trade_id": trade_id, "last_size": last_size,
    }


def coinbase_subscriptions(product_ids: list[str]) -> dict[str, object]:
    return {"type": "subscriptions", "channels": [{"name": "ticker", "product_ids": product_ids},
                                                  {"name": "heartbeat", "product_ids": product_ids}]}


def coinbase_heartbeat(product_id: str = "BTC-USD", last_trade_id: int = 0,
                       time: str = "2024-05-01T12:00:00.000000Z") -> dict[str, object]:
    return {"type": "heartbeat", "sequence": 1, "last_trade_id": last_trade_id, "product_id": product_id,
            "time": time}


def binance_trade(trade_id: int, price: str, time_ms: int, symbol: str = "BTCUSDT", qty: str = "0.01") -> dict[str, object]:
    return {"e": "trade", "E": time_ms + 3, "s": symbol, "t": trade_id, "p": price, "q": qty, "T": time_ms,
            "m": True, "M": True}


def binance_ack(request_id: int = 1) -> dict[str, object]:
    return {"result": None, "id": request_id}


def kraken_trades(kind: str, trades: list[dict[str, object]]) -> dict[str, object]:
    return {"channel": "trade", "type": kind, "data": trades}


def kraken_trade(trade_id: int, price: float, timestamp: str, symbol: str = "BTC/USD", qty: float = 0.01) -> dict[str, object]:
    return {"symbol": symbol, "side": "buy", "price": price, "qty": qty, "ord_type": "market",
            "trade_id": trade_id, "timestamp": timestamp}


def kraken_subscribed(symbol: str = "BTC/USD") -> dict[str, object]:
    return {"method": "subscribe", "result": {"channel": "trade", "snapshot": True, "symbol": symbol},
            "success": True, "time_in": "2024-05-01T12:00:00.000000Z", "time_out": "2024-05-01T12:00:00.000100Z"}


def kraken_status() -> dict[str, object]:
    return {"channel": "status", "type": "update", "data": [{"version": "2.0.0", "system": "online",
                                                             "api_version": "v2", "connection_id": 1}]}


KRAKEN_HEARTBEAT: dict[str, object] = {"channel": "heartbeat"}
