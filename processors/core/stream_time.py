"""Stream time of one input partition and venue, and which instruments of it have work due.

The rule (docs/core.md, "Live candles and quiet feeds"): the **stream time** of a venue on a
partition is the highest event time of the venue's ticks the pipeline accepted on that partition so
far, in log order (Kafka Streams' definition, per venue: one partition carries independent feeds —
venues with their own latency, the composite index written back with its processing delay — and
one clock for all would make every tick of a slower feed late; a tick refused for its time, price
or volume never moves it). Each instrument's
pipeline says when it next has something to do at a given stream time — a candle window whose
end + grace is reached, a UTC day to close, a throttled live update to send
(:meth:`processors.core.pipeline.SymbolProcessor.deadline`). After each record, the runner brings
every instrument of the venue on the partition whose deadline the stream time has reached to that
stream time (:func:`advance_partition`), earliest deadline first, then by instrument: so a quiet
instrument's windows close when the *other* instruments of its venue move the stream time on, and
everything is decided by the partition's content and order — a replay does exactly the same.

:class:`PartitionClock` is that bookkeeping for one partition and venue: the stream time and each
instrument's next deadline, JSON-compatible for the state store. Pure: no clock, no I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from processors.core.plain import StateFormatError, as_int
from processors.core.timeutil import to_us

if TYPE_CHECKING:
    from processors.core.pipeline import StepOutput, SymbolProcessor
    from schemas.events import Lineage, Tick


class PartitionClock:
    """The stream time (µs) of one venue on one partition and its instruments (keys) with a deadline."""

    __slots__ = ("stream_time", "deadlines", "_heap")

    def __init__(self) -> None:
        self.stream_time: int | None = None
        self.deadlines: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []  # (deadline, key); entries no longer in deadlines are skipped

    def observe(self, ts_us: int) -> None:
        """An accepted tick at ``ts_us`` (the stream time never goes back)."""
        if self.stream_time is None or ts_us > self.stream_time:
            self.stream_time = ts_us

    def schedule(self, key: str, deadline: int | None) -> None:
        """Set (or clear, with None) the next deadline of instrument ``key``."""
        deadlines = self.deadlines
        if deadline is None:
            deadlines.pop(key, None)
        elif deadlines.get(key) != deadline:
            deadlines[key] = deadline
            heapq.heappush(self._heap, (deadline, key))
            if len(self._heap) > 4 * len(deadlines) + 64:  # stale entries: rebuild rather than grow
                self._heap = [(due, name) for name, due in deadlines.items()]
                heapq.heapify(self._heap)

    def due(self) -> list[str]:
        """The instruments whose deadline the stream time has reached, earliest deadline first, then by key.

        Their deadlines are cleared: the runner brings each to the stream time and schedules its next one.
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
        if not isinstance(plain, dict) or not isinstance(plain.get("deadlines"), dict):
            raise StateFormatError("partition clock: expected a dict with deadlines")
        clock = cls()
        stream_time = plain.get("stream_time")
        clock.stream_time = None if stream_time is None else as_int(stream_time, "stream time")
        for key, deadline in plain["deadlines"].items():
            clock.schedule(str(key), as_int(deadline, f"deadline of {key}"))
        return clock


def process_in_partition(clock: PartitionClock, key: str, processor: SymbolProcessor, tick: Tick, lineage: Lineage,
                         processor_of: Callable[[str], SymbolProcessor]) -> list[tuple[str, StepOutput]]:
    """One record of a partition: its instrument's step, then every instrument the stream time made due.

    ``clock`` is the one of the tick's venue on the partition; ``processor`` is instrument ``key``'s;
    ``processor_of(other)`` returns another instrument's (one with a deadline, so it has a state). Returns the outputs in emission order: the tick's own
    instrument first, then the others (earliest deadline first, then by key).
    """
    output = processor.process(tick, lineage, clock.stream_time)
    if not output.rejections:
        clock.observe(to_us(tick.ts_event))
    clock.schedule(key, processor.deadline())
    outputs = [(key, output)]
    if clock.deadlines:
        outputs += advance_partition(clock, tick, lineage, processor_of)
    return outputs


def advance_partition(clock: PartitionClock, tick: Tick, lineage: Lineage,
                      processor_of: Callable[[str], SymbolProcessor]) -> list[tuple[str, StepOutput]]:
    """Bring every instrument whose deadline the stream time has reached to it (``tick``: the record that moved it;
    what the advances emit carries the closed windows' own origins, not ``tick``'s)."""
    outputs = []
    now = clock.stream_time
    for other in clock.due():
        assert now is not None  # noqa: S101 - due() is empty without a stream time
        processor = processor_of(other)
        outputs.append((other, processor.advance(now, tick, lineage)))
        clock.schedule(other, processor.deadline())
    return outputs
