"""``GET /runs``: the runs the views can be shown for (the dashboard's run selector, docs/runs.md).

The list is the compacted ``runs`` topic (:class:`processors.runtime.runs.RunLog`), the same one
``stockstream runs list`` prints, read at most once per ``RUNS_CACHE_SECONDS`` (5 s) whatever
the number of clients; each run says whether its views exist in Redis (``views``: its
``<prefix>run:<id>:instruments`` set), since only those can be shown with ``?run=ID``. ``live``
comes first, then the runs newest first. Kafka unreachable → 503 (the views endpoints do not
need Kafka and keep answering). The strategy's file path and text stay out (``stockstream runs
show`` has them): an API reader learns nothing of the server's files.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Literal

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from processors.materialize.keys import ViewKeys
from processors.runtime.runs import RunLog, RunLogError
from processors.runtime.settings import KafkaSettings
from schemas.runs import LIVE_RUN_ID, Run, run_redis_prefix
from stockstream.api.routes import Problem

KAFKA_TIMEOUT_S = 5.0


class RunSummary(BaseModel):
    """One entry of ``GET /runs``."""

    run_id: str
    kind: Literal["live", "replay", "backfill", "shadow"]
    state: str
    description: str
    strategy_version: str | None
    created: datetime | None
    expires_at: datetime | None
    views: bool


class RunList(BaseModel):
    runs: list[RunSummary]


class RunDirectory:
    """The runs topic, read again only when the last read is older than ``ttl_s`` (one read at a time)."""

    def __init__(self, settings: KafkaSettings, ttl_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = RunLog(settings)
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._runs: list[Run] | None = None
        self._read_at = -1e18

    def runs(self) -> list[Run]:
        """Every recorded run but ``live``, newest first. Raises :class:`RunLogError` when Kafka fails."""
        with self._lock:
            if self._runs is None or self.clock() - self._read_at > self.ttl_s:
                snapshot = self.log.read(timeout_s=KAFKA_TIMEOUT_S)
                records = sorted(snapshot.runs.values(), key=lambda record: record.run.ts_init, reverse=True)
                self._runs = [record.run for record in records if record.run.run_id != LIVE_RUN_ID]
                self._read_at = self.clock()
            return self._runs


def build_runs_router(directory: RunDirectory, live_prefix: str) -> APIRouter:
    """The ``/runs`` route; ``live_prefix`` is ``REDIS_KEY_PREFIX`` (a run's views are under ``<it>run:<id>:``)."""
    router = APIRouter()

    @router.get("/runs", response_model=RunList, tags=["runs"],
                responses={503: {"model": Problem, "description": "Kafka (the runs topic) or Redis is unreachable"}})
    def runs(request: Request) -> RunList | JSONResponse:
        """The live views and every run, with whether its views exist (``?run=ID`` on the view endpoints)."""
        try:
            found = directory.runs()
        except RunLogError:
            return JSONResponse({"detail": "the run list (Kafka topic runs) is unavailable; retry shortly"},
                                status_code=503)
        client: redis.Redis = request.app.state.redis
        pipe = client.pipeline(transaction=False)
        for run in found:
            pipe.exists(ViewKeys(run_redis_prefix(live_prefix, run.run_id)).instruments)
        has_views = pipe.execute() if found else []
        live = RunSummary(run_id=LIVE_RUN_ID, kind="live", state="serving", description="the live views",
                          strategy_version=None, created=None, expires_at=None, views=True)
        return RunList(runs=[live, *(
            RunSummary(run_id=run.run_id, kind=run.kind, state=run.state, description=run.description,
                       strategy_version=run.strategy.version, created=run.ts_init,
                       expires_at=run.expires_at, views=bool(views))
            for run, views in zip(found, has_views, strict=True))])

    return router
