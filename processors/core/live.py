"""Live updates of one instrument: which forming candles and whether the running day changed, and when they go out.

Called by :class:`processors.core.pipeline.SymbolProcessor` when ``PipelineConfig.live_update_ms`` is
set (the stream processor's ``LIVE_UPDATE_INTERVAL``). The rule (docs/core.md, "Live candles and
quiet feeds"): every accepted tick changes the forming candle of each candle timeframe and the
running daily aggregate; so does every signal (the day's counts). The changes go out at most once
per interval of *stream time* per instrument: the first change after a quiet interval at once
(with the record that made it), later ones as soon as the stream time reaches the last send +
interval — from this instrument's next tick or from any other record of its partition. A window
that closes first sends its final candle instead (it supersedes the forming one), a day that
closes first its final summary: the last state is never lost. Event time only, so a replay sends
exactly the same updates.
"""

from __future__ import annotations

from processors.core.plain import StateFormatError, as_int, as_items, as_list


class LiveUpdates:
    """The pending live changes of one instrument and the stream time (µs) of its last send."""

    __slots__ = ("interval", "sent", "windows", "day")

    def __init__(self, interval_us: int) -> None:
        self.interval = interval_us
        self.sent: int | None = None  # stream time of the last send; None: never sent
        self.windows: set[tuple[int, int]] = set()  # (timeframe index, window start µs) changed since
        self.day = False  # the running daily aggregate changed since

    @property
    def pending(self) -> bool:
        return self.day or bool(self.windows)

    def due(self) -> int | None:
        """The stream time at which the pending changes go out (None: nothing pending)."""
        if not (self.day or self.windows):
            return None
        return self.sent + self.interval if self.sent is not None else 0

    def ready(self, now: int) -> bool:
        """Whether the pending changes go out at stream time ``now``."""
        due = self.due()
        return due is not None and now >= due

    def taken(self, now: int) -> None:
        """The pending changes went out at stream time ``now``."""
        self.sent = now
        self.windows = set()
        self.day = False

    def dump(self) -> list[object]:
        return [self.sent, sorted([index, start] for index, start in self.windows), self.day]

    @classmethod
    def load(cls, plain: object, interval_us: int) -> LiveUpdates:
        """Rebuild from :meth:`dump`; raises :class:`StateFormatError` for anything else."""
        sent, windows, day = as_list(plain, 3, "live updates")
        live = cls(interval_us)
        live.sent = None if sent is None else as_int(sent, "live update time")
        for item in as_items(windows, "live windows"):
            index, start = as_list(item, 2, "live window")
            live.windows.add((as_int(index, "live window timeframe"), as_int(start, "live window start")))
        if type(day) is not bool:
            raise StateFormatError("live updates: the day flag must be a bool")
        live.day = day
        return live
