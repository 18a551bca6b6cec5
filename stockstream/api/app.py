"""The FastAPI application of ``stockstream serve``: views API, live SSE relay, dashboard, /health, /ready.

:func:`create_app` is the only constructor; it takes settings and an injected clock so
tests build the app against the real Redis with a fixed time. The app never writes to Redis.
Every request passes :mod:`stockstream.api.gate` (limits, keys, scopes, access log); the
Prometheus ``/metrics`` is on the metrics port (``METRICS_PORT``), like every other service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import redis
import redis.asyncio as aioredis
from confluent_kafka import KafkaException
from fastapi import FastAPI, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, StringConstraints
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

import stockstream
from processors.materialize.keys import ViewKeys
from processors.materialize.reader import ViewReader
from processors.materialize.settings import redis_client
from processors.runtime.kafka_admin import admin_client
from schemas.instruments import VENUE_PATTERN
from schemas.symbols import NORMALIZED_SYMBOL_PATTERN
from stockstream.api.auth import Authenticator, Principal, SessionCodec
from stockstream.api.gate import Gate, GatePolicy
from stockstream.api.keys import KeyStore
from stockstream.api.limits import RateLimiter
from stockstream.api.live import LiveHub
from stockstream.api.middleware import RequestMetrics, SecurityHeaders
from stockstream.api.oidc import OidcProvider
from stockstream.api.routes import AmbiguousSymbolError, ambiguous_symbol, build_router
from stockstream.api.runs import RunDirectory, build_runs_router
from stockstream.api.session import build_session_router
from stockstream.api.settings import ApiSettings, is_loopback
from stockstream.history.pages import Pager
from stockstream.history.parquet import HistoryStore

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "dashboard" / "static"
DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stockstream API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script></body></html>
"""


class Ready(BaseModel):
    status: Literal["ready", "unready"]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    kafka: bool
    redis: bool
    live_relay: bool


SymbolItem = Annotated[str, StringConstraints(pattern=NORMALIZED_SYMBOL_PATTERN, max_length=32)]
InstrumentItem = Annotated[str, StringConstraints(
    pattern=NORMALIZED_SYMBOL_PATTERN.removesuffix("$") + "@" + VENUE_PATTERN.removeprefix("^"), max_length=65)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class KafkaProbe:
    """Kafka reachability for /health, cached for a second so health checks cannot flood the broker."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.admin = admin_client(settings)
        self.checked_at = -1e9
        self.up = False

    def reachable(self) -> bool:
        if time.monotonic() - self.checked_at > 1.0:
            try:
                self.up = bool(self.admin.list_topics(timeout=self.settings.health_timeout_s).brokers)
            except KafkaException:
                self.up = False
            self.checked_at = time.monotonic()
        return self.up


def create_app(settings: ApiSettings, *, now: Callable[[], datetime] = utc_now) -> FastAPI:
    """The app for ``settings``. Raises ``ValueError`` if it would serve without keys beyond loopback."""
    if not settings.auth_enabled and not is_loopback(settings.api_host):
        raise ValueError(f"refusing to serve without API keys on {settings.api_host!r} (not loopback)")
    keys = ViewKeys(settings.redis_key_prefix)

    def async_client() -> aioredis.Redis:
        url, kwargs = settings.redis_connection()
        return aioredis.Redis.from_url(url, socket_connect_timeout=settings.redis_socket_timeout_s,
                                       health_check_interval=30, **kwargs)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = LiveHub(async_client, keys.live_updates, keys.live_notifications, settings.live_queue_max)
        app.state.hub = hub
        task = asyncio.create_task(hub.run(), name="live-relay")
        with contextlib.suppress(TimeoutError):
            # Serve at once even if Redis is down; the relay keeps reconnecting in the background.
            await asyncio.wait_for(hub.connected.wait(), timeout=settings.redis_socket_timeout_s)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            app.state.redis.close()

    app = FastAPI(
        title="stockstream", version=stockstream.__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Materialized views of the stockstream log: latest prices and indicators, recommendations, "
                    "candles, signals and daily summaries. Read-only. Live updates: `GET /live` (Server-Sent "
                    "Events, see docs/views.md).",
    )
    app.state.redis = redis_client(settings, settings.redis_socket_timeout_s)
    app.state.reader = ViewReader(app.state.redis, keys, now)
    app.state.pager = Pager(app.state.reader, HistoryStore(settings.history_path, settings.topics().ticks.name))
    app.state.kafka = KafkaProbe(settings)
    store = KeyStore(app.state.redis, settings.api_keys_prefix)
    lifetime_s = settings.session_hours * 3600
    oidc = settings.oidc()
    authenticator = Authenticator(store, SessionCodec(
        settings.session_secret.get_secret_value().encode() if settings.session_secret else b"", lifetime_s),
        oidc=OidcProvider(oidc) if oidc is not None else None) if settings.auth_enabled else None
    app.include_router(build_router(settings.timeframes, settings.instrument_stale_s,
                                    settings.recommendation_strategy))
    app.include_router(build_runs_router(RunDirectory(settings), settings.redis_key_prefix))
    app.add_exception_handler(AmbiguousSymbolError, ambiguous_symbol)
    app.include_router(build_session_router(authenticator, store, lifetime_s))
    policy = GatePolicy(authenticator, RateLimiter(settings.rate_per_ip, settings.rate_burst),
                        RateLimiter(settings.rate_per_key, settings.rate_burst), settings.max_body_bytes)
    app.add_middleware(Gate, policy=policy)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics)
    app.openapi = lambda: _openapi(app, settings.auth_enabled)  # type: ignore[method-assign]

    @app.exception_handler(redis.RedisError)
    async def redis_unavailable(_request: Request, error: redis.RedisError) -> JSONResponse:
        log.warning("Redis error while serving a request: %s", type(error).__name__)
        return JSONResponse({"detail": "the views store (Redis) is unavailable; retry shortly"}, status_code=503)

    @app.get("/health", response_model=Health, tags=["operations"],
             responses={503: {"model": Health, "description": "Kafka or Redis is unreachable"}})
    async def health(request: Request) -> JSONResponse:
        def redis_up() -> bool:
            try:
                return bool(request.app.state.redis.ping())
            except (redis.RedisError, OSError):
                return False

        redis_ok = await run_in_threadpool(redis_up)
        kafka_ok = await run_in_threadpool(request.app.state.kafka.reachable)
        body = Health(status="ok" if redis_ok and kafka_ok else "degraded", kafka=kafka_ok, redis=redis_ok,
                      live_relay=request.app.state.hub.connected.is_set())
        return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)

    @app.get("/ready", response_model=Ready, tags=["operations"],
             responses={503: {"model": Ready, "description": "Redis is unreachable"}})
    async def ready(request: Request) -> JSONResponse:
        """Readiness for a load balancer: Redis only (a Kafka outage must not take the read API down)."""
        def redis_up() -> bool:
            try:
                return bool(request.app.state.redis.ping())
            except (redis.RedisError, OSError):
                return False

        up = await run_in_threadpool(redis_up)
        return JSONResponse(Ready(status="ready" if up else "unready").model_dump(), status_code=200 if up else 503)

    @app.get("/live", include_in_schema=False)
    async def live(
        request: Request,
        symbol: Annotated[list[SymbolItem] | None, Query(max_length=50)] = None,
        instrument: Annotated[list[InstrumentItem] | None, Query(max_length=50)] = None,
    ) -> Response:
        hub: LiveHub = request.app.state.hub
        principal: Principal | None = request.scope.get("state", {}).get("principal")
        client = principal.key_id if principal is not None and principal.via != "open" else (
            request.client.host if request.client else "-")
        if len(hub.subscribers) >= settings.live_max_clients:
            return JSONResponse({"detail": "too many live clients"}, status_code=503)
        if hub.connections_of(client) >= settings.live_max_per_client:
            return JSONResponse({"detail": f"at most {settings.live_max_per_client} live connections per client"},
                                status_code=429)
        wanted = frozenset(symbol) if symbol else None
        instruments = frozenset(instrument) if instrument else None
        subscriber = hub.subscribe(wanted, client, instruments)

        async def events() -> AsyncIterator[ServerSentEvent]:
            try:
                yield ServerSentEvent(event="ready", data=json.dumps(
                    {"symbols": sorted(wanted) if wanted else None,
                     "instruments": sorted(instruments) if instruments else None, "redis": hub.connected.is_set()}))
                while True:
                    event, data = await subscriber.queue.get()
                    yield ServerSentEvent(event=event, data=data)
            finally:
                hub.unsubscribe(subscriber)

        # A client that stops reading blocks the send; after the send timeout the response ends, the
        # generator's finally unsubscribes it, and its slot is free again.
        return EventSourceResponse(events(), ping=int(settings.live_ping_s), send_timeout=settings.live_send_timeout_s,
                                   headers={"Cache-Control": "no-store"})

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_HTML)

    @app.get("/robots.txt", include_in_schema=False)
    def robots() -> PlainTextResponse:
        return PlainTextResponse("User-agent: *\nDisallow: /\n")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _openapi(app: FastAPI, auth: bool) -> dict[str, object]:
    """The schema, with the bearer scheme and the gate's answers (401/403/429/413/414) when keys are on."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    problem = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    gate_answers = {"413": "Request body too large", "414": "Request target too long",
                    "429": "Rate limited (per address or per key); see Retry-After"}
    if auth:
        gate_answers |= {"401": "No valid API key or session", "403": "The key lacks the scope this route needs",
                         "503": "Redis (views or keys) is unreachable"}
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {
            "type": "http", "scheme": "bearer", "description": "An API key from `stockstream apikey create`"}
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            if auth and path != "/ready":
                operation["security"] = [{"apiKey": []}]
            for code, text in gate_answers.items():
                if path == "/ready" and code in ("401", "403"):
                    continue
                operation["responses"].setdefault(code, {"description": text, **problem})
    schema.setdefault("components", {}).setdefault("schemas", {}).setdefault("Problem", {
        "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"], "title": "Problem"})
    app.openapi_schema = schema
    return schema
