"""``--from``/``--to`` as people type them (stockstream/ranges.py): offsets, times, dates, durations ago."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stockstream.ranges import parse_moment, split_bound

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    (None, (None, None)),
    ("1200", ("1200", None)),
    ("0:1200,1:800", ("0:1200,1:800", None)),
    ("0:x", ("0:x", None)),  # refused by the offset parser, which says what offsets look like
    ("2024-03-04", (None, "2024-03-04")),
    ("2024-03-04T12:00:00Z", (None, "2024-03-04T12:00:00Z")),
    ("2h", (None, (NOW - timedelta(hours=2)).isoformat())),
    ("90s", (None, (NOW - timedelta(seconds=90)).isoformat())),
    ("99999999999d", (None, "99999999999d")),  # beyond the calendar: left to the time parser to refuse
])
def test_split_bound(text: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_bound(text, NOW) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-03-04", datetime(2024, 3, 4, tzinfo=UTC)),
    ("2024-03-04T12:30:00", datetime(2024, 3, 4, 12, 30, tzinfo=UTC)),
    ("2024-03-04T12:30:00+02:00", datetime(2024, 3, 4, 10, 30, tzinfo=UTC)),
    ("15m", NOW - timedelta(minutes=15)),
    ("3d", NOW - timedelta(days=3)),
])
def test_parse_moment(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "0001-01-01T00:00:00+05:00", "99999999999d", ""])
def test_parse_moment_refuses_with_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError, match="is not|out of range|before the year 1"):
        parse_moment(text, NOW)
