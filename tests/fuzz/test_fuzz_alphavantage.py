"""Alpha Vantage answers, through the real source: ``AlphaVantageSource.stream`` polling a local HTTP server.

The local server (tests/support/fake_servers/alphavantage.py) answers each request with the fuzzed
status and body bytes; the source runs its real code path (httpx GET, error classification,
JSON decoding, wire models, conversion). Properties, for any answer: no exception; every poll
ends in an accepted tick, a dead letter or a source problem (never nothing); every outcome is
publishable; the API key appears in no outcome, even when the server echoes it.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import SecretStr

from processors.ingest.sources.alphavantage.source import AlphaVantageConfig, AlphaVantageSource
from processors.ingest.sources.base import Accepted, BudgetLeft, Outcome, Rejected, SourceProblem
from processors.ingest.validation import TimeBounds
from tests.fuzz.invariants import NOW, check_outcomes
from tests.fuzz.strategies import DEEP_JSON, TEXT, dumps, fuzz, json_values, mutated
from tests.support.fake_servers.alphavantage import (
    BURST_LIMIT,
    DAILY_LIMIT,
    ERROR_MESSAGE,
    NOTE,
    FakeAlphaVantage,
    daily_body,
    rate_body,
)

API_KEY = "AVKEY-FUZZ-DO-NOT-LEAK-8c1f"
SERVER = FakeAlphaVantage()
SERVER.start()  # one server for the module: answers are swapped per example (``after``)


class _Bytes:
    """A reply body the fake server sends byte for byte (it calls ``body.encode()``)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def encode(self) -> bytes:
        return self.raw


@dataclass(frozen=True)
class RawReply:
    status: int
    raw: bytes
    content_type: str = "application/json"

    @property
    def body(self) -> Any:
        return _Bytes(self.raw)


def with_key(value: object) -> object:
    """Echo the API key somewhere in a body, as error messages sometimes do."""
    if isinstance(value, dict):
        return {**value, "Error Message": f"the parameter apikey={API_KEY} is invalid"}
    return value


def _rate_bodies() -> st.SearchStrategy[object]:
    valid = rate_body("BTC", "USD", "65000.5", refreshed="2024-05-01 12:00:00", bid="65000.4", ask="65000.6")
    inner = valid["Realtime Currency Exchange Rate"]
    assert isinstance(inner, dict)
    return st.one_of(
        mutated(inner).map(lambda body: {"Realtime Currency Exchange Rate": body}),
        mutated({"Realtime Currency Exchange Rate": inner, "Meta": {}}, extra_keys=["Information", "Note"]),
        st.sampled_from([DAILY_LIMIT, BURST_LIMIT, NOTE, ERROR_MESSAGE]).flatmap(
            lambda error: mutated(error, extra_keys=["Information", "Note", "Error Message"])),
        json_values(),
    )


def _daily_bodies() -> st.SearchStrategy[object]:
    valid = daily_body({"2024-04-29": ("63000.1", "1200.5"), "2024-04-30": ("64000.2", "900.25")})
    old = daily_body({"2024-04-30": ("64000.2", "900.25")}, generation=1)
    series = valid["Time Series (Digital Currency Daily)"]
    assert isinstance(series, dict)
    day = series["2024-04-30"]
    return st.one_of(
        st.dictionaries(st.one_of(st.sampled_from(["2024-04-30", "2024-02-30", "0001-01-01", "9999-12-31"]), TEXT),
                        st.one_of(mutated(day), json_values(3)), max_size=4).map(
            lambda days: {"Time Series (Digital Currency Daily)": days}),
        mutated(valid, extra_keys=["Information", "Error Message"]),
        mutated(old),
        json_values(),
    )


def _replies(bodies: st.SearchStrategy[object]) -> st.SearchStrategy[RawReply]:
    json_body = st.one_of(bodies, bodies.map(with_key)).map(lambda value: dumps(value).encode())
    raw = st.one_of(json_body, json_body, json_body, DEEP_JSON.map(str.encode), st.binary(max_size=300),
                    json_body.map(lambda data: data[: len(data) // 2]))
    status = st.sampled_from([200, 200, 200, 200, 204, 301, 400, 401, 404, 429, 500, 502, 503])
    content_type = st.sampled_from(["application/json", "text/html", "application/octet-stream"])
    return st.builds(RawReply, status, raw, content_type)


def poll_once(reply: RawReply, *, history: bool) -> list[Outcome]:
    """Everything the source yields for one request (up to the budget report that follows it)."""
    SERVER.after = reply  # type: ignore[assignment]
    config = AlphaVantageConfig(base_url=SERVER.url, api_key=SecretStr(API_KEY), symbols=("BTC-USD",),
                                interval_s=0.0, daily_budget=1_000, history=history, timeout_s=10)

    async def no_sleep(_seconds: float) -> None:
        return None

    async def collect() -> list[Outcome]:
        source = AlphaVantageSource(config, TimeBounds(), now=lambda: NOW, sleep=no_sleep, rng=random.Random(0))
        stream = source.stream()
        outcomes: list[Outcome] = []
        budgets = 0
        try:
            async for outcome in stream:
                outcomes.append(outcome)
                budgets += isinstance(outcome, BudgetLeft)
                if budgets == 2:  # the first report comes before any request, the second after one
                    break
        finally:
            await stream.aclose()
        return outcomes

    return asyncio.run(collect())


def _series(reply: RawReply) -> dict[str, object] | None:
    """The days of a successful history answer as the source sees it (None: not such an answer)."""
    try:
        body = json.loads(reply.raw.decode("utf-8", "backslashreplace"))
    except (ValueError, RecursionError):
        return None
    if reply.status != 200 or not isinstance(body, dict) or {"Error Message", "Note", "Information"} & set(body):
        return None
    series = body.get("Time Series (Digital Currency Daily)")
    return series if isinstance(series, dict) else None


def check_poll(outcomes: list[Outcome], reply: RawReply, *, history: bool) -> None:
    check_outcomes("alphavantage", outcomes, ("BTC-USD",))
    for outcome in outcomes:
        assert API_KEY not in repr(outcome), outcome
    series = _series(reply) if history else None
    if series is not None:  # one tick or one dead letter per day (an empty series has nothing to publish)
        assert len([o for o in outcomes if isinstance(o, Accepted | Rejected)]) == len(series), outcomes
    else:
        answered = [o for o in outcomes if isinstance(o, Accepted | Rejected | SourceProblem)]
        assert answered, f"a response left no trace: {outcomes}"


@given(reply=_replies(_rate_bodies()))
@example(reply=RawReply(200, json.dumps(rate_body("BTC", "USD", "1", refreshed="0001-01-01 00:00:00",
                                                  time_zone="Asia/Tokyo")).encode()))
@example(reply=RawReply(200, json.dumps(rate_body("BTC", "USD", "1", time_zone="../../etc/passwd")).encode()))
@example(reply=RawReply(200, b'{"Realtime Currency Exchange Rate": {"1. From_Currency Code": "\\ud800"}}'))
@example(reply=RawReply(200, b"[" * 100_000))
@fuzz(350)
def test_exchange_rate_answers(reply: RawReply) -> None:
    check_poll(poll_once(reply, history=False), reply, history=False)


@given(reply=_replies(_daily_bodies()))
@fuzz(200)
def test_daily_history_answers(reply: RawReply) -> None:
    check_poll(poll_once(reply, history=True), reply, history=True)
