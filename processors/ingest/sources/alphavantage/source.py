"""Polling Alpha Vantage's ``CURRENCY_EXCHANGE_RATE`` within the daily budget.

Requests go out round-robin over the configured pairs, no more often than
``MESSAGE_INTERVAL`` and no faster than the budget allows (:class:`DailyBudget`).
Error bodies (HTTP 200) are classified (:mod:`.errors`): the daily limit waits for the
next UTC day; burst limits, notes, HTTP 5xx and network errors back off exponentially
with jitter; an invalid key, a premium endpoint or another notice waits the maximum
back-off. The API key is sent as the ``apikey`` query parameter and nowhere else: it
is scrubbed from every message this module produces.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr

from processors.ingest import reasons
from processors.ingest.backoff import Backoff
from processors.ingest.sources.alphavantage.budget import DailyBudget, next_utc_midnight
from processors.ingest.sources.alphavantage.budget_file import BudgetFile, SavedBudget
from processors.ingest.sources.alphavantage.errors import RETRY, ApiErrorKind, classify_body
from processors.ingest.sources.alphavantage.wire import SOURCE, parse_daily_history, parse_rate_body
from processors.ingest.sources.base import (
    Accepted,
    BudgetLeft,
    Outcome,
    Rejected,
    SourceProblem,
    raw_text,
)
from processors.ingest.validation import TimeBounds


@dataclass(frozen=True)
class AlphaVantageConfig:
    base_url: str
    api_key: SecretStr
    symbols: tuple[str, ...]
    interval_s: float = 1.0
    daily_budget: int = 25
    history: bool = False
    timeout_s: float = 10.0
    retry_initial_s: float = 1.0
    retry_max_s: float = 300.0
    budget_file: Path | None = None  # where the budget survives restarts (None: memory only, tests)


@dataclass(frozen=True)
class ApiAnswer:
    """One request's result: a usable body, or what went wrong (and a rejection to dead-letter)."""

    body: dict[str, object] | None
    problems: tuple[Outcome, ...] = ()
    retry: str | None = None  # "midnight" | "backoff" | "long"


class AlphaVantageClient:
    """The HTTP side: one GET per call, answers classified, the key never echoed."""

    def __init__(self, http: httpx.AsyncClient, api_key: SecretStr) -> None:
        self.http = http
        self._key = api_key

    def scrub(self, text: str) -> str:
        key = self._key.get_secret_value()
        return text.replace(key, "***") if key else text

    async def query(self, params: dict[str, str]) -> ApiAnswer:
        label = f"{params.get('function')} {params.get('from_currency') or params.get('symbol', '')}".strip()
        try:
            response = await self.http.get("/query", params={**params, "apikey": self._key.get_secret_value()})
        except httpx.HTTPError as error:
            # httpx messages can carry the request URL, hence the key: keep the type and scrubbed text only.
            detail = self.scrub(f"{label}: {type(error).__name__}: {error}")
            return ApiAnswer(None, (SourceProblem("network_error", detail),), "backoff")
        if response.status_code != 200:
            kind = "http_5xx" if response.status_code >= 500 else (
                "http_429" if response.status_code == 429 else "http_4xx")
            detail = self.scrub(f"{label}: HTTP {response.status_code}")
            return ApiAnswer(None, (SourceProblem(kind, detail),), "backoff" if kind != "http_4xx" else "long")
        text = self.scrub(response.content.decode("utf-8", errors="backslashreplace"))
        try:
            body = json.loads(text)
        except (ValueError, RecursionError) as error:  # ValueError: also a number of more than 4,300 digits
            return ApiAnswer(None, (
                Rejected(reasons.MALFORMED_JSON, f"{label}: {error}", raw_text(text)),
                SourceProblem("malformed_body", f"{label}: body is not JSON"),
            ), "backoff")
        if not isinstance(body, dict):
            return ApiAnswer(None, (
                Rejected(reasons.NOT_AN_OBJECT, f"{label}: body is a JSON {type(body).__name__}", raw_text(text)),
                SourceProblem("malformed_body", f"{label}: body is not an object"),
            ), "backoff")
        api_error = classify_body(body)
        if api_error is not None:
            problem = SourceProblem(api_error.kind.value, self.scrub(f"{label}: {api_error.message}"))
            return ApiAnswer(None, (problem,), RETRY[api_error.kind])
        return ApiAnswer(body)


async def fetch_daily_history(
    client: AlphaVantageClient, symbol: str, *, now: datetime, bounds: TimeBounds
) -> list[Outcome]:
    """``DIGITAL_CURRENCY_DAILY`` for ``symbol`` (``BTC-USD``): daily closes as ticks, oldest first.

    For backfill seeding; one API request. Errors come back as outcomes (problems/rejections).
    """
    base, market = symbol.split("-")
    answer = await client.query({"function": "DIGITAL_CURRENCY_DAILY", "symbol": base, "market": market})
    if answer.body is None:
        return list(answer.problems)
    return parse_daily_history(answer.body, symbol=symbol, now=now, bounds=bounds)


class AlphaVantageSource:
    """Budget-aware poller; yields ticks, rejections, problems and the budget left."""

    name = SOURCE

    def __init__(
        self,
        config: AlphaVantageConfig,
        bounds: TimeBounds,
        now: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.symbols: tuple[str, ...] | None = config.symbols
        self.bounds = bounds
        self.now = now
        self.sleep = sleep
        self.budget = DailyBudget(config.daily_budget)
        self.budget_file = BudgetFile(config.budget_file) if config.budget_file else None
        self.last_request: datetime | None = None
        if self.budget_file is not None:
            saved = self.budget_file.load(config.daily_budget, now())
            if saved is not None:
                self.budget = DailyBudget(config.daily_budget, saved.day, saved.used)
                self.last_request = saved.last_request
        self.backoff = Backoff(config.retry_initial_s, config.retry_max_s, rng or random.Random())  # noqa: S311 - jitter, not security
        self.transport = transport

    async def stream(self) -> AsyncIterator[Outcome]:
        config = self.config
        async with httpx.AsyncClient(
            base_url=config.base_url, timeout=config.timeout_s, transport=self.transport,
            headers={"User-Agent": "stockstream-ingest"},
        ) as http:
            client = AlphaVantageClient(http, config.api_key)
            yield BudgetLeft(self.budget.remaining(self.now()))
            last_request = self.last_request  # restored after a restart: the spacing holds across crashes
            not_before = self.now()
            if config.history:
                for symbol in config.symbols:
                    await self._wait_until(max(not_before, self.budget.next_request_at(last_request, self.now())))
                    last_request = self._spend()
                    for outcome in await fetch_daily_history(client, symbol, now=self.now(), bounds=self.bounds):
                        yield outcome
                    yield BudgetLeft(self.budget.remaining(self.now()))
            for symbol in itertools.cycle(config.symbols):
                due = max(not_before, self.budget.next_request_at(last_request, self.now()))
                if last_request is not None:
                    due = max(due, last_request + timedelta(seconds=config.interval_s))
                await self._wait_until(due)
                last_request = self._spend()
                answer = await client.query(
                    {"function": "CURRENCY_EXCHANGE_RATE", "from_currency": symbol.split("-")[0],
                     "to_currency": symbol.split("-")[1]})
                for outcome in answer.problems:
                    yield outcome
                if answer.body is not None:
                    outcome = parse_rate_body(answer.body, symbol=symbol, now=self.now(), bounds=self.bounds)
                    if isinstance(outcome, Accepted):
                        self.backoff.reset()
                    yield outcome
                not_before = self._retry_after(answer.retry, last_request)
                yield BudgetLeft(self.budget.remaining(self.now()))

    def _spend(self) -> datetime:
        """Count a request before it goes out (and persist the count: a crash loop cannot overspend)."""
        at = self.now()
        self.budget.record(at)
        self.last_request = at
        self._save()
        return at

    def _save(self) -> None:
        if self.budget_file is not None and self.budget.day is not None:
            self.budget_file.save(SavedBudget(self.budget.day, self.budget.used, self.last_request))

    def _retry_after(self, retry: str | None, requested_at: datetime) -> datetime:
        if retry is None:
            return requested_at
        if retry == "midnight":
            self.budget.exhaust(requested_at)
            self._save()
            return next_utc_midnight(requested_at)
        if retry == "long":
            self.backoff.attempt = max(self.backoff.attempt, 62)
        return requested_at + timedelta(seconds=self.backoff.next_delay())

    async def _wait_until(self, due: datetime) -> None:
        delay = (due - self.now()).total_seconds()
        if delay > 0:
            await self.sleep(delay)


__all__ = ["AlphaVantageClient", "AlphaVantageConfig", "AlphaVantageSource", "ApiErrorKind", "fetch_daily_history"]
