"""The WebSocket loop every exchange feed shares: connect, subscribe, read, detect silence, reconnect.

An :class:`ExchangeAdapter` knows one venue (URL, subscribe messages, message shapes);
:class:`WebSocketFeed` knows the connection's life:
- no frame for ``idle_timeout`` seconds (exchanges send heartbeats or trades every
  second; silence means a dead path even if TCP looks alive) → close and reconnect;
- any connection error or close → reconnect after an exponential back-off with
  jitter, reset once a connection has delivered data again;
- the ``websockets`` library answers protocol pings and sends its own.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from processors.ingest.backoff import Backoff
from processors.ingest.sources.base import Outcome, Reconnecting, SourceProblem


class ExchangeAdapter(Protocol):
    """One venue's protocol; ``parse`` turns one frame into outcomes (pure apart from gap state)."""

    name: str
    symbols: tuple[str, ...]

    def url(self) -> str: ...

    def subscribe_messages(self) -> list[dict[str, object]]: ...

    def parse(self, frame: str | bytes, now: datetime) -> list[Outcome]: ...


@dataclass(frozen=True)
class FeedConfig:
    idle_timeout_s: float = 30.0
    open_timeout_s: float = 10.0
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    ping_interval_s: float | None = 20.0
    max_frame_bytes: int = 1 << 20


class WebSocketFeed:
    """A :class:`~processors.ingest.sources.base.Source` over an exchange adapter."""

    def __init__(
        self,
        adapter: ExchangeAdapter,
        config: FeedConfig,
        now: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.adapter = adapter
        self.name = adapter.name
        self.symbols: tuple[str, ...] | None = adapter.symbols
        self.config = config
        self.now = now
        self.sleep = sleep
        self.backoff = Backoff(config.retry_initial_s, config.retry_max_s, rng or random.Random())  # noqa: S311 - jitter, not security
        self.connections = 0

    async def stream(self) -> AsyncIterator[Outcome]:
        while True:
            problem: SourceProblem
            try:
                async with connect(
                    self.adapter.url(),
                    open_timeout=self.config.open_timeout_s,
                    ping_interval=self.config.ping_interval_s,
                    ping_timeout=self.config.ping_interval_s,
                    close_timeout=2,
                    max_size=self.config.max_frame_bytes,
                    user_agent_header="stockstream-ingest",
                ) as socket:
                    self.connections += 1
                    for message in self.adapter.subscribe_messages():
                        await socket.send(json.dumps(message))
                    async for outcome in self._read(socket):
                        yield outcome
                    problem = SourceProblem(
                        "heartbeat_timeout", f"no message for {self.config.idle_timeout_s:g}s; reconnecting")
            except ConnectionClosed as closed:
                problem = SourceProblem("connection_closed", f"connection closed: {closed}")
            except InvalidURI as error:
                problem = SourceProblem("connect_failed", f"invalid URL: {error}")
            except (OSError, TimeoutError, InvalidHandshake) as error:
                problem = SourceProblem("connect_failed", f"{type(error).__name__}: {error}")
            yield problem
            delay = self.backoff.next_delay()
            yield Reconnecting(delay, self.backoff.attempt)
            await self.sleep(delay)

    async def _read(self, socket: ClientConnection) -> AsyncIterator[Outcome]:
        """Frames until ``idle_timeout`` passes without one (the caller then reconnects)."""
        while True:
            try:
                frame = await asyncio.wait_for(socket.recv(), self.config.idle_timeout_s)
            except TimeoutError:
                return
            self.backoff.reset()
            for outcome in self.adapter.parse(frame, self.now()):
                yield outcome
