"""Robust delivery: classified errors, retries with exponential backoff and jitter, rate limits.

A channel's ``send`` raises :class:`TransientDeliveryError` (worth retrying: 5xx,
429, timeouts, refused connections; may carry the server's ``retry_after``) or
:class:`PermanentDeliveryError` (retrying cannot help: 4xx other than 429, a
rejected address, bad credentials). :func:`deliver_with_retries` (blocking) and
:func:`deliver_with_retries_async` (on an event loop) turn that into a :class:`DeliveryReport`
or a :class:`DeliveryFailed` with a stable reason code; :func:`retry_wait` is their shared,
pure decision.
Clocks, sleeping and randomness are injected so tests run on fake time.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

REASON_RETRIES_EXHAUSTED = "retries_exhausted"
REASON_RETRY_AFTER_TOO_LONG = "retry_after_too_long"


class DeliveryError(Exception):
    """A failed attempt. ``reason`` is a stable code for metrics and the DLQ; ``detail`` is for humans.

    Neither may contain a secret (channels build them without URLs or tokens).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (HTTP 4xx other than 429, rejected address, bad credentials)."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying; ``retry_after`` is the server's requested wait in seconds, if it gave one."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after


class DeliveryFailed(Exception):
    """The final outcome of a delivery that did not happen: goes to the DLQ with ``reason``."""

    def __init__(self, reason: str, detail: str, attempts: int) -> None:
        super().__init__(f"{reason} after {attempts} attempt(s): {detail}")
        self.reason = reason
        self.detail = detail
        self.attempts = attempts


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` tries within ``deadline_s``; waits double from ``initial_s`` up to ``max_backoff_s``."""

    max_attempts: int = 8
    initial_s: float = 0.5
    max_backoff_s: float = 30.0
    deadline_s: float = 120.0

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Wait before retry ``retry_number`` (1-based): "equal jitter", uniform in [cap/2, cap]."""
        cap = min(self.max_backoff_s, self.initial_s * 2.0 ** (retry_number - 1))
        return float(cap / 2 + rng.uniform(0, cap / 2))


class TokenBucket:
    """Rate limit: ``rate`` tokens per second refill continuously, at most ``burst`` stored.

    :meth:`reserve` takes a token now and says how long to wait before using it;
    reservations queue up (the bucket goes into debt), so waits grow with demand.
    Thread-safe: a lane's concurrent deliveries share one bucket (on its event loop, and on the
    window's worker threads for the blocking channels).
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
            self._tokens -= 1
            return wait


@dataclass(frozen=True)
class DeliveryReport:
    """A delivery that happened: how many attempts it took and how long it waited (backoff + rate limit)."""

    attempts: int
    waited_s: float


def retry_wait(error: TransientDeliveryError, attempt: int, elapsed_s: float, policy: RetryPolicy,
               rng: random.Random) -> float:
    """Seconds to wait after attempt number ``attempt`` failed with ``error``, ``elapsed_s`` into the delivery.

    Raises :class:`DeliveryFailed` when there is no next attempt: attempts or the deadline used up
    (``retries_exhausted``), or the server asked to wait past the deadline (``retry_after_too_long``).
    """
    remaining = policy.deadline_s - elapsed_s
    if error.retry_after is not None:
        wait = max(0.0, error.retry_after)
        if wait > remaining:
            raise DeliveryFailed(
                REASON_RETRY_AFTER_TOO_LONG,
                f"{error.detail}; server asked to wait {wait:.1f}s, {max(remaining, 0):.1f}s of the"
                f" {policy.deadline_s:.0f}s retry deadline left",
                attempt,
            ) from None
    else:
        wait = policy.backoff(attempt, rng)
    if attempt >= policy.max_attempts or wait > remaining:
        raise DeliveryFailed(REASON_RETRIES_EXHAUSTED, f"last error {error.reason}: {error.detail}", attempt) from None
    return wait


def deliver_with_retries(
    send: Callable[[], None],
    policy: RetryPolicy,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    rng: random.Random,
    bucket: TokenBucket | None = None,
    on_retry: Callable[[TransientDeliveryError, float], None] | None = None,
) -> DeliveryReport:
    """Call ``send`` until it succeeds, honouring the rate limit, backoff and ``Retry-After``.

    Raises :class:`DeliveryFailed` on a permanent error (its reason), when attempts or
    the deadline run out (``retries_exhausted``), or when the server asks to wait past
    the deadline (``retry_after_too_long``). ``on_retry(error, wait_s)`` is told of each retry.
    """
    started = clock()
    waited = 0.0
    attempt = 0
    while True:
        if bucket is not None:
            wait = bucket.reserve()
            if wait > 0:
                sleep(wait)
                waited += wait
        attempt += 1
        try:
            send()
            return DeliveryReport(attempts=attempt, waited_s=waited)
        except PermanentDeliveryError as error:
            raise DeliveryFailed(error.reason, error.detail, attempt) from None
        except TransientDeliveryError as error:
            wait = retry_wait(error, attempt, clock() - started, policy, rng)
            if on_retry is not None:
                on_retry(error, wait)
            sleep(wait)
            waited += wait


async def deliver_with_retries_async(
    send: Callable[[], Awaitable[None]],
    policy: RetryPolicy,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
    bucket: TokenBucket | None = None,
    on_retry: Callable[[TransientDeliveryError, float], None] | None = None,
) -> DeliveryReport:
    """:func:`deliver_with_retries` on an event loop: ``send`` and ``sleep`` are awaited (the lane's window)."""
    started = clock()
    waited = 0.0
    attempt = 0
    while True:
        if bucket is not None:
            wait = bucket.reserve()
            if wait > 0:
                await sleep(wait)
                waited += wait
        attempt += 1
        try:
            await send()
            return DeliveryReport(attempts=attempt, waited_s=waited)
        except PermanentDeliveryError as error:
            raise DeliveryFailed(error.reason, error.detail, attempt) from None
        except TransientDeliveryError as error:
            wait = retry_wait(error, attempt, clock() - started, policy, rng)
            if on_retry is not None:
                on_retry(error, wait)
            await sleep(wait)
            waited += wait
