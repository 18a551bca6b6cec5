"""The order of entries in a page and the cursor that continues it.

Every entry has a key that orders it the same way in the views and in the Parquet history:
``(time in µs, partition, offset, tail)`` — a candle by its window open, a snapshot by its event
time then the position of the tick that caused it, a signal by its event time then its
deterministic id. A cursor is the key of the oldest entry of a page written as
``<µs>_<partition>_<offset>_<id>`` (:data:`CURSOR_PATTERN`: every text of that shape is a valid
cursor, so the API's schema says exactly what it accepts); the next page holds the entries
strictly before it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from schemas.events import Candle, IndicatorSnapshot, Signal

Key = tuple[int, int, int, str]
CURSOR_PATTERN = r"^-?[0-9]{1,18}_-?[0-9]{1,18}_-?[0-9]{1,18}_[0-9a-f]{0,32}$"
_CURSOR = re.compile(CURSOR_PATTERN)


class InvalidCursorError(ValueError):
    """A cursor that this server did not write (or that was altered)."""


def micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    from datetime import timedelta

    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)


def candle_key(candle: Candle) -> Key:
    return (micros(candle.ts_open), 0, 0, "")


def snapshot_key(snapshot: IndicatorSnapshot) -> Key:
    return (micros(snapshot.ts_event), snapshot.lineage.partition, snapshot.lineage.offset, "")


def signal_key(signal: Signal) -> Key:
    return (micros(signal.ts_event), 0, 0, signal.signal_id)


def time_bound(moment: datetime) -> Key:
    """The key before which every entry at ``moment`` or later lies (an exclusive ``to``)."""
    return (micros(moment), -(2**62), -(2**62), "")


def encode_cursor(key: Key) -> str:
    return f"{key[0]}_{key[1]}_{key[2]}_{key[3]}"


def decode_cursor(text: str) -> Key:
    """The key in a cursor; raises :class:`InvalidCursorError` for text not of :data:`CURSOR_PATTERN`."""
    if not isinstance(text, str) or not _CURSOR.fullmatch(text):
        raise InvalidCursorError("not a cursor of this API (take next_cursor from a response)")
    time, partition, offset, tail = text.split("_")
    return (int(time), int(partition), int(offset), tail)
