"""Live updates of one instrument: which forming candles and whether the running day changed, and when to send.

Called by :class:`processors.core.pipeline.SymbolProcessor`. The rule (docs/core.md, "Live candles
and quiet feeds"): every accepted tick changes the forming candle of each candle timeframe and the
running daily summary. They are sent at most once per ``interval`` of stream time per instrument:
the first change after a quiet interval goes out at once (with the tick that made it); changes
within the interval wait, and the latest state goes out as soon as the partition's stream time
reaches the last send + interval — from this instrument's next tick or from any other record of
its partition (so the last update is never held back longer than the interval once the partition
moves). A window that closes sends its final candle instead; a day that closes its final summary.
Event time only: a replay sends exactly the same updates.
"""

from __future__ import annotations

from typing import Any

from processors.core.plain import StateFormatError, as_int, as_items, as_list


class LiveUpdates:
    """The pending live changes of one instrument and the stream time of its last send (µs)."""

    __slots__ = ("interval", "last", "windows", "day")

    def __init__(self, interval_us: int) -> None:
        if interval_us <= 0:
            raise ValueError("the live update interval must be positive")
        self.interval = interval_us
        self.last: int | None = None  # stream time of the last send
        self.windows: set[tuple[int, int]] = set()  # (timeframe index, window start µs) changed since
        self.day = False  # the running daily aggregate changed since

    @property
    def pending(self) -> bool:
        return self.day or bool(self.windows)

    def ready(self, now: int) -> bool:
        """Whether the pending changes go out at stream time ``now``."""
        if not (self.day or self.windows):
            return False
        return self.last is None or now >= self.last + self.interval

    def due(self) -> int | None:
        """The stream time at which the pending changes go out (None: nothing pending)."""
        if not (self.day or self.windows):
            return None
        return self.last + self.interval if self.last is not None else 0

    def sent(self, now: int) -> None:
        self.last = now
        self.windows = set()
        self.day = False

    def dump(self) -> list[Any]:
        return [self.last, sorted([index, start] for index, start in self.windows), self.day]

    @classmethod
    def load(cls, plain: object, interval_us: int) -> LiveUpdates:
        last, windows, day = as_list(plain, 3, "live updates")
        live = cls(interval_us)
        live.last = None if last is None else as_int(last, "live update time")
        for item in as_items(windows, "live windows"):
            index, start = as_list(item, 2, "live window")
            live.windows.add((as_int(index, "live window timeframe"), as_int(start, "live window start")))
        if type(day) is not bool:
            raise StateFormatError("live updates: day flag must be a bool")
        live.day = day
        return live
