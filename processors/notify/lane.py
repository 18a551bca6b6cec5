"""One channel's lane: a Quix Streams processor that reads ``signals`` and delivers to that channel.

Why one lane (consumer group, state store, process) per channel: a Kafka offset is
one cursor per partition. If every channel shared it, a channel waiting out a
``Retry-After`` or a rate limit would hold the cursor, and every other channel would
wait too. With a lane per channel, each channel has its own cursor and ledger, so a
slow or failing channel only delays itself.

Inside a lane (see docs/notify.md, "Inside a lane"): for each record the main thread
decides (:func:`processors.notify.ledger.decide`) and starts the delivery in the lane's
:class:`~processors.notify.inflight.DeliveryWindow` — up to the channel's burst (at most
``NOTIFY_MAX_IN_FLIGHT``) deliveries run at once as tasks of the window's event loop, sharing
the channel's token bucket — then reads on. Outcomes are recorded on the main thread: the ledger entry (and the dead letter,
if any) is written into the state of the checkpoint the record belongs to. Quix commits a
checkpoint every ``NOTIFY_COMMIT_INTERVAL_S`` or ``NOTIFY_COMMIT_EVERY`` records; its first
step flushes the lane's :class:`CheckpointHook`, which waits for every delivery still in
flight and records it. Then one Kafka transaction commits the ledger entries (changelog),
the dead letters and the consumer offsets of the whole batch — so the offset never moves
past a signal whose delivery is still pending, and the ledger never says "delivered" for
something that was not.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import signal as signals
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

from pydantic import ValidationError
from quixstreams import Application, State, message_context
from quixstreams.error_callbacks import default_on_processing_error
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import HeadersTuples
from quixstreams.sinks import BaseSink

from processors.notify import metrics
from processors.notify.channels import AsyncSender, Sender
from processors.notify.inflight import DeliveryWindow, InFlight, Outcome
from processors.notify.ledger import LedgerEntry, cooldown_key, decide, epoch_ms, ledger_key
from processors.notify.notification import Notification, render
from processors.notify.retention import LedgerRetention
from processors.notify.retry import (
    DeliveryFailed,
    PermanentDeliveryError,
    RetryPolicy,
    TokenBucket,
    TransientDeliveryError,
    deliver_with_retries,
    deliver_with_retries_async,
)
from processors.notify.spec import LaneSpec
from processors.notify.subscriptions import ConsoleChannel
from processors.runtime.observability import redact
from processors.runtime.quix_topics import register_with_changelog
from processors.runtime.rocksdb import small_state_options
from schemas.events import DeadLetter, Lineage, Signal, encode
from schemas.upcasters import UnsupportedSchemaVersionError, decode_signal

log = logging.getLogger(__name__)

DeadLetterWriter = Callable[[str, bytes], None]  # (key, encoded DeadLetter) → produced in the lane's transaction
_SUMMARY_EVERY_S = 30.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class LaneStopping(Exception):
    """The lane was told to stop while a delivery was waiting (backoff, ``Retry-After``, rate limit).

    The checkpoint is aborted, so the signal (and the rest of its batch) is delivered after the next
    start; raised out of the Quix app.
    """


class InterruptibleSleep:
    """The lane's ``sleep``: SIGTERM/SIGINT cut it short so a stop never waits out a long ``Retry-After``.

    Called blocking (``sleep(seconds)``, the inline console path) or awaited on the delivery
    window's event loop (:meth:`pause`). Quix installs its own signal handlers when the app
    starts; :meth:`arm` (called by the lane on the main thread, inside message processing) chains a
    handler in front of them.
    """

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._chained = False
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[bool]]] = set()
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise LaneStopping("stop requested during a delivery wait")

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` on the running loop; raise :class:`LaneStopping` if a stop comes first."""
        if self.stopping.is_set():
            raise LaneStopping("stop requested during a delivery wait")
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(seconds, _wake, woken, False)
        entry = (loop, woken)
        with self._lock:
            self._waiting.add(entry)
        try:
            if self.stopping.is_set() or await woken:
                raise LaneStopping("stop requested during a delivery wait")
        finally:
            timer.cancel()
            with self._lock:
                self._waiting.discard(entry)

    def stop(self) -> None:
        """Cut every wait short, now and from now on (the signal handler; tests)."""
        self.stopping.set()
        with self._lock:
            waiting = list(self._waiting)
        for loop, woken in waiting:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_wake, woken, True)

    def arm(self) -> None:
        if self._chained:
            return
        for signum in (signals.SIGTERM, signals.SIGINT):
            previous = signals.getsignal(signum)

            def handler(number: int, frame: Any, previous: Any = previous) -> None:
                self.stop()
                if callable(previous):
                    previous(number, frame)

            signals.signal(signum, handler)
        self._chained = True


def _wake(woken: asyncio.Future[bool], stopped: bool) -> None:
    if not woken.done():
        woken.set_result(stopped)


def _awaitable(sleep: Callable[[float], None]) -> Callable[[float], Awaitable[None]]:
    """An injected blocking ``sleep`` (tests: fake time, returns at once) as the window's awaitable pause."""

    async def pause(seconds: float) -> None:
        sleep(seconds)

    return pause


def on_processing_error(error: Exception, row: Any, logger: logging.Logger) -> bool:
    """Quix error callback: a stop during a delivery wait is expected, anything else is logged; never swallowed."""
    if isinstance(error, LaneStopping):
        log.info("lane stopping during a delivery wait; the signal will be delivered after the restart")
        return False
    return default_on_processing_error(error, row, logger)


class _Ticket(NamedTuple):
    """A delivery in flight, as the lane records it when it settles: into ``state``, the record's checkpoint."""

    signal: Signal
    subscriptions: tuple[str, ...]
    state: State[str, Any]
    key: Any  # the record key: the ledger's ids are flushed per key at the checkpoint
    origin: tuple[str, int, int]  # topic, partition, offset (a Lineage only if it is dead-lettered)


class LaneProcessor:
    """The per-message logic of a lane; the Quix app calls :meth:`handle` for every record of ``signals``
    and :meth:`settle` (through :class:`CheckpointHook`) before it commits a checkpoint.

    ``now`` (wall clock, for staleness, latency and signatures), ``clock``/``sleep``
    (monotonic time for backoff and rate limits; a ``sleep`` with an awaitable ``pause`` method,
    like :class:`InterruptibleSleep`, is awaited on the window's loop, any other one is called
    there) and ``rng`` (jitter) are injected. ``max_in_flight`` overrides the window size (the
    channel's burst, at most ``NOTIFY_MAX_IN_FLIGHT``). The processor owns ``sender`` and closes it.
    """

    def __init__(self, spec: LaneSpec, sender: Sender | AsyncSender, *, now: Callable[[], datetime] = utc_now,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, max_in_flight: int | None = None) -> None:
        self.spec = spec
        self.channel = spec.channel
        self.sender = sender
        self.settings = spec.settings
        self.now = now
        self.clock = clock
        self.sleep = sleep
        self.pause: Callable[[float], Awaitable[None]] = getattr(sleep, "pause", None) or _awaitable(sleep)
        self.sends_async = inspect.iscoroutinefunction(sender.send)
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        limit = spec.config.effective_rate_limit()
        self.bucket = TokenBucket(limit.per_second, limit.burst, clock) if limit else None
        self.policy = RetryPolicy(max_attempts=self.settings.max_attempts, initial_s=self.settings.backoff_initial_s,
                                  max_backoff_s=self.settings.backoff_max_s, deadline_s=self.settings.retry_deadline_s)
        self.dashboard_url = str(self.settings.dashboard_url) if self.settings.dashboard_url else None
        self.source = f"notify:{self.channel}"
        size = max_in_flight or min(self.settings.max_in_flight, limit.burst if limit else self.settings.max_in_flight)
        self.inline = isinstance(spec.config, ConsoleChannel)
        self.window: DeliveryWindow[_Ticket] = DeliveryWindow(1 if self.inline else size, name=f"deliver-{self.channel}")
        # Cooldown state is read and written only for subscriptions that have a cooldown.
        self.cooling = frozenset(s.name for s in spec.subscriptions if s.cooldown_s > 0)
        # Entries older than twice the staleness window are dropped (never for a renotify run: it ignores age).
        self.retention = LedgerRetention(self.settings.max_age_s, prune=not spec.renotify)
        self._pruned = metrics.LEDGER_PRUNED.labels(self.channel)
        self._dead_letters: DeadLetterWriter | None = None
        self._count = {name: counter.labels(self.channel) for name, counter in (
            ("delivered", metrics.DELIVERIES), ("duplicate", metrics.DUPLICATES), ("stale", metrics.SKIPPED_STALE),
            ("cooldown", metrics.DROPPED_BY_COOLDOWN), ("invalid", metrics.INVALID_SIGNALS))}
        self._latency = metrics.LATENCY.labels(self.channel)
        self._summary = {"delivered": 0, "dead_lettered": 0}
        self._summary_since = time.monotonic()
        self._arm: Callable[[], None] | None = getattr(sleep, "arm", None)

    def route_dead_letters(self, writer: DeadLetterWriter) -> None:
        """Where dead letters go: the Quix app's transactional producer (tests: a list)."""
        self._dead_letters = writer

    # ---- the main thread ---------------------------------------------------------------------

    def handle(self, value: bytes | None, key: Any, timestamp: int, headers: Any, state: State[str, Any]) -> None:
        """Process one record of ``signals``: decide, record what needs no delivery, start a delivery."""
        if self._arm is not None:
            self._arm()  # once, on the main thread, after Quix installed its signal handlers
            self._arm = None
        if len(self.window):
            self._settle(self.window.take_done())
        context = message_context()
        origin = (context.topic, context.partition, context.offset)
        if self.spec.stop_offsets is not None and origin[2] > self.spec.stop_offsets.get(origin[1], -1):
            return  # a renotify run re-announces what was in the log when it started, nothing newer
        try:
            if value is None:
                raise ValueError("empty record (tombstone)")
            signal = decode_signal(value)  # any release's signal, upcast (schemas/upcasters.py)
        except UnsupportedSchemaVersionError as error:
            self._count["invalid"].inc()
            log.warning("channel %s: record %s[%d]@%d has an unsupported schema version, dead-lettered",
                        self.channel, *origin)
            self._dead_letter(f"invalid:{origin[1]}:{origin[2]}", error.reason, str(error), value, origin)
            return
        except (ValidationError, ValueError) as error:
            self._count["invalid"].inc()
            log.warning("channel %s: record %s[%d]@%d is not a valid Signal, dead-lettered", self.channel, *origin)
            self._dead_letter(f"invalid:{origin[1]}:{origin[2]}", "invalid_signal", _short(error), value, origin)
            return
        ledger_hold: Hashable = (key, ledger_key(signal.signal_id))
        if len(self.window) and self.window.holding([ledger_hold]):
            self._count["duplicate"].inc()  # the same signal again while its delivery runs
            return
        # A delivery in flight that would set a cooldown this signal reads is settled first: the decision
        # must see its outcome, exactly as if the lane delivered one signal at a time.
        cooldown_holds = self._cooldown_holds(key, signal) if self.cooling else []
        if cooldown_holds and len(self.window):
            self._settle(self.window.take_holding(cooldown_holds))
        raw_entry = state.get(ledger_key(signal.signal_id))
        ledger = LedgerEntry.from_state(raw_entry) if isinstance(raw_entry, dict) else None
        last_sent = {name: state.get(cooldown_key(name, signal)) for name in self.cooling}
        verdict = decide(signal, self.spec.subscriptions, ledger, last_sent, self.now(), self.settings.max_age_s,
                         renotify=self.spec.renotify)
        if verdict.action == "deliver":
            ticket = _Ticket(signal, verdict.subscriptions, state, key, origin)
            notification = render(signal, self.dashboard_url)
            if self.inline:
                self._record(ticket, self._deliver_inline(notification))  # a line on stdout: no window
                return
            while self.window.full:
                self._settle(self.window.take_one())
            self.window.submit(ticket, [ledger_hold, *cooldown_holds], partial(self._deliver, notification))
            return
        if verdict.action == "unsubscribed":
            return
        if verdict.action == "duplicate":
            self._count["duplicate"].inc()
            log.debug("channel %s: signal %s already %s", self.channel, signal.signal_id,
                      ledger.status if ledger else "?")
            return
        self._count[verdict.action].inc()  # stale or cooldown: recorded, not sent
        status = verdict.ledger_status
        assert status is not None  # noqa: S101 - stale and cooldown always map to a status
        self._remember(state, key, signal, LedgerEntry(status, epoch_ms(self.now())))

    def settle(self) -> None:
        """Wait for every delivery in flight and record it; called before each checkpoint commit.

        Raises :class:`LaneStopping` if a stop cut a delivery's wait short: the checkpoint is then
        aborted, and the whole batch is read again after the restart.
        """
        try:
            self._settle(self.window.take_all())
        except LaneStopping:
            self.retention.discard()  # the checkpoint is aborted with everything noted in it
            raise
        dropped = self.retention.flush(self.now())
        if dropped:
            self._pruned.inc(dropped)
        if self._summary["delivered"] or self._summary["dead_lettered"]:
            elapsed = time.monotonic() - self._summary_since
            if elapsed >= _SUMMARY_EVERY_S:
                log.info("channel %s: %d delivered, %d dead-lettered in the last %.0fs", self.channel,
                         self._summary["delivered"], self._summary["dead_lettered"], elapsed)
                self._summary = {"delivered": 0, "dead_lettered": 0}
                self._summary_since = time.monotonic()

    def close(self) -> None:
        """Close the sender (on the window's loop for an HTTP channel) and stop the window."""
        try:
            if self.sends_async:
                self.window.call(self.sender.aclose())  # type: ignore[union-attr]
            else:
                self.sender.close()  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - closing idle connections on the way out; nothing to do about it
            log.debug("channel %s: closing the sender failed", self.channel, exc_info=True)
        self.window.close()

    def _cooldown_holds(self, key: Any, signal: Signal) -> list[Hashable]:
        return [(key, cooldown_key(subscription.name, signal)) for subscription in self.spec.subscriptions
                if subscription.name in self.cooling and subscription.matches(signal)]

    def _settle(self, flights: list[InFlight[_Ticket]]) -> None:
        stopping: LaneStopping | None = None
        for flight in flights:
            try:
                outcome = flight.result()
            except LaneStopping as error:
                stopping = error
                continue
            self._record(flight.ticket, outcome)
        if stopping is not None:
            raise stopping

    def _record(self, ticket: _Ticket, outcome: Outcome) -> None:
        signal, state = ticket.signal, ticket.state
        if outcome.failure is not None:
            failure = outcome.failure
            metrics.FAILURES.labels(self.channel, failure.reason).inc()
            log.error("channel %s: signal %s not delivered after %d attempt(s), sent to the DLQ: %s (%s)",
                      self.channel, signal.signal_id, failure.attempts, failure.reason, failure.detail)
            self._remember(state, ticket.key, signal,
                           LedgerEntry("dead_lettered", epoch_ms(self.now()), failure.attempts, failure.reason))
            self._dead_letter(signal.signal_id, failure.reason, failure.detail, signal.model_dump_json(),
                              ticket.origin)
            self._summary["dead_lettered"] += 1
            return
        assert outcome.report is not None and outcome.delivered_at is not None  # noqa: S101 - delivered
        self._count["delivered"].inc()
        self._latency.observe(max(0.0, (outcome.delivered_at - signal.ts_event).total_seconds()))
        self._remember(state, ticket.key, signal, LedgerEntry("delivered", epoch_ms(outcome.delivered_at), outcome.report.attempts))
        for name in ticket.subscriptions:
            if name in self.cooling:
                state.set(cooldown_key(name, signal), epoch_ms(signal.ts_event))
        log.debug("channel %s: delivered signal %s (%s %s %s %s) in %d attempt(s)", self.channel, signal.signal_id,
                  signal.side, signal.symbol, signal.rule, signal.timeframe, outcome.report.attempts)
        self._summary["delivered"] += 1

    def _remember(self, state: State[str, Any], key: Any, signal: Signal, entry: LedgerEntry) -> None:
        self.retention.remember(state, key, signal, entry)

    def _dead_letter(self, key: str, reason: str, detail: str, raw: bytes | str | None,
                     origin: tuple[str, int, int]) -> None:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="backslashreplace")
        letter = DeadLetter(source=self.source, reason=reason, detail=redact(detail)[:1000], raw=redact(raw or ""),
                            ts_init=self.now(), origin=Lineage(topic=origin[0], partition=origin[1], offset=origin[2]))
        if self._dead_letters is None:
            raise RuntimeError("the lane has nowhere to write dead letters (route_dead_letters was not called)")
        self._dead_letters(key, encode(letter))

    # ---- the deliveries (on the window's event loop; the console inline) --------------------------

    def _on_retry(self, signal_id: str) -> Callable[[TransientDeliveryError, float], None]:
        def on_retry(error: TransientDeliveryError, wait_s: float) -> None:
            metrics.RETRIES.labels(self.channel, error.reason).inc()
            log.warning("channel %s: signal %s attempt failed (%s), retrying in %.2fs",
                        self.channel, signal_id, error.reason, wait_s)

        return on_retry

    async def _deliver(self, notification: Notification) -> Outcome:
        """One delivery with its retries, a task of the window's loop; never records anything itself."""
        try:
            report = await deliver_with_retries_async(
                partial(self._attempt, notification), self.policy, clock=self.clock, sleep=self.pause, rng=self.rng,
                bucket=self.bucket, on_retry=self._on_retry(notification.signal_id))
        except DeliveryFailed as failure:
            return Outcome(failure=failure)
        return Outcome(report=report, delivered_at=self.now())

    async def _attempt(self, notification: Notification) -> None:
        try:
            if self.sends_async:
                await self.sender.send(notification)  # type: ignore[misc]
            else:
                await self.window.blocking(partial(self.sender.send, notification))
        except (TransientDeliveryError, PermanentDeliveryError):
            raise
        except Exception as error:  # noqa: BLE001 - a sender bug must not crash-loop the lane
            raise self._unexpected(error) from None

    def _deliver_inline(self, notification: Notification) -> Outcome:
        """The console's delivery, on the main thread."""
        def attempt() -> None:
            try:
                self.sender.send(notification)
            except (TransientDeliveryError, PermanentDeliveryError):
                raise
            except Exception as error:  # noqa: BLE001 - a sender bug must not crash-loop the lane
                raise self._unexpected(error) from None

        try:
            report = deliver_with_retries(attempt, self.policy, clock=self.clock, sleep=self.sleep, rng=self.rng,
                                          bucket=self.bucket, on_retry=self._on_retry(notification.signal_id))
        except DeliveryFailed as failure:
            return Outcome(failure=failure)
        return Outcome(report=report, delivered_at=self.now())

    def _unexpected(self, error: Exception) -> PermanentDeliveryError:
        log.error("channel %s: unexpected error while sending", self.channel, exc_info=error)
        return PermanentDeliveryError("unexpected_error", f"{type(error).__name__}: {redact(str(error))[:200]}")


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        problems = [f"{'.'.join(str(p) for p in item['loc']) or 'value'}: {item['msg']}"
                    for item in error.errors(include_url=False, include_input=False)[:5]]
        return "; ".join(problems)
    return str(error)[:300]


class CheckpointHook(BaseSink):
    """The lane's place in Quix's checkpoint: ``flush`` is the first step of every commit.

    Quix's sinks are "send right away, confirm on flush()"; here flush waits for the deliveries
    still in flight and records them (ledger entries, dead letters) before Quix produces the
    changelog and commits the transaction. A failing flush aborts the checkpoint.
    """

    def __init__(self, processor: LaneProcessor) -> None:
        super().__init__()
        self._processor = processor

    def add(self, value: Any, key: Any, timestamp: int, headers: HeadersTuples, topic: str, partition: int,
            offset: int) -> None:
        """Nothing to collect: the processor tracks its deliveries itself."""

    def flush(self) -> None:
        self._processor.settle()


def build_application(spec: LaneSpec, processor: LaneProcessor,
                      on_message_processed: Callable[[str, int, int], None] | None = None) -> Application:
    """The Quix app of one lane: ``signals`` → :meth:`LaneProcessor.handle`; dead letters → ``notifications.dlq``."""
    settings = spec.settings
    topics = settings.topics()
    # A lane may hold the poll loop for a whole retry deadline; Kafka must not evict it meanwhile.
    hold_ms = int((settings.retry_deadline_s + 120) * 1000)
    member = settings.lane_member_id(spec.channel, renotify=spec.renotify)
    consumer_config: dict[str, object] = {"max.poll.interval.ms": hold_ms, "isolation.level": "read_committed",
                                          "session.timeout.ms": 10000}
    if not spec.renotify:
        # Static membership: a restarted lane takes its partitions back at once. A one-off renotify run
        # leaves its group on exit instead, so the next one can reposition it straight away.
        consumer_config["group.instance.id"] = member
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(settings.client_config()),
        consumer_group=settings.lane_group(spec.channel, renotify=spec.renotify),
        auto_offset_reset="earliest",
        commit_interval=settings.commit_interval_s,
        commit_every=settings.commit_every,
        processing_guarantee="exactly-once",
        state_dir=str(settings.lane_state_dir(spec.channel, renotify=spec.renotify)),
        use_changelog_topics=not spec.renotify,
        rocksdb_options=small_state_options(settings.rocksdb_write_buffer_mb, settings.rocksdb_block_cache_mb),
        consumer_extra_config=consumer_config,
        producer_extra_config={"transaction.timeout.ms": hold_ms, "transactional.id": member},
        loglevel=None,
        on_message_processed=on_message_processed,
        on_processing_error=on_processing_error,
    )
    signals_topic = app.topic(topics.signals.name, value_deserializer="bytes", key_deserializer="bytes")
    dead_letters = app.topic(topics.notifications_dlq.name, value_serializer="bytes", key_serializer="str")
    stream = app.dataframe(signals_topic)
    source = stream  # registering the ledger store creates its changelog topic: looked for until the broker lists it
    stream = register_with_changelog(lambda: source.update(processor.handle, stateful=True, metadata=True))
    # Registered as a sink (flushed first at every commit) without a per-record callback: nothing to collect.
    stream.processing_context.sink_manager.register(CheckpointHook(processor))
    # The app's own transactional producer: a dead letter commits with the ledger entry and the offset.
    producer = stream.processing_context.producer
    processor.route_dead_letters(lambda key, payload: producer.produce(topic=dead_letters.name, key=key, value=payload))
    return app
