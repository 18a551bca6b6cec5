"""HTTP plumbing shared by the webhook, Slack, Discord and Telegram channels.

:class:`HttpClient` is a small HTTP/1.1 client for one channel on the lane's event loop:
h11 speaks the protocol, asyncio streams carry it, idle connections are kept alive per
origin and reused (webhook receivers are called hundreds of times a second), and every new
connection goes through the egress guard (:mod:`processors.notify.channels.egress`: one DNS
lookup, every address checked, a connection only to a checked address). It does exactly
what a channel needs and nothing a channel must not do: no redirects (a redirect is a
misconfiguration), no proxies, no cookies, ``https://`` only unless the channel allows
private networks (then ``http://`` too; otherwise ``insecure_url``).

Why not httpx: a lane delivers up to its channel's burst at once; httpx's synchronous client
needs a thread per delivery (~0.8 ms of CPU per request here, most of it the hand-offs and
httpx's request/response models) and its asynchronous one runs on anyio's connection pool
(more still). The same POST over h11 on one event loop costs ~0.16 ms (``bench/bench_notify.py``
measures the lane; docs/notify.md has the figures).

One place decides what an HTTP outcome means (:func:`check`): 2xx delivered; 429 (and 408)
retry, honouring ``Retry-After``; other 4xx (and 3xx) permanent; 5xx, timeouts and connection
errors retry. Error texts never include the URL (Slack/Discord URLs and Telegram paths are
secrets) and pass through :func:`processors.runtime.observability.redact`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

import h11

from processors.notify.channels.egress import Connect, GuardedConnector, Resolver
from processors.notify.retry import PermanentDeliveryError, TransientDeliveryError
from processors.runtime import package_version
from processors.runtime.observability import redact

USER_AGENT = f"stockstream-notify/{package_version()}"
_SNIPPET = 200
_MAX_BODY = 1 << 20  # a channel reads small JSON answers; more than this is kept only up to here
_READ = 65_536


@dataclass(frozen=True)
class HttpResponse:
    """One answer: status, headers (names in lower case), body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class _Target(NamedTuple):
    scheme: str
    host: str
    port: int
    host_header: str
    path: str  # path and query


@lru_cache(maxsize=64)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    shown = f"[{host}]" if ":" in host else host
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, host, port, shown if default_port else f"{shown}:{port}", path)


class _Connection:
    """One kept-alive connection: its streams, its h11 state machine and the loop it belongs to."""

    __slots__ = ("loop", "protocol", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(h11.CLIENT)
        self.loop = asyncio.get_running_loop()

    def reusable(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Idle and still open (a server that closed an idle connection has sent its EOF by now)."""
        return self.loop is loop and not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        if not self.loop.is_closed():
            self.writer.close()


class HttpClient:
    """POSTs for one channel, on one event loop at a time (the lane's); see the module docstring.

    ``timeout_s`` bounds the connection (lookup, TCP, TLS) and, separately, the exchange (request
    sent, answer read). ``resolve``/``connect``/``verify``: tests inject them.
    """

    def __init__(self, timeout_s: float, *, allow_private_network: bool = False, resolve: Resolver | None = None,
                 connect: Connect | None = None, verify: ssl.SSLContext | bool = True) -> None:
        self.timeout_s = timeout_s
        self.allow_private_network = allow_private_network
        self.connector = GuardedConnector(allow_private_network, resolve, connect)
        if isinstance(verify, ssl.SSLContext):
            self._tls = verify
        else:
            self._tls = ssl.create_default_context()
            if not verify:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str] | None = None,
                   params: Mapping[str, str] | None = None) -> HttpResponse:
        """POST ``content``; transport failures become :class:`TransientDeliveryError` (without the URL)."""
        target = _target(url)
        if target.scheme != "https" and not (target.scheme == "http" and self.allow_private_network):
            raise PermanentDeliveryError("insecure_url", f"refusing a {target.scheme}:// URL: channels send over "
                                                         "https:// (http:// only with allow_private_network)")
        path = target.path
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params)
        fields = [("Host", target.host_header), ("User-Agent", USER_AGENT), ("Content-Length", str(len(content))),
                  *(headers or {}).items()]
        try:
            connection = await self._acquire(target)
        except TimeoutError:
            raise TransientDeliveryError("timeout", "no connection in time (connect timeout)") from None
        except OSError as error:
            raise TransientDeliveryError("connection_error", _describe(error)) from None
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._exchange(connection, path, fields, content)
        except TimeoutError:
            connection.close()
            raise TransientDeliveryError("timeout", "no answer in time (read timeout)") from None
        except (OSError, EOFError, h11.ProtocolError) as error:
            connection.close()
            raise TransientDeliveryError("connection_error", _describe(error)) from None
        except BaseException:
            connection.close()  # cancelled (a stop) or a bug: the connection's state is unknown
            raise
        if connection.protocol.our_state is h11.DONE and connection.protocol.their_state is h11.DONE:
            connection.protocol.start_next_cycle()
            self._idle.setdefault((target.scheme, target.host, target.port), []).append(connection)
        else:
            connection.close()
        return response

    async def _acquire(self, target: _Target) -> _Connection:
        loop = asyncio.get_running_loop()
        idle = self._idle.get((target.scheme, target.host, target.port))
        while idle:
            connection = idle.pop()
            if connection.reusable(loop):
                return connection
            connection.close()
        async with asyncio.timeout(self.timeout_s):
            reader, writer = await self.connector.open(target.host, target.port,
                                                       self._tls if target.scheme == "https" else None)
        return _Connection(reader, writer)

    @staticmethod
    async def _exchange(connection: _Connection, path: str, fields: list[tuple[str, str]],
                        content: bytes) -> HttpResponse:
        protocol = connection.protocol
        connection.writer.write(protocol.send(h11.Request(method="POST", target=path, headers=fields))
                                + protocol.send(h11.Data(data=content)) + protocol.send(h11.EndOfMessage()))
        status, headers, body = 0, {}, bytearray()
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                data = await connection.reader.read(_READ)
                if not data and protocol.their_state is not h11.SEND_BODY:
                    raise EOFError("the server closed the connection without an answer")
                protocol.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers}
            elif isinstance(event, h11.Data):
                if len(body) < _MAX_BODY:
                    body += event.data[:_MAX_BODY - len(body)]
            elif isinstance(event, h11.EndOfMessage):
                return HttpResponse(status, headers, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("the server closed the connection mid-answer")
            # h11.InformationalResponse (1xx): keep reading for the final answer

    async def aclose(self) -> None:
        """Close the idle connections (called by the lane when it stops)."""
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


def _describe(error: BaseException) -> str:
    return redact(f"{type(error).__name__}: {error}")[:_SNIPPET]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; ``None`` if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def snippet(response: HttpResponse) -> str:
    return redact(response.text[:_SNIPPET].replace("\n", " "))


def check(response: HttpResponse, retry_after: float | None = None) -> None:
    """Raise the delivery error an HTTP response means; return quietly on 2xx.

    ``retry_after`` overrides the ``Retry-After`` header (Discord and Telegram send it in the body).
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"http_{status}"
    if status in (429, 408):
        wait = retry_after if retry_after is not None else parse_retry_after(response.headers.get("retry-after"))
        raise TransientDeliveryError(reason, f"HTTP {status} {snippet(response)}".strip(), retry_after=wait)
    if status >= 500:
        raise TransientDeliveryError(reason, f"HTTP {status} {snippet(response)}".strip())
    raise PermanentDeliveryError(reason, f"HTTP {status} {snippet(response)}".strip())


def json_body(response: HttpResponse) -> dict[str, Any] | None:
    """The response's JSON object, or ``None`` when it has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
