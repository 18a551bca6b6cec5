"""Retries with backoff and jitter, Retry-After, deadlines and token buckets on a fake clock."""

from __future__ import annotations

import random

import pytest

from processors.notify.channels.http import parse_retry_after
from processors.notify.retry import (
    DeliveryFailed,
    PermanentDeliveryError,
    RetryPolicy,
    TokenBucket,
    TransientDeliveryError,
    deliver_with_retries,
)


class FakeTime:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*outcomes: Exception | None):  # type: ignore[no-untyped-def]
    calls: list[float] = []
    queue = list(outcomes)

    def send() -> None:
        calls.append(len(calls))
        outcome = queue.pop(0) if queue else None
        if outcome is not None:
            raise outcome

    return send, calls


def run(send, policy: RetryPolicy, time: FakeTime, bucket: TokenBucket | None = None):  # type: ignore[no-untyped-def]
    return deliver_with_retries(send, policy, clock=time.clock, sleep=time.sleep, rng=random.Random(7), bucket=bucket)


def test_backoff_doubles_with_equal_jitter_and_is_capped() -> None:
    policy = RetryPolicy(initial_s=0.5, max_backoff_s=4)
    rng = random.Random(1)
    for retry, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        for _ in range(50):
            assert cap / 2 <= policy.backoff(retry, rng) <= cap
    assert len({round(policy.backoff(3, rng), 6) for _ in range(20)}) > 1  # jittered


def test_transient_errors_are_retried_then_delivered() -> None:
    time = FakeTime()
    send, calls = scripted(TransientDeliveryError("http_500", "boom"), TransientDeliveryError("timeout", "slow"))
    report = run(send, RetryPolicy(initial_s=1, max_backoff_s=10), time)
    assert report.attempts == 3 and len(calls) == 3
    assert 0.5 <= time.sleeps[0] <= 1 and 1 <= time.sleeps[1] <= 2
    assert report.waited_s == pytest.approx(sum(time.sleeps))


def test_retry_after_is_honoured_exactly() -> None:
    time = FakeTime()
    send, _ = scripted(TransientDeliveryError("http_429", "slow down", retry_after=7.5))
    report = run(send, RetryPolicy(), time)
    assert time.sleeps == [7.5] and report.attempts == 2


def test_permanent_errors_are_not_retried() -> None:
    time = FakeTime()
    send, calls = scripted(PermanentDeliveryError("http_400", "bad request"))
    with pytest.raises(DeliveryFailed) as failed:
        run(send, RetryPolicy(), time)
    assert failed.value.reason == "http_400" and failed.value.attempts == 1 and len(calls) == 1 and not time.sleeps


def test_attempts_run_out() -> None:
    time = FakeTime()
    send, calls = scripted(*[TransientDeliveryError("http_503", "down")] * 10)
    with pytest.raises(DeliveryFailed) as failed:
        run(send, RetryPolicy(max_attempts=4, initial_s=0.1), time)
    assert failed.value.reason == "retries_exhausted" and failed.value.attempts == 4 and len(calls) == 4
    assert "http_503" in failed.value.detail


def test_deadline_runs_out_before_attempts() -> None:
    time = FakeTime()
    send, calls = scripted(*[TransientDeliveryError("timeout", "slow")] * 50)
    with pytest.raises(DeliveryFailed) as failed:
        run(send, RetryPolicy(max_attempts=50, initial_s=1, max_backoff_s=8, deadline_s=20), time)
    assert failed.value.reason == "retries_exhausted"
    assert sum(time.sleeps) <= 20


def test_a_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    time = FakeTime()
    send, calls = scripted(TransientDeliveryError("http_429", "later", retry_after=3600))
    with pytest.raises(DeliveryFailed) as failed:
        run(send, RetryPolicy(deadline_s=120), time)
    assert failed.value.reason == "retry_after_too_long" and not time.sleeps and len(calls) == 1


def test_token_bucket_spaces_requests_after_the_burst() -> None:
    time = FakeTime()
    bucket = TokenBucket(rate=1.0, burst=2, clock=time.clock)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits == [0.0, 0.0, 1.0, 2.0, 3.0]
    time.now += 10  # refills, but never beyond the burst
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 1.0]


def test_rate_limit_applies_to_every_attempt() -> None:
    time = FakeTime()
    bucket = TokenBucket(rate=1.0, burst=1, clock=time.clock)
    for _ in range(3):
        send, _ = scripted()
        run(send, RetryPolicy(), time, bucket)
    assert time.sleeps == [1.0, 1.0]  # Telegram-like: one message per second
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, clock=time.clock)


@pytest.mark.parametrize(("header", "seconds"), [("5", 5.0), ("0.5", 0.5), ("-3", 0.0), (None, None), ("soon", None),
                                                 ("Wed, 01 May 2024 12:00:30 GMT", 30.0)])
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    from datetime import UTC, datetime
    assert parse_retry_after(header, now=datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)) == seconds
