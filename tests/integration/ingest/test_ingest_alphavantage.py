"""Alpha Vantage against a local server speaking its HTTP protocol: quotes, every error body, budget, key secrecy."""

from __future__ import annotations

import time

import pytest
from ingest_support import ingest_settings, run_ingest, sample, scrape

from tests.support.fake_servers.alphavantage import (
    BURST_LIMIT,
    DAILY_LIMIT,
    DEMO_KEY,
    ERROR_MESSAGE,
    NOTE,
    PREMIUM,
    FakeAlphaVantage,
    Reply,
    daily_body,
    rate_body,
)
from tests.support.kafka_tools import read_topic, wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.integration

KEY = "AVKEY-do-not-leak-7731"


def stays_constant(read, seconds: float) -> bool:
    """Observe ``read()`` for a bounded window; True if it never changed (absence of activity)."""
    first = read()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if read() != first:
            return False
        time.sleep(0.05)
    return True


def av_settings(stack, namespace, server, **overrides):
    values = {"source": "alphavantage", "alphavantage_api_key": KEY, "alphavantage_base_url": server.url,
              "message_interval": 0.01, "alphavantage_daily_budget": 10**9, "max_future_seconds": 10**9}
    values.update(overrides)
    return ingest_settings(stack, namespace, **values)


def test_quotes_error_bodies_and_daily_limit(stack, namespace):
    script = [
        Reply.json(rate_body("BTC", "USD", "10347.92000000", "2024-05-01 10:00:00",
                             bid="10347.91000000", ask="10348.63000000")),
        Reply.json(rate_body("BTC", "USD", "10347.92000000", "2024-05-01 10:00:00")),  # unchanged quote
        Reply.json(rate_body("BTC", "USD", "10350.00000000", "2024-05-01 10:00:01")),  # no bid/ask
        Reply.json(BURST_LIMIT), Reply.json(NOTE), Reply(500, "Internal Server Error", "text/plain"),
        Reply(200, "{not json"), Reply.json(ERROR_MESSAGE), Reply.json(PREMIUM), Reply.json(DEMO_KEY),
        Reply(503, "unavailable", "text/plain"),
        Reply.json(rate_body("BTC", "USD", "NaN", "2024-05-01 10:00:02")),
        Reply.json(rate_body("BTC", "USD", "10360.5", "2024-05-01 10:00:03")),
        Reply.json(DAILY_LIMIT),
    ]
    with FakeAlphaVantage(script, after=Reply.json(rate_body("BTC", "USD", "1", "2024-05-01 10:00:09"))) as server:
        run = run_ingest(
            av_settings(stack, namespace, server),
            until=lambda run: run.metric("stockstream_ingest_source_errors_total",
                                         source="alphavantage", kind="daily_limit") == 1,
            timeout_s=120,
        )
        assert stays_constant(server.request_count, 0.3)
        assert server.request_count() == len(script)  # nothing after the daily limit: it waits for midnight
    assert all(r["function"] == "CURRENCY_EXCHANGE_RATE" and r["from_currency"] == "BTC"
               and r["to_currency"] == "USD" and r["apikey"] == KEY for r in server.requests)

    ticks = run.ticks()
    assert [(t.price, t.bid, t.ask) for t in ticks] == [
        (10347.92, 10347.91, 10348.63), (10350.0, None, None), (10360.5, None, None)]
    assert {t.source for t in ticks} == {"alphavantage"}
    assert run.summary.duplicates == 1
    letters = run.dead_letters()
    assert [(d.reason, d.raw) for d in letters][0] == ("malformed_json", "{not json")
    assert [d.reason for d in letters] == ["malformed_json", "price_not_finite"]

    def errors(kind: str) -> float:
        return run.metric("stockstream_ingest_source_errors_total", source="alphavantage", kind=kind)

    assert {kind: errors(kind) for kind in ("burst_limit", "rate_limit_note", "http_5xx", "malformed_body",
                                            "error_message", "premium_endpoint", "information", "daily_limit")} \
        == {"burst_limit": 1, "rate_limit_note": 1, "http_5xx": 2, "malformed_body": 1, "error_message": 1,
            "premium_endpoint": 1, "information": 1, "daily_limit": 1}
    assert run.metric("stockstream_ingest_alphavantage_requests_remaining") == 0


def test_the_daily_budget_is_spread_not_burnt(stack, namespace):
    quote = Reply.json(rate_body("BTC", "USD", "65000", "2024-05-01 10:00:00"))
    with FakeAlphaVantage([quote]) as server:
        run = run_ingest(
            av_settings(stack, namespace, server, alphavantage_daily_budget=25),
            until=lambda run: run.published() == 1, timeout_s=120,
        )
        # 24 requests left for the rest of the UTC day: the next one is minutes away, not 10 ms.
        assert stays_constant(server.request_count, 0.5) and server.request_count() == 1
    assert run.metric("stockstream_ingest_alphavantage_requests_remaining") == 24


def test_history_seeds_daily_closes_then_polls(stack, namespace):
    script = [Reply.json(daily_body({"2024-04-29": ("63000.5", "1200"), "2024-04-30": ("64000", "1300")},
                                    generation=1)),
              Reply.json(rate_body("BTC", "USD", "65000.5", "2024-05-01 10:00:00"))]
    with FakeAlphaVantage(script) as server:
        run = run_ingest(av_settings(stack, namespace, server, alphavantage_history=True),
                         until=lambda run: run.published() == 3, timeout_s=120)
    assert server.requests[0]["function"] == "DIGITAL_CURRENCY_DAILY"
    assert (server.requests[0]["symbol"], server.requests[0]["market"]) == ("BTC", "USD")
    assert [(t.source_id, t.price) for t in run.ticks()] == [
        ("BTC-USD@daily:2024-04-29", 63000.5), ("BTC-USD@daily:2024-04-30", 64000.0),
        ("BTC-USD@2024-05-01T10:00:00+00:00", 65000.5)]


def test_api_key_never_appears_in_logs_errors_or_metrics(stack, namespace, ingest_env, tmp_path):
    port = free_port()
    echo = f'{{"broken": "apikey={KEY}"'  # a server that echoes the request in a malformed body
    script = [Reply.json(ERROR_MESSAGE), Reply(500, f"error for apikey={KEY}", "text/plain"), Reply(200, echo),
              Reply.json(BURST_LIMIT), Reply.json(rate_body("BTC", "USD", "oops", "2024-05-01 10:00:00")),
              Reply.json(rate_body("BTC", "USD", "65000", "2024-05-01 10:00:00")), Reply.json(DAILY_LIMIT)]
    env = {**ingest_env, "ALPHAVANTAGE_API_KEY": KEY, "LOG_LEVEL": "DEBUG", "MESSAGE_INTERVAL": "0.01",
           "ALPHAVANTAGE_DAILY_BUDGET": "1000000000", "METRICS_PORT": str(port)}
    with FakeAlphaVantage(script) as server:
        service = ServiceProcess(["ingest", "--source", "alphavantage", "--base-url", server.url], env)
        try:
            wait_until(lambda: server.request_count() >= len(script), timeout_s=120, message="all scripted replies")
            wait_until(lambda: sample(scrape(port), "stockstream_ingest_source_errors_total",
                                      kind="daily_limit", source="alphavantage") == 1,
                       timeout_s=120, message="daily limit counted")
            metrics_text = scrape(port)
        finally:
            assert service.terminate() == 0
    # Unreachable server: the connection-error path, also at DEBUG. Its own budget: the first run's (spent by the
    # daily-limit answer, and persisted) would make it wait for midnight.
    unreachable = ServiceProcess(["ingest", "--source", "alphavantage", "--base-url", f"http://127.0.0.1:{free_port()}"],
                                 {**env, "METRICS_PORT": "0", "ALPHAVANTAGE_BUDGET_DIR": str(tmp_path / "second")})
    wait_until(lambda: "network_error" in unreachable.output, timeout_s=120, message="a network error logged")
    assert unreachable.terminate() == 0

    assert server.requests[0]["apikey"] == KEY  # the key was really used
    output = service.log_path.read_text() + unreachable.log_path.read_text()
    assert "DEBUG" in output and "error_message" in output and "http_5xx" in output  # the error paths ran
    assert KEY not in output
    assert KEY not in metrics_text
    letters = read_topic(stack.kafka_bootstrap, f"{namespace}ticks.dlq")
    assert len(letters) == 2 and all(KEY not in r.value.decode() for r in letters)


def test_a_crash_loop_does_not_overspend_the_daily_budget(stack, namespace, ingest_env, tmp_path):
    """The budget lives in ALPHAVANTAGE_BUDGET_DIR: a poller killed with SIGKILL right after its request comes
    back knowing it spent one (and when), so it neither asks again at once nor resets to a fresh day's budget."""
    import os
    import signal

    port = free_port()
    env = {**ingest_env, "ALPHAVANTAGE_API_KEY": KEY, "ALPHAVANTAGE_DAILY_BUDGET": "25", "MESSAGE_INTERVAL": "0.01",
           "METRICS_PORT": str(port), "ALPHAVANTAGE_BUDGET_DIR": str(tmp_path / "state")}
    quote = Reply.json(rate_body("BTC", "USD", "65000", "2024-05-01 10:00:00"))
    with FakeAlphaVantage([quote], after=quote) as server:
        for restart in range(3):
            service = ServiceProcess(["ingest", "--source", "alphavantage", "--base-url", server.url], env)
            try:
                # Each start reports what is left: 24 after the first request, whatever the restarts.
                wait_until(lambda: sample(scrape(port), "stockstream_ingest_alphavantage_requests_remaining") == 24
                           and server.request_count() == 1, timeout_s=120,
                           message=f"start {restart}: one request spent in all\n{service.output[-1500:]}")
                assert stays_constant(server.request_count, 0.5), f"start {restart} asked again"
            finally:
                os.kill(service.process.pid, signal.SIGKILL)
                service.process.wait(10)
    saved = list((tmp_path / "state").glob("alphavantage-budget-*.json"))
    assert len(saved) == 1 and KEY not in saved[0].name and KEY not in saved[0].read_text()
