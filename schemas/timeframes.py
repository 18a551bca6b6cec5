"""Timeframes: ``tick`` (every price) and candle timeframes such as ``1m``, ``5m``, ``1h``, ``1d``."""

from __future__ import annotations

import re

TICK = "tick"
TIMEFRAME_PATTERN = r"^(tick|[1-9][0-9]{0,3}[smhd])$"
_CANDLE = re.compile(r"^([1-9][0-9]{0,3})([smhd])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class InvalidTimeframeError(ValueError):
    """Raised for a timeframe that is neither ``tick`` nor ``<n><s|m|h|d>``."""


def timeframe_ms(timeframe: str) -> int:
    """Length of a candle timeframe in milliseconds (``1m`` → 60000).

    Raises :class:`InvalidTimeframeError` for ``tick`` or a malformed name.
    """
    match = _CANDLE.match(timeframe)
    if match is None:
        raise InvalidTimeframeError(
            f"timeframe {timeframe!r} is not a candle timeframe like 1m, 5m, 1h or 1d"
        )
    length = int(match.group(1)) * _UNIT_MS[match.group(2)]
    if 86_400_000 % length != 0 and length % 86_400_000 != 0:
        raise InvalidTimeframeError(
            f"timeframe {timeframe!r} does not divide a UTC day; pick e.g. 1m, 5m, 15m, 1h, 4h or 1d"
        )
    return length


def validate_timeframe(timeframe: str) -> str:
    """Return the timeframe unchanged when it is ``tick`` or a valid candle timeframe."""
    if timeframe != TICK:
        timeframe_ms(timeframe)
    return timeframe
