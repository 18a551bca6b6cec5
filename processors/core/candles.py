"""Event-time tumbling windows (candles) aligned to the Unix epoch.

A window of length L covers ``[start, start + L)`` with ``start`` a multiple of L. Open
and close are decided by event time (:mod:`processors.core.ohlc`). When windows close
is decided by :mod:`processors.core.pipeline` (grace period, UTC midnight).
"""

from __future__ import annotations

from processors.core.ohlc import OhlcBar
from processors.core.plain import StateFormatError, as_list

_WHAT = "candle window state"


class CandleWindow(OhlcBar):
    """One open window's OHLCV; times are microseconds since the epoch."""

    __slots__ = ("start", "volume", "count")

    def __init__(self, start: int, ts: int, price: float, volume: float) -> None:
        self.start = start
        self.start_bar(ts, price)
        self.volume = volume
        self.count = 1

    def add(self, ts: int, price: float, volume: float) -> None:
        """Fold one tick in (any arrival order; the OHLC rule of :mod:`processors.core.ohlc`)."""
        if ts < self.open_ts:
            self.open = price
            self.open_ts = ts
        if ts >= self.close_ts:
            self.close = price
            self.close_ts = ts
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.volume += volume
        self.count += 1

    def dump(self) -> list[int | float]:
        return [self.start, self.open, self.open_ts, self.high, self.low, self.close, self.close_ts,
                self.volume, self.count]

    @classmethod
    def load(cls, plain: object) -> CandleWindow:
        start, open_, open_ts, high, low, close, close_ts, volume, count = as_list(plain, 9, _WHAT)
        if type(start) is not int or type(count) is not int:
            raise StateFormatError(f"{_WHAT}: times and count must be integers")
        window = cls.__new__(cls)
        window.load_bar(open_, open_ts, high, low, close, close_ts, _WHAT)
        window.start, window.count = start, count
        try:
            window.volume = float(volume)
        except (TypeError, ValueError) as error:
            raise StateFormatError(f"{_WHAT}: {error}") from None
        return window


def fold(windows: list[CandleWindow], length: int, ts: int, price: float, volume: float) -> int:
    """Add a tick to its window in ``windows`` (kept sorted by start), opening it if needed; the window's start."""
    start = ts - ts % length
    for index in range(len(windows) - 1, -1, -1):  # the newest window is the usual target
        window = windows[index]
        if window.start == start:
            window.add(ts, price, volume)
            return start
        if window.start < start:
            windows.insert(index + 1, CandleWindow(start, ts, price, volume))
            return start
    windows.insert(0, CandleWindow(start, ts, price, volume))
    return start

