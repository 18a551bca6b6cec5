"""A real local HTTP server standing in for webhooks, Slack, Discord and Telegram in tests.

Each path answers from a script: a queue of :class:`Reply` values used in order, then
the path's default (``200`` unless set). A reply can be slow (``delay_s``), hang until
the test releases it and then drop the connection unanswered (``hold``), or drop at
once (``drop``). Every request is recorded with its headers, body and whether it was
answered, so tests can assert exact counts and contents. Connections are kept alive
(HTTP/1.1), as real webhook endpoints do, so a client's connection pool is exercised.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hold: bool = False
    drop: bool = False

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return self.body, "application/octet-stream"


def ok(body: bytes | str | dict[str, Any] = b"ok") -> Reply:
    return Reply(200, body)


def status(code: int, body: bytes | str | dict[str, Any] = b"", **headers: str) -> Reply:
    return Reply(code, body, {key.replace("_", "-"): value for key, value in headers.items()})


def too_many(retry_after_s: float | None = None, body: bytes | str | dict[str, Any] = b"rate limited") -> Reply:
    headers = {"Retry-After": f"{retry_after_s:g}"} if retry_after_s is not None else {}
    return Reply(429, body, headers)


def slow(delay_s: float, then: Reply | None = None) -> Reply:
    base = then or ok()
    return Reply(base.status, base.body, base.headers, delay_s=delay_s)


HOLD = Reply(hold=True)
DROP = Reply(drop=True)


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    received_wall: datetime
    answered_status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """``with HttpReceiver() as receiver:`` serves on 127.0.0.1 at ``receiver.url(path)``.

    With ``tls`` (a server-side ``ssl.SSLContext``) it speaks HTTPS and ``url`` is ``https://``.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._defaults: dict[str, Reply] = {}
        self._requests: list[ReceivedRequest] = []
        self._release = threading.Event()
        self._closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: every answer carries its Content-Length
            # Headers and body go out in two writes: with Nagle on, the second waits for the client's delayed
            # ACK of the first (~40 ms a request on a kept-alive connection).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                receiver._handle(self)

            do_PUT = do_POST  # noqa: N815
            do_GET = do_POST  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="http-receiver", daemon=True)

    # ---- lifecycle
    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._closing.set()
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}{path}"

    # ---- scripting
    def script(self, path: str, replies: Iterable[Reply]) -> None:
        """Answer the next requests to ``path`` with ``replies``, in order."""
        with self._lock:
            self._scripts[path].extend(replies)

    def default(self, path: str, reply: Reply) -> None:
        """Answer ``path`` with ``reply`` once its script is used up."""
        with self._lock:
            self._defaults[path] = reply

    def release(self) -> None:
        """Let held requests go: their connections are dropped without an answer."""
        self._release.set()

    # ---- inspection
    def requests(self, path: str | None = None) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def answered(self, path: str | None = None, status_code: int = 200) -> list[ReceivedRequest]:
        return [r for r in self.requests(path) if r.answered_status == status_code]

    def wait_for(self, count: int, path: str | None = None, *, timeout_s: float = 120.0,
                 status_code: int | None = None) -> list[ReceivedRequest]:
        """Poll until ``count`` requests (answered with ``status_code``, if given) arrived; fail after the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.requests(path) if status_code is None else self.answered(path, status_code)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} request(s) on {path or 'any path'}, got {len(found)}")
            time.sleep(0.05)

    # ---- serving
    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            script = self._scripts.get(path)
            if script:
                return script.popleft()
            return self._defaults.get(path, ok())

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        record = ReceivedRequest(handler.command, parts.path, parts.query,
                                 {k.lower(): v for k, v in handler.headers.items()}, body, time.monotonic(),
                                 datetime.now(UTC))
        with self._lock:
            self._requests.append(record)
        reply = self._next_reply(parts.path)
        if reply.hold:
            self._release.wait(120)
            handler.close_connection = True
            return
        if reply.drop:
            handler.close_connection = True
            return
        if reply.delay_s and self._closing.wait(reply.delay_s):
            handler.close_connection = True
            return
        payload, content_type = reply.encoded()
        # Recorded before writing, so a client that has the answer always finds it recorded.
        with self._lock:
            record.answered_status = reply.status
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.headers.get("Content-Type", content_type))
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                if name.lower() not in ("content-type", "content-length"):
                    handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
            handler.wfile.flush()
        except OSError:
            with self._lock:
                record.answered_status = None
