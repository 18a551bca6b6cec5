"""A lane's deliveries in flight: run concurrently on one event loop, settled (recorded) on the lane's main thread.

The lane (:class:`processors.notify.lane.LaneProcessor`) decides on the main thread, then hands
each delivery to a :class:`DeliveryWindow`: up to ``size`` deliveries run at once as tasks of the
window's event loop (one thread per lane, whatever the window size): retries, backoff, the shared
token bucket and the HTTP exchanges of the HTTP channels are coroutines there, so a delivery
costs no thread and no thread hand-off of its own. The blocking channels (email, browser) run
their attempts on the window's worker threads (:meth:`DeliveryWindow.blocking`).

Outcomes are never recorded by the loop: the lane settles them on its main thread — when a later
signal depends on one (same signal id, or a cooldown key it would set), when the window is full,
opportunistically as they finish, and all of them before every checkpoint commit — so every
ledger write, metric and dead letter happens inside the Quix checkpoint whose Kafka transaction
also commits the consumer offset.

Console deliveries are a line on stdout: the lane runs them inline, without a window (a
hand-off to the loop would cost more than the write).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from processors.notify.retry import DeliveryFailed, DeliveryReport

Ticket = TypeVar("Ticket")
Result = TypeVar("Result")


class Outcome(NamedTuple):
    """What one delivery came to: delivered (``report``, ``delivered_at``) or failed for good (``failure``)."""

    report: DeliveryReport | None = None
    delivered_at: datetime | None = None
    failure: DeliveryFailed | None = None


@dataclass
class InFlight(Generic[Ticket]):
    """One delivery: the lane's own record of it (``ticket``), what it holds, and — once taken — how it ended.

    ``outcome`` is set when the delivery returned; ``error`` when it raised (a stop cutting a wait
    short, or a bug), to be raised again on the main thread.
    """

    ticket: Ticket
    holds: frozenset[Hashable]
    outcome: Outcome | None = field(default=None, repr=False)
    error: BaseException | None = field(default=None, repr=False)

    def result(self) -> Outcome:
        """The outcome, or the delivery's exception raised here."""
        if self.error is not None:
            raise self.error
        assert self.outcome is not None  # noqa: S101 - taken flights are finished
        return self.outcome


Start = Callable[[], Coroutine[Any, Any, Outcome]]


class DeliveryWindow(Generic[Ticket]):
    """At most ``size`` deliveries in flight as tasks of one event loop, taken in submission order.

    The loop runs on its own daemon thread (``name``). Only the lane's main thread (or Quix's
    flush thread while the main thread waits for it) submits and takes; the loop thread only runs
    the deliveries and reports their ends. ``holds`` are what a delivery may change when it
    settles (its ledger key, the cooldown keys it would set); :meth:`holding` finds the deliveries
    a new decision depends on.
    """

    def __init__(self, size: int, *, name: str = "deliver") -> None:
        if size < 1:
            raise ValueError("a delivery window holds at least one delivery")
        self.size = size
        self._name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=name, daemon=True)
        self._thread.start()
        self._workers: ThreadPoolExecutor | None = None
        self._running: OrderedDict[int, InFlight[Ticket]] = OrderedDict()
        self._by_hold: dict[Hashable, set[int]] = {}
        self._next_id = 0
        # Shared with the loop thread: deliveries to start, and the ends reported.
        self._changed = threading.Condition()
        self._incoming: list[tuple[int, Start]] = []
        self._ended: dict[int, tuple[Outcome | None, BaseException | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def __len__(self) -> int:
        return len(self._running)

    @property
    def full(self) -> bool:
        return len(self._running) >= self.size

    def submit(self, ticket: Ticket, holds: Iterable[Hashable], start: Start) -> None:
        """Run ``start()`` on the loop; the caller made room first (``full`` is False).

        Submissions are handed over in batches: the loop is woken once for all the deliveries
        submitted before it got round to starting them.
        """
        identity = self._next_id
        self._next_id += 1
        flight = InFlight(ticket, frozenset(holds))
        with self._changed:
            self._running[identity] = flight
            for hold in flight.holds:
                self._by_hold.setdefault(hold, set()).add(identity)
            self._incoming.append((identity, start))
            wake = len(self._incoming) == 1
        if wake:
            self.loop.call_soon_threadsafe(self._start_incoming)

    def _start_incoming(self) -> None:  # loop thread
        with self._changed:
            starting, self._incoming = self._incoming, []
        for identity, start in starting:
            task = self.loop.create_task(self._run(identity, start))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, identity: int, start: Start) -> None:  # loop thread
        outcome: Outcome | None = None
        error: BaseException | None = None
        try:
            outcome = await start()
        except BaseException as failure:  # noqa: BLE001 - reported to the main thread, which raises it
            error = failure
        with self._changed:
            self._ended[identity] = (outcome, error)
            self._changed.notify_all()

    def blocking(self, call: Callable[[], Result]) -> Awaitable[Result]:
        """Run a blocking ``call`` on one of the window's ``size`` worker threads (from a delivery on the loop)."""
        if self._workers is None:
            self._workers = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix=f"{self._name}-io")
        return self.loop.run_in_executor(self._workers, call)

    def holding(self, holds: Iterable[Hashable]) -> bool:
        """Whether a delivery in flight holds any of ``holds``."""
        return any(self._by_hold.get(hold) for hold in holds)

    def take_holding(self, holds: Iterable[Hashable]) -> list[InFlight[Ticket]]:
        """Remove and return, in submission order, the deliveries holding any of ``holds`` (waiting for them)."""
        with self._changed:
            wanted = {identity for hold in holds for identity in self._by_hold.get(hold, ())}
        return self._take([identity for identity in list(self._running) if identity in wanted], block=True)

    def take_done(self) -> list[InFlight[Ticket]]:
        """Remove and return the deliveries that have finished, in submission order (never waits)."""
        with self._changed:
            if not self._ended:
                return []
            finished = [identity for identity in self._running if identity in self._ended]
        return self._take(finished, block=False)

    def take_one(self) -> list[InFlight[Ticket]]:
        """Wait until at least one delivery finished; remove and return every finished one."""
        with self._changed:
            while self._running and not self._ended:
                self._changed.wait()
        return self.take_done()

    def take_all(self) -> list[InFlight[Ticket]]:
        """Wait for every delivery in flight; remove and return them all, in submission order."""
        return self._take(list(self._running), block=True)

    def _take(self, identities: list[int], *, block: bool) -> list[InFlight[Ticket]]:
        taken: list[InFlight[Ticket]] = []
        with self._changed:
            for identity in identities:
                flight = self._running.get(identity)
                if flight is None:
                    continue
                while block and identity not in self._ended:
                    self._changed.wait()
                if identity not in self._ended:
                    continue
                flight.outcome, flight.error = self._ended.pop(identity)
                del self._running[identity]
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

    def call(self, coroutine: Coroutine[Any, Any, Result], timeout_s: float = 10.0) -> Result:
        """Run ``coroutine`` on the loop and wait for its result (the lane's start-up and shutdown chores)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        """Stop the loop and the workers (a delivery still running is cancelled; its result is dropped)."""
        if self.loop.is_closed():
            return

        def cancel_and_stop() -> None:
            for task in list(self._tasks):
                task.cancel()
            self.loop.stop()

        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(cancel_and_stop)
            self._thread.join(5.0)
        if self._workers is not None:
            self._workers.shutdown(wait=False, cancel_futures=True)
        if not self._thread.is_alive():
            self.loop.close()
