"""Event time as integer microseconds since the Unix epoch (UTC).

The core keeps every time in state as an ``int`` of microseconds: exact, JSON-friendly
and cheap to compare. Conversions to and from aware ``datetime`` happen only here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
SECOND_US = 1_000_000
DAY_US = 86_400 * SECOND_US
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, no float rounding)."""
    return (moment - EPOCH) // ONE_MICROSECOND


def from_us(us: int) -> datetime:
    """The aware UTC datetime of ``us`` microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=us)


def day_number(us: int) -> int:
    """The UTC day (days since 1970-01-01) that contains ``us``."""
    return us // DAY_US


def day_date(day: int) -> date:
    """The calendar date of a UTC day number."""
    return date.fromordinal(_EPOCH_ORDINAL + day)
