"""Stream time of one input partition, and which instruments on it have work due.

The rule (docs/core.md, "Live candles and quiet feeds"): a partition's **stream time** is the highest
event time of the ticks accepted on it so far, in log order (as Kafka Streams defines it). Each
instrument's pipeline says when it next has something to do at a given stream time — a candle
window whose end + grace is reached, a UTC day to close, a throttled live update to send
(:meth:`processors.core.pipeline.SymbolProcessor.deadline`). After each record the runner advances
every instrument of the partition whose deadline the stream time has reached, so a quiet instrument's
windows close when the *other* instruments' ticks move the stream time on. Everything is decided by
the log's content and order, so a replay or a backfill of the same log does exactly the same.

:class:`PartitionClock` is that bookkeeping for one partition: the stream time and each instrument's
next deadline. Runners: the stream processor (one per Kafka partition, stored in the state store with
the instruments' states), the batch CLI (the file is one partition) and the Spark backfill (a group
receives its partition's stream-time steps). Pure; JSON-compatible state.
"""

from __future__ import annotations

import heapq
from typing import Any

from processors.core.plain import StateFormatError, as_int


class PartitionClock:
    """The stream time of one partition and the instruments (keys) with a deadline on it."""

    __slots__ = ("stream_time", "deadlines", "_heap")

    def __init__(self) -> None:
        self.stream_time: int | None = None
        self.deadlines: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []  # (deadline, key); stale entries are skipped when popped

    def observe(self, ts_us: int) -> int:
        """An accepted tick at ``ts_us``: the stream time after it."""
        current = self.stream_time
        if current is None or ts_us > current:
            self.stream_time = ts_us
            return ts_us
        return current

    def candidate(self, ts_us: int) -> int:
        """The stream time a tick at ``ts_us`` would make (``observe`` once it is accepted)."""
        current = self.stream_time
        return ts_us if current is None or ts_us > current else current

    def schedule(self, key: str, deadline: int | None) -> None:
        """Set (or clear, with None) the next deadline of instrument ``key``."""
        deadlines = self.deadlines
        if deadline is None:
            deadlines.pop(key, None)
            return
        if deadlines.get(key) != deadline:
            deadlines[key] = deadline
            heapq.heappush(self._heap, (deadline, key))

    def due(self) -> list[str]:
        """The instruments whose deadline the stream time has reached, earliest deadline first (then by key).

        Their deadlines are cleared: the runner advances each and schedules its next deadline.
        """
        now = self.stream_time
        heap = self._heap
        if now is None or not heap or heap[0][0] > now:
            return []
        found: list[tuple[int, str]] = []
        deadlines = self.deadlines
        while heap and heap[0][0] <= now:
            deadline, key = heapq.heappop(heap)
            if deadlines.get(key) == deadline:
                del deadlines[key]
                found.append((deadline, key))
        found.sort()
        return [key for _, key in found]

    def dump(self) -> dict[str, Any]:
        return {"stream_time": self.stream_time, "deadlines": dict(sorted(self.deadlines.items()))}

    @classmethod
    def load(cls, plain: object) -> PartitionClock:
        """Rebuild from :meth:`dump`; raises :class:`StateFormatError` for anything else."""
        clock = cls()
        if not isinstance(plain, dict) or not isinstance(plain.get("deadlines"), dict):
            raise StateFormatError("partition clock: expected a dict with deadlines")
        stream_time = plain.get("stream_time")
        clock.stream_time = None if stream_time is None else as_int(stream_time, "stream time")
        for key, deadline in plain["deadlines"].items():
            clock.schedule(str(key), as_int(deadline, f"deadline of {key}"))
        return clock
