"""The open/high/low/close fold shared by candles and daily aggregates.

Open and close are decided by event time, not arrival: a tick older than the current open
becomes the open; a tick at or after the current close's time becomes the close (ties: the
later arrival wins the close, the earlier keeps the open). Times are microseconds since the epoch.
The fold of one tick is written out in ``CandleWindow.add`` and ``DayAggregate.add`` (each runs once
per tick: a shared method call cost more than the fold itself).
"""

from __future__ import annotations

from processors.core.plain import StateFormatError


class OhlcBar:
    """Open/high/low/close of a bar, with the event times of its open and close."""

    __slots__ = ("open", "open_ts", "high", "low", "close", "close_ts")

    def start_bar(self, ts: int, price: float) -> None:
        """Begin the bar with its first tick."""
        self.open = self.high = self.low = self.close = price
        self.open_ts = self.close_ts = ts

    def load_bar(self, open_: object, open_ts: object, high: object, low: object, close: object,
                 close_ts: object, what: str) -> None:
        """Restore the bar from stored values; raises :class:`StateFormatError` on a corrupt state."""
        if type(open_ts) is not int or type(close_ts) is not int:
            raise StateFormatError(f"{what}: times must be integers")
        self.open_ts, self.close_ts = open_ts, close_ts
        try:
            self.open, self.high = float(open_), float(high)  # type: ignore[arg-type]
            self.low, self.close = float(low), float(close)  # type: ignore[arg-type]
        except (TypeError, ValueError) as error:
            raise StateFormatError(f"{what}: {error}") from None
