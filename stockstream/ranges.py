"""Reading the time bounds people type on the command line: ``--from``/``--to`` of queries and ranges.

:func:`parse_moment` takes an ISO 8601 time (``2024-03-04T12:00:00Z``; without a zone: UTC), a date
(``2024-03-04``: its midnight UTC) or a duration back from now (``90s``, ``15m``, ``2h``, ``3d``).
Called by the commands; a :class:`ValueError` names what was expected.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
EXPECTED = "an ISO 8601 time (2024-03-04T12:00:00Z), a date (2024-03-04) or a duration ago (90s, 15m, 2h, 3d)"


def duration_seconds(text: str) -> float | None:
    """Seconds of a duration like ``15m``; None when ``text`` is not one."""
    match = _DURATION.match(text)
    return None if match is None else float(match.group(1)) * _UNITS[match.group(2)]


def parse_moment(text: str, now: datetime) -> datetime:
    """An aware datetime from a time, a date or a duration back from ``now``; raises ValueError."""
    value = text.strip()
    seconds = duration_seconds(value)
    if seconds is not None:
        try:
            return now - timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before the year 1") from None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{text!r} is not {EXPECTED}") from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None


def split_bound(text: str | None, now: datetime | None = None) -> tuple[str | None, str | None]:
    """A ``--from``/``--to`` of a command over the log → ``(offsets, None)`` or ``(None, ISO time)``.

    Offsets are ``1200`` (every partition) or ``0:1200,1:800`` (by partition), checked by the
    command's offset parser; a time, a date or a duration ago becomes an ISO time checked by its
    time parser. Text with a ``-`` or a ``T`` is a time (every ISO date has one), a duration is a
    time back from ``now``; the rest is read as offsets, so ``0:x`` is refused as a bad offset.
    """
    if text is None:
        return None, None
    value = text.strip()
    seconds = duration_seconds(value)
    if seconds is not None:
        try:
            return None, ((now or datetime.now(UTC)) - timedelta(seconds=seconds)).isoformat()
        except OverflowError:
            return None, value  # refused by the command's time parser, which names the option
    if "-" in value or "T" in value.upper():
        return None, value
    return value, None
