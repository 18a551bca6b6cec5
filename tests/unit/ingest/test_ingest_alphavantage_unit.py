"""Alpha Vantage pure parts: error classification, budget spreading, body parsing (both generations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from processors.ingest.sources.alphavantage.budget import DailyBudget, next_utc_midnight
from processors.ingest.sources.alphavantage.errors import RETRY, ApiErrorKind, classify_body
from processors.ingest.sources.alphavantage.wire import (
    normalize_daily_keys,
    parse_daily_history,
    parse_rate_body,
)
from processors.ingest.sources.base import Accepted, Rejected
from processors.ingest.validation import TimeBounds
from tests.support.fake_servers.alphavantage import (
    BURST_LIMIT,
    DAILY_LIMIT,
    DEMO_KEY,
    ERROR_MESSAGE,
    NOTE,
    PREMIUM,
    daily_body,
    rate_body,
)

NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(("body", "kind", "retry"), [
    (DAILY_LIMIT, ApiErrorKind.DAILY_LIMIT, "midnight"),
    (BURST_LIMIT, ApiErrorKind.BURST_LIMIT, "backoff"),
    (PREMIUM, ApiErrorKind.PREMIUM_ENDPOINT, "long"),
    (DEMO_KEY, ApiErrorKind.INFORMATION, "long"),
    (NOTE, ApiErrorKind.RATE_LIMIT_NOTE, "backoff"),
    (ERROR_MESSAGE, ApiErrorKind.ERROR_MESSAGE, "long"),
])
def test_error_bodies_are_classified(body, kind, retry):
    error = classify_body(body)
    assert error is not None and error.kind == kind and RETRY[error.kind] == retry


def test_a_quote_is_not_an_error():
    assert classify_body(rate_body("BTC", "USD", "1")) is None


def test_budget_of_25_is_spread_over_the_whole_day():
    budget = DailyBudget(25)
    midnight = datetime(2024, 5, 1, tzinfo=UTC)
    times, last, now = [], None, midnight
    while True:
        due = budget.next_request_at(last, now)
        if due.date() != midnight.date():
            break
        budget.record(due)
        times.append(due)
        last = now = due
    assert len(times) == 25
    gaps = {round((b - a).total_seconds()) for a, b in zip(times, times[1:], strict=False)}
    assert gaps == {3456}  # 86 400 s / 25
    assert budget.next_request_at(last, now) == next_utc_midnight(now)


def test_budget_started_at_noon_spreads_over_the_half_day_left():
    budget = DailyBudget(25)
    noon = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert budget.next_request_at(None, noon) == noon
    budget.record(noon)
    assert budget.next_request_at(noon, noon) == noon + timedelta(seconds=43_200 / 25)


def test_budget_exhausted_by_the_server_waits_for_midnight_then_resets():
    budget = DailyBudget(25)
    budget.record(NOW)
    budget.exhaust(NOW)
    assert budget.remaining(NOW) == 0
    assert budget.next_request_at(NOW, NOW) == datetime(2024, 5, 2, tzinfo=UTC)
    tomorrow = datetime(2024, 5, 2, 0, 0, 1, tzinfo=UTC)
    assert budget.remaining(tomorrow) == 25 and budget.next_request_at(NOW, tomorrow) == tomorrow


def test_rate_body_with_and_without_bid_ask():
    with_quotes = parse_rate_body(rate_body("BTC", "USD", "10347.92000000", "2020-02-12 19:05:01",
                                            bid="10347.91000000", ask="10348.63000000"),
                                  symbol="BTC-USD", now=NOW, bounds=TimeBounds())
    assert isinstance(with_quotes, Accepted)
    tick = with_quotes.tick
    assert (tick.price, tick.bid, tick.ask) == (10347.92, 10347.91, 10348.63)
    assert tick.ts_event == datetime(2020, 2, 12, 19, 5, 1, tzinfo=UTC)
    assert tick.source_id == "BTC-USD@2020-02-12T19:05:01+00:00"
    bare = parse_rate_body(rate_body("BTC", "USD", "1.5"), symbol="BTC-USD", now=NOW, bounds=TimeBounds())
    assert isinstance(bare, Accepted) and bare.tick.bid is None and bare.tick.ask is None


def test_rate_body_time_zone_is_honoured():
    outcome = parse_rate_body(rate_body("BTC", "USD", "1", "2024-05-01 08:00:00", time_zone="America/New_York"),
                              symbol="BTC-USD", now=NOW, bounds=TimeBounds())
    assert outcome.tick.ts_event == datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(("body", "reason"), [
    ({"something": "else"}, "response_unexpected"),
    (rate_body("BTC", "USD", "NaN"), "price_not_finite"),
    (rate_body("BTC", "USD", ""), "price_missing"),
    (rate_body("ETH", "USD", "1"), "symbol_unexpected"),
    (rate_body("BTC", "USD", "1", bid="-1"), "bid_not_positive"),
    (rate_body("BTC", "USD", "1", refreshed="soon"), "timestamp_invalid"),
    (rate_body("BTC", "USD", "1", time_zone="Mars/Olympus"), "timestamp_invalid"),
    ({"Realtime Currency Exchange Rate": {"1. From_Currency Code": "BTC", "3. To_Currency Code": "USD",
                                          "5. Exchange Rate": 5, "6. Last Refreshed": "2024-05-01 00:00:00"}},
     "price_not_number"),
])
def test_rate_body_rejections(body, reason):
    outcome = parse_rate_body(body, symbol="BTC-USD", now=NOW, bounds=TimeBounds())
    assert isinstance(outcome, Rejected) and outcome.reason == reason


@pytest.mark.parametrize("generation", [1, 2])
def test_daily_history_accepts_both_field_name_generations(generation):
    body = daily_body({"2024-04-29": ("63000.5", "1200.5"), "2024-04-30": ("64000.25", "1300")},
                      generation=generation)
    outcomes = parse_daily_history(body, symbol="BTC-USD", now=NOW, bounds=TimeBounds())
    assert [(o.tick.price, o.tick.volume) for o in outcomes] == [(63000.5, 1200.5), (64000.25, 1300.0)]
    assert outcomes[0].tick.ts_event == datetime(2024, 4, 29, 23, 59, 59, tzinfo=UTC)
    assert outcomes[1].tick.source_id == "BTC-USD@daily:2024-04-30"


def test_old_generation_prefers_the_requested_market():
    day = {"4a. close (CNY)": "7.0", "4b. close (USD)": "1.0", "5. volume": "3"}
    assert normalize_daily_keys(day, "CNY")["close"] == "7.0"
    assert normalize_daily_keys(day, "USD")["close"] == "1.0"


def test_daily_history_bad_days_are_rejected_alone():
    body = daily_body({"2024-04-29": ("63000.5", "1"), "2024-04-30": ("-5", "1")})
    body["Time Series (Digital Currency Daily)"]["not-a-date"] = {"4. close": "1", "5. volume": "1"}
    outcomes = parse_daily_history(body, symbol="BTC-USD", now=NOW, bounds=TimeBounds())
    assert [type(o).__name__ for o in outcomes] == ["Accepted", "Rejected", "Rejected"]
    assert [o.reason for o in outcomes[1:]] == ["price_not_positive", "timestamp_invalid"]


def test_budget_file_round_trip_and_a_corrupt_file_counts_as_spent(tmp_path):
    from processors.ingest.sources.alphavantage.budget_file import BudgetFile, SavedBudget, budget_path

    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    path = budget_path(tmp_path, "KEY-123-secret")
    assert "KEY-123-secret" not in path.name
    store = BudgetFile(path)
    assert store.load(25, now) is None
    store.save(SavedBudget(now.date(), 3, now))
    assert store.load(25, now) == SavedBudget(now.date(), 3, now)
    for garbage in ("{", '{"day": "2024-05-01"}', '{"day": "x", "used": 1}', '{"day": "2024-05-01", "used": -1}',
                    '{"day": "2024-05-01", "used": 1, "last_request": "2024-05-01T10:00:00"}'):
        path.write_text(garbage)
        assert store.load(25, now) == SavedBudget(now.date(), 25, None), garbage  # spent: never overspend
