"""The daily request budget, spread evenly over what is left of the UTC day (pure; pass ``now``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


def next_utc_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)


@dataclass
class DailyBudget:
    """``limit`` requests per UTC day (Alpha Vantage's free tier: 25).

    After a request at ``t`` with ``r`` requests left, the next one is due at
    ``t + (seconds until midnight) / (r + 1)``: a fresh budget of 25 at 00:00 yields
    one request every 57.6 minutes, and a service started at noon spreads its 25 over
    the 12 hours left instead of spending them in 25 seconds. The budget is per
    process and assumes the day resets at 00:00 UTC; if the server says the limit is
    reached earlier (another client used the key), :meth:`exhaust` waits for midnight.
    """

    limit: int
    day: date | None = None
    used: int = 0

    def _roll(self, now: datetime) -> None:
        today = now.astimezone(UTC).date()
        if self.day != today:
            self.day = today
            self.used = 0

    def remaining(self, now: datetime) -> int:
        self._roll(now)
        return max(0, self.limit - self.used)

    def record(self, now: datetime) -> None:
        """Count one request sent at ``now``."""
        self._roll(now)
        self.used += 1

    def exhaust(self, now: datetime) -> None:
        """The server says today's limit is reached."""
        self._roll(now)
        self.used = max(self.used, self.limit)

    def next_request_at(self, last_request: datetime | None, now: datetime) -> datetime:
        """When the next request may go out, given the last one (``None``: never asked yet)."""
        if self.remaining(now) == 0:
            return next_utc_midnight(now)
        if last_request is None:
            return now
        midnight = next_utc_midnight(last_request)
        if midnight <= now:  # a new day began since the last request
            return now
        left = self.remaining(now)
        spacing = (midnight - last_request) / (left + 1)
        return max(now, last_request + spacing)
