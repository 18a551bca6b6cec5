"""A lane's deliveries in flight: run concurrently, settled (recorded) on the lane's main thread.

The lane (:class:`processors.notify.lane.LaneProcessor`) decides on the main thread, then hands
each delivery to a :class:`DeliveryWindow`: up to ``size`` deliveries run at once on worker
threads (retries, backoff and the shared token bucket included), each returning an
:class:`Outcome`. Outcomes are never recorded by the workers: the lane settles them on its main
thread — when a later signal depends on one (same signal id, or a cooldown key it would set),
when the window is full, opportunistically as they finish, and all of them before every
checkpoint commit — so every ledger write, metric and dead letter happens inside the Quix
checkpoint whose Kafka transaction also commits the consumer offset.

Console deliveries are a line on stdout: the lane runs them inline, without a window (a
hand-off to a thread would cost more than the write).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, NamedTuple, TypeVar

from processors.notify.retry import DeliveryFailed, DeliveryReport

Ticket = TypeVar("Ticket")


class Outcome(NamedTuple):
    """What one delivery came to: delivered (``report``, ``delivered_at``) or failed for good (``failure``)."""

    report: DeliveryReport | None = None
    delivered_at: datetime | None = None
    failure: DeliveryFailed | None = None


@dataclass
class InFlight(Generic[Ticket]):
    """One delivery running: the lane's own record of it (``ticket``), what it holds, its future."""

    ticket: Ticket
    holds: frozenset[Hashable]
    future: Future[Outcome] = field(repr=False)


class DeliveryWindow(Generic[Ticket]):
    """At most ``size`` deliveries in flight on ``size`` worker threads, kept in submission order.

    Not thread-safe by design: only the lane's main thread (or Quix's flush thread while the main
    thread waits for it) submits, takes and settles. ``holds`` are what a delivery may change when it
    settles (its ledger key, the cooldown keys it would set); :meth:`holding` finds the deliveries a new
    decision depends on.
    """

    def __init__(self, size: int, *, name: str = "deliver") -> None:
        if size < 1:
            raise ValueError("a delivery window holds at least one delivery")
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
        self._running: OrderedDict[int, InFlight[Ticket]] = OrderedDict()
        self._by_hold: dict[Hashable, set[int]] = {}
        self._next_id = 0
        self._lock = threading.Lock()  # guards the tables against Quix's revoke-flush thread

    def __len__(self) -> int:
        return len(self._running)

    @property
    def full(self) -> bool:
        return len(self._running) >= self.size

    def submit(self, ticket: Ticket, holds: Iterable[Hashable], deliver: Callable[[], Outcome]) -> None:
        """Start ``deliver``; the caller made room first (``full`` is False)."""
        future = self._executor.submit(deliver)
        with self._lock:
            identity = self._next_id
            self._next_id += 1
            flight = InFlight(ticket, frozenset(holds), future)
            self._running[identity] = flight
            for hold in flight.holds:
                self._by_hold.setdefault(hold, set()).add(identity)

    def holding(self, holds: Iterable[Hashable]) -> bool:
        """Whether a delivery in flight holds any of ``holds``."""
        return any(self._by_hold.get(hold) for hold in holds)

    def take_holding(self, holds: Iterable[Hashable]) -> list[InFlight[Ticket]]:
        """Remove and return, in submission order, the deliveries holding any of ``holds`` (waiting for them)."""
        with self._lock:
            wanted = {identity for hold in holds for identity in self._by_hold.get(hold, ())}
        return self._take([identity for identity in list(self._running) if identity in wanted], block=True)

    def take_done(self) -> list[InFlight[Ticket]]:
        """Remove and return the deliveries that have finished, in submission order (never waits)."""
        return self._take([identity for identity, flight in list(self._running.items()) if flight.future.done()],
                          block=False)

    def take_one(self) -> list[InFlight[Ticket]]:
        """Wait until at least one delivery finished; remove and return every finished one."""
        if self._running:
            wait([flight.future for flight in self._running.values()], return_when=FIRST_COMPLETED)
        return self.take_done()

    def take_all(self) -> list[InFlight[Ticket]]:
        """Wait for every delivery in flight; remove and return them all, in submission order."""
        return self._take(list(self._running), block=True)

    def _take(self, identities: list[int], *, block: bool) -> list[InFlight[Ticket]]:
        taken: list[InFlight[Ticket]] = []
        for identity in identities:
            flight = self._running.get(identity)
            if flight is None:
                continue
            if block:
                wait([flight.future])
            with self._lock:
                self._running.pop(identity, None)
                for hold in flight.holds:
                    owners = self._by_hold.get(hold)
                    if owners is not None:
                        owners.discard(identity)
                        if not owners:
                            del self._by_hold[hold]
            taken.append(flight)
        return taken

    def __iter__(self) -> Iterator[InFlight[Ticket]]:
        return iter(list(self._running.values()))

    def close(self) -> None:
        """Stop the workers (a delivery still running finishes in the background; its result is dropped)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

