"""Pending signal outcomes of one instrument: what a scorecard needs to know after each signal.

Called by :class:`processors.core.pipeline.SymbolProcessor`: :meth:`PendingOutcomes.mature` with every
accepted tick of the instrument (before the tick's own signals are added), then
:meth:`PendingOutcomes.add` with each signal the tick emitted. The definition (docs/core.md,
"Scorecards"): at each horizon h, the outcome of a signal is the first accepted tick of the instrument
processed after the signal was emitted (a close's signals: before the tick that reached the close) whose
event time is ≥ signal time + h; return = side · (p_h / p_signal − 1),
net = gross − fee. Pure: no clock, no I/O.

**Storage.** Pending outcomes can be many (a tick strategy firing every few ticks, a one-day horizon):
they must not be rewritten at every checkpoint. Signals get consecutive sequence numbers and are kept
in immutable *segments* of :data:`SEGMENT` entries (segment k = sequence numbers k·S … k·S + S − 1);
only the last segment grows. Per horizon the state keeps ``low`` (every signal below it has matured at
that horizon) and the few signals above ``low`` that matured early (a candle signal's time is older
than the tick signals emitted before it, so maturity is not strictly in sequence order). So a
checkpoint writes the small :meth:`main` document, the segments that grew since the last one and deletes the
segments every horizon is done with (:meth:`changes`). :meth:`load` reads the segments back through
a callback (the stream's state store) or from a full :meth:`dump` (in-memory runners, tests).

A horizon removed from the configuration drops its pending outcomes; a horizon added applies to the
signals emitted from then on (the state records from which sequence number each horizon tracks).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from processors.core.plain import StateFormatError, as_int, as_items, as_list

SEGMENT = 32
"""Signals per stored segment (a segment is written while it fills, then only deleted)."""
ENTRY_FIELDS = 7
_UNITS_MS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1))


def horizon_ms(text: str) -> int:
    """``"5m"`` → ``300000``: a positive whole number of ms, s, m, h or d (at most 366 days); ``ValueError``."""
    number, unit = text[:-2], "ms"
    if not text.endswith("ms"):
        number, unit = text[:-1], text[-1:]
    size = dict(_UNITS_MS).get(unit)
    if size is None or not number.isdigit() or number.startswith("0") or len(number) > 9:
        raise ValueError(f"a horizon is a positive whole number of ms, s, m, h or d (5m, 1h, 1d), got {text!r}")
    milliseconds = int(number) * size
    if milliseconds > 366 * 86_400_000:
        raise ValueError(f"horizon {text!r} is longer than 366 days")
    return milliseconds


def horizon_label(horizon_ms: int) -> str:
    """``60000`` → ``"1m"``; the largest unit that divides it exactly (``90000`` → ``"90s"``)."""
    for unit, size in _UNITS_MS:
        if horizon_ms % size == 0:
            return f"{horizon_ms // size}{unit}"
    raise ValueError(f"horizon {horizon_ms!r} ms is not a whole number of milliseconds")


class Pending(NamedTuple):
    """A signal waiting for its outcomes (what the outcome event repeats of it)."""

    signal_id: str
    strategy: str
    version: str | None
    timeframe: str
    side: str
    price: float
    ts_us: int

    def dump(self) -> list[Any]:
        return list(self)


class Matured(NamedTuple):
    """One outcome that matured: the signal, the horizon (ms) and the gross and net returns."""

    signal: Pending
    horizon_ms: int
    return_gross: float
    return_net: float


class _Horizon:
    """One horizon's bookkeeping: tracked from ``first``, done below ``low`` and in ``early``."""

    __slots__ = ("ms", "us", "first", "low", "early")

    def __init__(self, ms: int, first: int) -> None:
        self.ms = ms
        self.us = ms * 1000
        self.first = first
        self.low = first
        self.early: set[int] = set()

    def done(self, sequence: int) -> bool:
        return sequence < self.low or sequence in self.early

    def finish(self, sequence: int) -> None:
        if sequence == self.low:
            self.low += 1
            early = self.early
            if early:
                while self.low in early:
                    early.remove(self.low)
                    self.low += 1
        else:
            self.early.add(sequence)


class PendingOutcomes:
    """The signals of one instrument whose outcomes are not all known yet (see the module docstring)."""

    __slots__ = ("horizons", "fee", "entries", "next", "next_due", "queue", "lanes", "_lane_ends", "_first_segment",
                 "_grown_from", "_dropped")

    def __init__(self, horizons_ms: Sequence[int], fee: float) -> None:
        if any(h <= 0 for h in horizons_ms) or len(set(horizons_ms)) != len(horizons_ms):
            raise ValueError("horizons must be positive and distinct")
        self.horizons = [_Horizon(h, 0) for h in sorted(horizons_ms)]
        self.fee = fee
        self.entries: dict[int, Pending] = {}
        self.next = 0
        self.next_due: int | None = None  # the smallest due time of any pending outcome (None: nothing pending)
        # Pending outcomes wait in *lanes*: per signal timeframe, one lane per horizon position. A timeframe's
        # signals come in event-time order, so a lane's outcomes are due in the order they were added (sequence
        # numbers, oldest first). ``queue`` is a heap of (due time µs, sequence number, horizon position, lane)
        # holding each non-empty lane's first outcome, and the outcomes of a signal older than its timeframe's
        # last one (then lane None): outcomes pop in (due, sequence, position) order — exactly the order
        # :meth:`mature` returns them — and the heap stays about as small as the number of lanes, not the
        # number of pending signals.
        self.queue: list[tuple[int, int, int, deque[int] | None]] = []
        self.lanes: dict[str, list[deque[int]]] = {}
        self._lane_ends: dict[str, int] = {}  # per timeframe: the event time (µs) of the last signal put in its lanes
        self._first_segment = 0  # the oldest segment the store holds
        self._grown_from: int | None = None  # the lowest segment a signal was added to since the last :meth:`changes`
        self._dropped: set[int] = set()  # segments emptied since the last :meth:`changes`

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, signal: Pending) -> None:
        """A signal just emitted: its outcomes are due at each horizon after its event time."""
        horizons = self.horizons
        if not horizons:
            return
        sequence = self.next
        self.next = sequence + 1
        self.entries[sequence] = signal
        if self._grown_from is None:
            self._grown_from = sequence // SEGMENT
        self._enqueue(sequence, signal, range(len(horizons)))
        due = signal.ts_us + horizons[0].us  # horizons are sorted: the shortest is due first
        if self.next_due is None or due < self.next_due:
            self.next_due = due

    def _enqueue(self, sequence: int, signal: Pending, positions: Sequence[int]) -> None:
        """Put ``signal``'s outcomes at the horizons ``positions`` in their lanes (see ``queue`` in ``__init__``)."""
        horizons = self.horizons
        queue = self.queue
        ts_us = signal.ts_us
        timeframe = signal.timeframe
        end = self._lane_ends.get(timeframe)
        if end is not None and ts_us < end:  # older than its timeframe's last signal: in the heap alone
            for position in positions:
                heapq.heappush(queue, (ts_us + horizons[position].us, sequence, position, None))
            return
        self._lane_ends[timeframe] = ts_us
        lanes = self.lanes.get(timeframe)
        if lanes is None:
            lanes = self.lanes[timeframe] = [deque() for _ in horizons]
        for position in positions:
            lane = lanes[position]
            if not lane:
                heapq.heappush(queue, (ts_us + horizons[position].us, sequence, position, lane))
            lane.append(sequence)

    def mature(self, ts_us: int, price: float) -> list[Matured]:
        """The outcomes an accepted tick at ``ts_us`` and ``price`` completes (due ≤ ``ts_us``), in order.

        Ordered by due time, then signal order, then horizon: deterministic for equal inputs.
        """
        next_due = self.next_due
        if next_due is None or ts_us < next_due:
            return []
        found: list[Matured] = []
        horizons = self.horizons
        count = len(horizons)
        entries = self.entries
        queue = self.queue
        fee = self.fee
        while queue and queue[0][0] <= ts_us:
            _, sequence, position, lane = queue[0]
            signal = entries[sequence]
            change = price / signal.price - 1.0
            gross = change if signal.side == "BUY" else -change
            horizon = horizons[position]
            found.append(Matured(signal, horizon.ms, gross, gross - fee))
            if sequence == horizon.low and not horizon.early:  # in sequence order: finish() in short
                horizon.low = sequence + 1
            else:
                horizon.finish(sequence)
            if lane is not None:
                lane.popleft()  # it was the lane's first: the next one (if any) takes its place in the heap
                if lane:
                    after = lane[0]
                    heapq.heapreplace(queue, (entries[after].ts_us + horizon.us, after, position, lane))
                else:
                    heapq.heappop(queue)
            else:
                heapq.heappop(queue)
            later = position + 1
            while later < count and horizons[later].done(sequence):  # a horizon that never tracked it
                later += 1
            if later == count:  # its longer horizons are due later, so this was its last outcome
                del entries[sequence]
        self._release()
        return found

    def _release(self) -> None:
        """Note the segments every horizon is done with (to delete them) and the next due time."""
        horizons = self.horizons
        floor = (min([h.low for h in horizons]) if horizons else self.next) // SEGMENT
        if floor > self._first_segment:
            self._dropped.update(range(self._first_segment, floor))
            self._first_segment = floor
        queue = self.queue
        self.next_due = queue[0][0] if queue else None

    # -- storage ---------------------------------------------------------------------------------

    def main(self) -> dict[str, Any]:
        """The small document stored with the instrument's state (segments are stored apart)."""
        return {
            "next": self.next,
            "first_segment": self._first_segment,
            "horizons": [[h.ms, h.first, h.low, sorted(h.early)] for h in self.horizons],
        }

    def segment(self, number: int) -> list[list[Any]]:
        """The stored form of segment ``number``: its signals, in order (matured ones included)."""
        start = number * SEGMENT
        return [self.entries[s].dump() if s in self.entries else [] for s in range(start, min(start + SEGMENT, self.next))]

    def segment_numbers(self) -> range:
        """Every segment the store must hold."""
        last = (self.next - 1) // SEGMENT if self.next else -1
        return range(self._first_segment, last + 1)

    def changes(self, consume: bool = True) -> tuple[dict[int, list[list[Any]]], list[int]]:
        """(segments to write, segments to delete) since the last consumed call; for write-behind stores.

        ``consume=False`` leaves them pending (the store calls :meth:`consumed` once the write is its
        own; writing a segment or deleting one twice is harmless).
        """
        written: dict[int, list[list[Any]]] = {}
        if self._grown_from is not None:
            last = (self.next - 1) // SEGMENT
            for number in range(max(self._grown_from, self._first_segment), last + 1):
                written[number] = self.segment(number)
        dropped = sorted(self._dropped)
        if consume:
            self.consumed()
        return written, dropped

    def consumed(self) -> None:
        """The changes :meth:`changes` gave are stored."""
        self._grown_from = None
        self._dropped = set()

    def dump(self) -> dict[str, Any]:
        """Everything, segments included (in-memory runners and tests)."""
        return {**self.main(), "segments": {str(n): self.segment(n) for n in self.segment_numbers()}}

    @classmethod
    def load(cls, plain: object, horizons_ms: Sequence[int], fee: float,
             read_segment: Callable[[int], object] | None = None) -> PendingOutcomes:
        """Rebuild from :meth:`dump` (segments inline) or :meth:`main` plus ``read_segment(number)``.

        Horizons no longer configured are dropped; new ones track the signals emitted from now on.
        Raises :class:`StateFormatError` for a malformed document or a missing segment.
        """
        outcomes = cls(horizons_ms, fee)
        if not isinstance(plain, dict):
            raise StateFormatError("pending outcomes: expected a dict")
        outcomes.next = as_int(plain.get("next"), "pending outcomes next")
        outcomes._first_segment = as_int(plain.get("first_segment"), "pending outcomes first segment")
        stored = {}
        for item in as_items(plain.get("horizons"), "pending outcome horizons"):
            ms, first, low, early = as_list(item, 4, "pending outcome horizon")
            stored[as_int(ms, "horizon")] = (as_int(first, "horizon first"), as_int(low, "horizon low"),
                                             {as_int(s, "horizon early") for s in as_items(early, "early")})
        for horizon in outcomes.horizons:
            found = stored.get(horizon.ms)
            if found is None:
                horizon.first = horizon.low = outcomes.next
            else:
                horizon.first, horizon.low, horizon.early = found
        inline = plain.get("segments")
        for number in outcomes.segment_numbers():
            raw = inline.get(str(number)) if isinstance(inline, dict) else (
                read_segment(number) if read_segment is not None else None)
            if raw is None:
                raise StateFormatError(f"pending outcomes: segment {number} is missing")
            for offset, item in enumerate(as_items(raw, "pending outcome segment")):
                if item == []:
                    continue
                try:
                    signal_id, strategy, version, timeframe, side, price, ts_us = as_list(
                        item, ENTRY_FIELDS, "pending outcome")
                    signal = Pending(str(signal_id), str(strategy), None if version is None else str(version),
                                     str(timeframe), str(side), float(price), as_int(ts_us, "signal time"))
                except (TypeError, ValueError) as error:
                    raise StateFormatError(f"pending outcome: {error}") from None
                outcomes.entries[number * SEGMENT + offset] = signal
        horizons = outcomes.horizons
        entries = outcomes.entries
        for sequence in sorted(entries):
            waiting = [position for position, horizon in enumerate(horizons) if not horizon.done(sequence)]
            if not waiting:
                del entries[sequence]
                continue
            outcomes._enqueue(sequence, entries[sequence], waiting)
        outcomes._release()  # a dropped horizon may free old segments: they are in the next changes()
        return outcomes
