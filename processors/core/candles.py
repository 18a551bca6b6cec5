"""Event-time tumbling windows (candles) aligned to the Unix epoch.

A window of length L covers ``[start, start + L)`` with ``start`` a multiple of L. Open
and close are decided by event time (:mod:`processors.core.ohlc`). When windows close
is decided by :mod:`processors.core.pipeline` (grace period, UTC midnight).
"""

from __future__ import annotations

from processors.core.ohlc import OhlcBar
from processors.core.origin import Origin
from processors.core.plain import StateFormatError

_WHAT = "candle window state"


class CandleWindow(OhlcBar):
    """One open window's OHLCV; times are microseconds since the epoch.

    ``origin``: the last tick folded in (:mod:`processors.core.origin`), what its close's events carry;
    None only for a window restored from a state written before origins were kept.
    """

    __slots__ = ("start", "volume", "count", "origin")

    def __init__(self, start: int, ts: int, price: float, volume: float, origin: Origin | None) -> None:
        self.start = start
        self.start_bar(ts, price)
        self.volume = volume
        self.count = 1
        self.origin = origin

    def add(self, ts: int, price: float, volume: float, origin: Origin | None) -> None:
        """Fold one tick in (any arrival order; the OHLC rule of :mod:`processors.core.ohlc`)."""
        self.origin = origin
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

    def dump(self) -> list[object]:
        plain: list[object] = [self.start, self.open, self.open_ts, self.high, self.low, self.close, self.close_ts,
                               self.volume, self.count]
        if self.origin is not None:
            plain.append(self.origin.dump())
        return plain

    @classmethod
    def load(cls, plain: object) -> CandleWindow:
        """Rebuild from :meth:`dump` (9 items without an origin: a state written before origins were kept)."""
        if not isinstance(plain, list) or len(plain) not in (9, 10):
            raise StateFormatError(f"{_WHAT}: expected a list of 9 or 10 values")
        start, open_, open_ts, high, low, close, close_ts, volume, count = plain[:9]
        if type(start) is not int or type(count) is not int:
            raise StateFormatError(f"{_WHAT}: times and count must be integers")
        window = cls.__new__(cls)
        window.load_bar(open_, open_ts, high, low, close, close_ts, _WHAT)
        window.start, window.count = start, count
        window.origin = Origin.load(plain[9]) if len(plain) == 10 else None
        try:
            window.volume = float(volume)
        except (TypeError, ValueError) as error:
            raise StateFormatError(f"{_WHAT}: {error}") from None
        return window


def fold(windows: list[CandleWindow], length: int, ts: int, price: float, volume: float, origin: Origin | None) -> int:
    """Add a tick to its window in ``windows`` (kept sorted by start), opening it if needed; the window's start.

    ``origin``: the tick's (:mod:`processors.core.origin`)."""
    start = ts - ts % length
    for index in range(len(windows) - 1, -1, -1):  # the newest window is the usual target
        window = windows[index]
        if window.start == start:
            window.add(ts, price, volume, origin)
            return start
        if window.start < start:
            windows.insert(index + 1, CandleWindow(start, ts, price, volume, origin))
            return start
    windows.insert(0, CandleWindow(start, ts, price, volume, origin))
    return start

