"""The API's one door: request size limits, rate limits, authentication, scopes and the access log.

A pure ASGI middleware in front of every route (views, ``/live``, ``/docs``, ``/openapi.json``,
``/health``, static files), so no route can forget it. In order, for each HTTP request:

1. request target longer than ``MAX_TARGET_BYTES`` → 414; a body longer than
   ``API_MAX_BODY_BYTES`` (declared or streamed) → 413;
2. per-IP token bucket (``API_RATE_PER_IP``) → 429 with ``Retry-After``;
3. credentials (``Authorization: Bearer ssk_…``, the identity provider's JWT when OIDC is on, or
   the dashboard's session cookie) →
   :class:`~stockstream.api.auth.Principal`; a path that needs a scope answers 401 without a valid
   credential and 403 when the key lacks the scope (``/admin/…`` needs ``admin``, every other
   path but the open ones needs ``read``); Redis or the identity provider unreachable → 503;
4. per-key token bucket (``API_RATE_PER_KEY``) → 429;
5. one access log line per request (logger ``stockstream.access``): client address, key id
   (never the key), method, path (no query string), status, duration.

The principal is put in ``scope["state"]["principal"]`` for the routes (``/live`` counts
connections per key). With authentication off (loopback only) every caller is ``OPEN_PRINCIPAL``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockstream.api.auth import OPEN_PRINCIPAL, SESSION_COOKIE, Authenticator, Principal
from stockstream.api.limits import RateLimiter, retry_after_header
from stockstream.api.oidc import OidcUnavailableError

access_log = logging.getLogger("stockstream.access")
log = logging.getLogger(__name__)

MAX_TARGET_BYTES = 8192
#: Paths anyone may request: the dashboard shell and its files, sign-in (keys, OIDC), readiness, robots.txt.
OPEN_PATHS = frozenset({"/", "/robots.txt", "/ready", "/session", "/session/oidc", "/session/oidc/callback"})
OPEN_PREFIXES = ("/static/",)

AUTH_REFUSED = Counter("stockstream_api_auth_refused_total",
                       "Requests refused by the API's gate, by reason (unauthenticated, forbidden)", ["reason"])
RATE_LIMITED = Counter("stockstream_api_rate_limited_total",
                       "Requests refused with 429, by kind of limit (ip, key)", ["kind"])
TOO_LARGE = Counter("stockstream_api_request_too_large_total",
                    "Requests refused for their size, by kind (target, body)", ["kind"])


def required_scope(path: str) -> str | None:
    """The scope a path needs; ``None`` for the open paths."""
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    return "admin" if path == "/admin" or path.startswith("/admin/") else "read"


@dataclass(frozen=True)
class GatePolicy:
    """What the gate enforces (built by ``create_app`` from :class:`~stockstream.api.settings.ApiSettings`)."""

    authenticator: Authenticator | None  # None: authentication off (loopback only)
    per_ip: RateLimiter
    per_key: RateLimiter
    max_body_bytes: int


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the limit."""

    def __init__(self) -> None:
        super().__init__("request body too large")


class Gate:
    def __init__(self, app: ASGIApp, policy: GatePolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        client = scope["client"][0] if scope.get("client") else "-"
        status = 0
        principal: Principal | None = None

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal, principal = await self._check(scope, client)
            if refusal is not None:
                await refusal(capture)
                return
            scope.setdefault("state", {})["principal"] = principal
            try:
                await self.app(scope, self._bounded(receive), capture)
            except BodyTooLarge:
                if status == 0:
                    await _reply(413, "request body too large")(capture)
        finally:
            access_log.info("access client=%s key=%s via=%s method=%s path=%s status=%s ms=%.1f", client,
                            principal.key_id if principal else "-", principal.via if principal else "-",
                            scope.get("method", ""), json.dumps(scope.get("path", "")[:200]), status or "-",
                            (time.perf_counter() - started) * 1000)

    async def _check(self, scope: Scope, client: str) -> tuple[Callable[[Send], object] | None, Principal | None]:
        """``(refusal, principal)``: a refusal to send instead of the app, or ``None`` to go on."""
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_TARGET_BYTES:
            TOO_LARGE.labels("target").inc()
            return _reply(414, "request target too long"), None
        declared = headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > self.policy.max_body_bytes:
            TOO_LARGE.labels("body").inc()
            return _reply(413, "request body too large"), None
        wait = self.policy.per_ip.take(client)
        if wait:
            RATE_LIMITED.labels("ip").inc()
            return _reply(429, "too many requests from this address", {"retry-after": retry_after_header(wait)}), None
        path = scope["path"]
        needed = required_scope(path)
        authenticator = self.policy.authenticator
        if authenticator is None:
            return None, OPEN_PRINCIPAL
        try:
            principal = await run_in_threadpool(_authenticate, authenticator, headers)
        except (redis.RedisError, OSError) as error:
            log.warning("key store (Redis) unavailable while authenticating: %s", type(error).__name__)
            if needed is None:
                return None, None
            return _reply(503, "the key store (Redis) is unavailable; retry shortly"), None
        except OidcUnavailableError as error:
            log.warning("%s", error)
            if needed is None:
                return None, None
            return _reply(503, "the identity provider is unavailable; retry shortly"), None
        if needed is not None:
            if principal is None:
                AUTH_REFUSED.labels("unauthenticated").inc()
                return _reply(401, "an API key is required (Authorization: Bearer ssk_…) or sign in",
                              {"www-authenticate": 'Bearer realm="stockstream"'}), None
            if not principal.allows(needed):
                AUTH_REFUSED.labels("forbidden").inc()
                return _reply(403, f"this key lacks the {needed!r} scope"), principal
        if principal is not None:
            wait = self.policy.per_key.take(principal.key_id)
            if wait:
                RATE_LIMITED.labels("key").inc()
                return _reply(429, "too many requests for this key",
                              {"retry-after": retry_after_header(wait)}), principal
        return None, principal

    def _bounded(self, receive: Receive) -> Receive:
        limit = self.policy.max_body_bytes
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    TOO_LARGE.labels("body").inc()
                    raise BodyTooLarge()
            return message

        return bounded


def _authenticate(authenticator: Authenticator, headers: dict[str, str]) -> Principal | None:
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return authenticator.from_bearer(token.strip())
    cookie = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
    return authenticator.from_session(cookie) if cookie else None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _reply(status: int, detail: str, extra: dict[str, str] | None = None) -> Callable[[Send], object]:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]
    headers.extend((name.encode(), value.encode()) for name, value in (extra or {}).items())

    async def respond(send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return respond
