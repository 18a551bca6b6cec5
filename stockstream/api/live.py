"""Live push: relays Redis pub/sub to Server-Sent Events clients.

One subscription per API process (:class:`LiveHub`, started in the app's lifespan) listens on
``{prefix}live:updates`` (the materializer's compact updates after each batch:
``{"v":1,"updates":[{"type":"tick|indicators|candle|signal|recommendation|daily","data":{…}}]}``)
and ``{prefix}live:notifications`` (the notifier's browser notifications:
``{"signal_id","title","text","url","signal"}``), and fans each update out to the clients
that asked for its symbol (every venue's) or its instrument (``SYMBOL@venue``). Each client has a bounded queue: a client that does not keep up
loses its oldest updates (counted), never the server's memory; a client that stops reading
altogether is dropped by the send timeout of its response (``API_LIVE_SEND_TIMEOUT_SECONDS``),
which frees its slot. When Redis goes away the hub
reconnects with backoff and tells clients through a ``status`` event.

SSE events sent to a client: ``ready`` (first, with the symbols and instruments), ``status``
(``{"redis": true|false}``), ``tick``, ``indicators``, ``candle``, ``signal``,
``recommendation``, ``daily`` (data = the event JSON) and ``notification``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

UPDATE_TYPES = frozenset({"tick", "indicators", "candle", "signal", "recommendation", "daily"})
RELAYED = Counter("stockstream_api_live_events_total", "Live events queued for SSE clients, by type", ["type"])
DROPPED = Counter("stockstream_api_live_dropped_total", "Live events dropped because a client's queue was full")
MALFORMED = Counter("stockstream_api_live_malformed_total",
                    "Pub/sub messages that were not valid live updates or notifications (logged, not relayed)",
                    ["channel"])
CLIENTS = Gauge("stockstream_api_live_clients", "Connected live (SSE) clients")


@dataclass(eq=False)
class Subscriber:
    symbols: frozenset[str] | None  # None (with instruments None): everything
    queue: asyncio.Queue[tuple[str, str]]
    client: str = "-"  # the key id, or the address when authentication is off (per-client cap)
    dropped: int = 0
    instruments: frozenset[str] | None = None  # SYMBOL@venue: one venue's series only

    def wants(self, symbol: object, venue: object = None) -> bool:
        """Whether an update of ``symbol`` on ``venue`` is for this client (a symbol asked for: every venue)."""
        if self.symbols is None and self.instruments is None:
            return True
        return (self.symbols is not None and symbol in self.symbols) or (
            self.instruments is not None and f"{symbol}@{venue}" in self.instruments)

    def offer(self, event: str, data: str) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
            DROPPED.inc()
        self.queue.put_nowait((event, data))
        RELAYED.labels(event).inc()


@dataclass(eq=False)
class LiveHub:
    """The API process's one Redis subscription and its SSE subscribers."""

    client_factory: Callable[[], aioredis.Redis]
    updates_channel: str
    notifications_channel: str
    queue_max: int = 1000
    subscribers: set[Subscriber] = field(default_factory=set)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def subscribe(self, symbols: frozenset[str] | None, client: str = "-",
                  instruments: frozenset[str] | None = None) -> Subscriber:
        subscriber = Subscriber(symbols, asyncio.Queue(self.queue_max), client, instruments=instruments)
        self.subscribers.add(subscriber)
        CLIENTS.set(len(self.subscribers))
        return subscriber

    def connections_of(self, client: str) -> int:
        return sum(1 for subscriber in self.subscribers if subscriber.client == client)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        CLIENTS.set(len(self.subscribers))

    def _broadcast_status(self, up: bool) -> None:
        for subscriber in self.subscribers:
            subscriber.offer("status", json.dumps({"redis": up}))

    async def run(self) -> None:
        """Subscribe and relay until cancelled; reconnects with capped backoff when Redis fails."""
        backoff = 0.2
        while True:
            client = self.client_factory()
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.updates_channel, self.notifications_channel)
                self.connected.set()
                self._broadcast_status(True)
                backoff = 0.2
                log.info("live relay subscribed to %s and %s", self.updates_channel, self.notifications_channel)
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is not None and message.get("type") == "message":
                        self.dispatch(message["channel"], message["data"])
            except (redis.RedisError, OSError) as error:
                if self.connected.is_set():
                    log.warning("live relay lost Redis (%s); reconnecting", error)
                    self._broadcast_status(False)
                self.connected.clear()
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            # Backoff between reconnection attempts (not a test wait): Redis is down.
            await asyncio.sleep(backoff)
            backoff = min(5.0, backoff * 2)

    def dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        """Route one pub/sub message to the subscribers that want it."""
        name = channel.decode() if isinstance(channel, bytes) else channel
        if name == self.updates_channel:
            self._dispatch_updates(data)
        elif name == self.notifications_channel:
            self._dispatch_notification(data)

    def _dispatch_updates(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
            updates = message["updates"]
            if not isinstance(updates, list):
                raise TypeError("updates is not a list")
        except (ValueError, KeyError, TypeError) as error:
            MALFORMED.labels("updates").inc()
            log.warning("malformed live update message: %s", error)
            return
        for update in updates:
            kind = update.get("type") if isinstance(update, dict) else None
            body = update.get("data") if isinstance(update, dict) else None
            if kind not in UPDATE_TYPES or not isinstance(body, dict):
                MALFORMED.labels("updates").inc()
                continue
            symbol, venue = body.get("symbol"), body.get("venue")
            text: str | None = None
            for subscriber in self.subscribers:
                if subscriber.wants(symbol, venue):
                    text = text or json.dumps(body, separators=(",", ":"))
                    subscriber.offer(kind, text)

    def _dispatch_notification(self, data: bytes | str) -> None:
        try:
            body: Any = json.loads(data)
            if not isinstance(body, dict) or not isinstance(body.get("title"), str) \
                    or not isinstance(body.get("text"), str):
                raise ValueError("a notification needs string 'title' and 'text'")
        except ValueError as error:
            MALFORMED.labels("notifications").inc()
            log.warning("malformed notification message: %s", error)
            return
        signal = body.get("signal")
        symbol = signal.get("symbol") if isinstance(signal, dict) else None
        venue = signal.get("venue") if isinstance(signal, dict) else None
        text = json.dumps(body, separators=(",", ":"))
        for subscriber in self.subscribers:
            # A notification without a symbol goes to everyone.
            if symbol is None or subscriber.wants(symbol, venue):
                subscriber.offer("notification", text)
