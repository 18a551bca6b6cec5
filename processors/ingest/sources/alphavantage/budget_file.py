"""The Alpha Vantage budget on disk, so a crash loop cannot overspend the 25 calls a day.

The poller writes the day, the requests used and the time of the last request **before**
each request goes out (a request in flight when the process dies is counted: never
under-counted), atomically (temporary file + rename). On start it reads them back, so a
restarted poller keeps both the count and the spacing. One file per API key (named by a
hash of the key, never the key). A file that cannot be read or parsed counts as today's
budget spent (logged): overspending a shared key is worse than waiting until midnight.
Who calls: :class:`~processors.ingest.sources.alphavantage.source.AlphaVantageSource`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedBudget:
    day: date
    used: int
    last_request: datetime | None


def budget_path(folder: Path, api_key: str) -> Path:
    """The budget file of ``api_key`` in ``folder`` (its name carries a hash of the key, not the key)."""
    return folder / f"alphavantage-budget-{hashlib.sha256(api_key.encode()).hexdigest()[:16]}.json"


class BudgetFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, limit: int, now: datetime) -> SavedBudget | None:
        """The saved budget; ``None`` when there is none; today's budget spent when the file is unreadable."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            log.warning("alphavantage budget file %s unreadable (%s): counting today's budget as spent",
                        self.path, type(error).__name__)
            return SavedBudget(now.astimezone(UTC).date(), limit, None)
        try:
            data = json.loads(text)
            day = date.fromisoformat(data["day"])
            used = int(data["used"])
            last = datetime.fromisoformat(data["last_request"]) if data.get("last_request") else None
            if used < 0 or (last is not None and last.tzinfo is None):
                raise ValueError("negative count or naive time")
        except (ValueError, KeyError, TypeError) as error:
            log.warning("alphavantage budget file %s is corrupt (%s): counting today's budget as spent",
                        self.path, error)
            return SavedBudget(now.astimezone(UTC).date(), limit, None)
        return SavedBudget(day, used, last)

    def save(self, budget: SavedBudget) -> None:
        """Write atomically; an error propagates (the poller must not send a request it could not count)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({
            "day": budget.day.isoformat(), "used": budget.used,
            "last_request": budget.last_request.isoformat() if budget.last_request else None}))
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        temporary.replace(self.path)
