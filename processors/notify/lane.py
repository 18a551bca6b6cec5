"""One channel's lane: a Quix Streams processor that reads ``signals`` and delivers to that channel.

Why one lane (consumer group, state store, process) per channel: a Kafka offset is
one cursor per partition. If every channel shared it, a channel waiting out a
``Retry-After`` or a rate limit would hold the cursor, and every other channel would
wait too. With a lane per channel, each channel has its own cursor and ledger, so a
slow or failing channel only delays itself.

Inside a lane everything is synchronous, per message (see docs/notify.md):
decide (:func:`processors.notify.ledger.decide`) → deliver with retries → write the
ledger entry (and the dead letter, if any) → the checkpoint commits after every
message (``commit_every=1``) under Quix's exactly-once guarantee, so the ledger
entry, the dead letter and the consumer offset become durable together, and the
offset never moves past a signal whose delivery is still pending.
"""

from __future__ import annotations

import logging
import random
import signal as signals
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from quixstreams import Application, State, message_context
from quixstreams.error_callbacks import default_on_processing_error
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models.serializers import SerializationContext, Serializer

from processors.notify import metrics
from processors.notify.channels import Sender
from processors.notify.ledger import LedgerEntry, cooldown_key, decide, epoch_ms, ledger_key
from processors.notify.notification import render
from processors.notify.retry import (
    DeliveryFailed,
    PermanentDeliveryError,
    RetryPolicy,
    TokenBucket,
    TransientDeliveryError,
    deliver_with_retries,
)
from processors.notify.spec import LaneSpec
from processors.runtime.observability import redact
from processors.runtime.rocksdb import small_state_options
from schemas.events import DeadLetter, Lineage, Signal, encode

log = logging.getLogger(__name__)

DeadLetterRecord = tuple[str, bytes]


def utc_now() -> datetime:
    return datetime.now(UTC)


class LaneStopping(Exception):
    """The lane was told to stop while a delivery was waiting (backoff, ``Retry-After``, rate limit).

    The signal is left uncommitted, so the next start delivers it; raised out of the Quix app.
    """


class InterruptibleSleep:
    """The lane's ``sleep``: SIGTERM/SIGINT cut it short so a stop never waits out a long ``Retry-After``.

    Quix installs its own signal handlers when the app starts; on first use (always on the main
    thread, inside message processing) this chains a handler in front of them.
    """

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._chained = False

    def __call__(self, seconds: float) -> None:
        if not self._chained:
            self._chain()
        if self.stopping.wait(seconds):
            raise LaneStopping("stop requested during a delivery wait")

    def _chain(self) -> None:
        for signum in (signals.SIGTERM, signals.SIGINT):
            previous = signals.getsignal(signum)

            def handler(number: int, frame: Any, previous: Any = previous) -> None:
                self.stopping.set()
                if callable(previous):
                    previous(number, frame)

            signals.signal(signum, handler)
        self._chained = True


def on_processing_error(error: Exception, row: Any, logger: logging.Logger) -> bool:
    """Quix error callback: a stop during a delivery wait is expected, anything else is logged; never swallowed."""
    if isinstance(error, LaneStopping):
        log.info("lane stopping during a delivery wait; the signal will be delivered after the restart")
        return False
    return default_on_processing_error(error, row, logger)


class LaneProcessor:
    """The per-message logic of a lane; the Quix app calls :meth:`handle` for every record of ``signals``.

    ``now`` (wall clock, for staleness, latency and signatures), ``clock``/``sleep``
    (monotonic time for backoff and rate limits) and ``rng`` (jitter) are injected.
    """

    def __init__(self, spec: LaneSpec, sender: Sender, *, now: Callable[[], datetime] = utc_now,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.spec = spec
        self.channel = spec.channel
        self.sender = sender
        self.settings = spec.settings
        self.now = now
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        limit = spec.config.effective_rate_limit()
        self.bucket = TokenBucket(limit.per_second, limit.burst, clock) if limit else None
        self.policy = RetryPolicy(max_attempts=self.settings.max_attempts, initial_s=self.settings.backoff_initial_s,
                                  max_backoff_s=self.settings.backoff_max_s, deadline_s=self.settings.retry_deadline_s)
        self.dashboard_url = str(self.settings.dashboard_url) if self.settings.dashboard_url else None
        self.source = f"notify:{self.channel}"

    def handle(self, value: bytes | None, key: Any, timestamp: int, headers: Any, state: State[str, Any]) -> list[DeadLetterRecord]:
        """Process one record of ``signals``; returns the dead letters to produce (usually none)."""
        context = message_context()
        origin = Lineage(topic=context.topic, partition=context.partition, offset=context.offset)
        if self.spec.stop_offsets is not None and origin.offset > self.spec.stop_offsets.get(origin.partition, -1):
            return []  # a renotify run re-announces what was in the log when it started, nothing newer
        try:
            if value is None:
                raise ValueError("empty record (tombstone)")
            signal = Signal.model_validate_json(value)
        except (ValidationError, ValueError) as error:
            metrics.INVALID_SIGNALS.labels(self.channel).inc()
            log.warning("channel %s: record %s[%d]@%d is not a valid Signal, dead-lettered",
                        self.channel, origin.topic, origin.partition, origin.offset)
            key = f"invalid:{origin.partition}:{origin.offset}"
            return [self._dead_letter(key, "invalid_signal", _short(error), value, origin)]
        raw_entry = state.get(ledger_key(signal.signal_id))
        ledger = LedgerEntry.from_state(raw_entry) if isinstance(raw_entry, dict) else None
        last_sent = {s.name: state.get(cooldown_key(s.name, signal)) for s in self.spec.subscriptions}
        verdict = decide(signal, self.spec.subscriptions, ledger, last_sent, self.now(), self.settings.max_age_s,
                         renotify=self.spec.renotify)
        if verdict.action == "unsubscribed":
            return []
        if verdict.action == "duplicate":
            metrics.DUPLICATES.labels(self.channel).inc()
            log.debug("channel %s: signal %s already %s", self.channel, signal.signal_id,
                      ledger.status if ledger else "?")
            return []
        if verdict.action in ("stale", "cooldown"):
            counter = metrics.SKIPPED_STALE if verdict.action == "stale" else metrics.DROPPED_BY_COOLDOWN
            counter.labels(self.channel).inc()
            status = verdict.ledger_status
            assert status is not None  # noqa: S101 - stale and cooldown always map to a status
            state.set(ledger_key(signal.signal_id), LedgerEntry(status, epoch_ms(self.now())).to_state())
            return []
        return self._deliver(signal, verdict.subscriptions, state, origin)

    def _deliver(self, signal: Signal, subscriptions: tuple[str, ...], state: State[str, Any],
                 origin: Lineage) -> list[DeadLetterRecord]:
        notification = render(signal, self.dashboard_url)

        def on_retry(error: TransientDeliveryError, wait_s: float) -> None:
            metrics.RETRIES.labels(self.channel, error.reason).inc()
            log.warning("channel %s: signal %s attempt failed (%s), retrying in %.2fs",
                        self.channel, signal.signal_id, error.reason, wait_s)

        try:
            report = deliver_with_retries(lambda: self._send_once(notification), self.policy, clock=self.clock,
                                          sleep=self.sleep, rng=self.rng, bucket=self.bucket, on_retry=on_retry)
        except DeliveryFailed as failure:
            metrics.FAILURES.labels(self.channel, failure.reason).inc()
            log.error("channel %s: signal %s not delivered after %d attempt(s), sent to the DLQ: %s (%s)",
                      self.channel, signal.signal_id, failure.attempts, failure.reason, failure.detail)
            state.set(ledger_key(signal.signal_id),
                      LedgerEntry("dead_lettered", epoch_ms(self.now()), failure.attempts, failure.reason).to_state())
            return [self._dead_letter(signal.signal_id, failure.reason, failure.detail, signal.model_dump_json(),
                                      origin)]
        delivered_at = self.now()
        metrics.DELIVERIES.labels(self.channel).inc()
        metrics.LATENCY.labels(self.channel).observe(max(0.0, (delivered_at - signal.ts_event).total_seconds()))
        state.set(ledger_key(signal.signal_id),
                  LedgerEntry("delivered", epoch_ms(delivered_at), report.attempts).to_state())
        for name in subscriptions:
            state.set(cooldown_key(name, signal), epoch_ms(signal.ts_event))
        log.info("channel %s: delivered signal %s (%s %s %s %s) in %d attempt(s)", self.channel, signal.signal_id,
                 signal.side, signal.symbol, signal.rule, signal.timeframe, report.attempts)
        return []

    def _send_once(self, notification: Any) -> None:
        try:
            self.sender.send(notification)
        except (TransientDeliveryError, PermanentDeliveryError):
            raise
        except Exception as error:  # noqa: BLE001 - a sender bug must not crash-loop the lane
            log.exception("channel %s: unexpected error while sending", self.channel)
            raise PermanentDeliveryError("unexpected_error", f"{type(error).__name__}: {redact(str(error))[:200]}") from None

    def _dead_letter(self, key: str, reason: str, detail: str, raw: bytes | str | None,
                     origin: Lineage) -> DeadLetterRecord:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="backslashreplace")
        letter = DeadLetter(source=self.source, reason=reason, detail=redact(detail)[:1000], raw=redact(raw or ""),
                            ts_init=self.now(), origin=origin)
        return key, encode(letter)


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        problems = [f"{'.'.join(str(p) for p in item['loc']) or 'value'}: {item['msg']}"
                    for item in error.errors(include_url=False, include_input=False)[:5]]
        return "; ".join(problems)
    return str(error)[:300]


class _DeadLetterValue(Serializer):
    """The dead-letter topic's value serializer: a ``(key, payload)`` row → its payload bytes."""

    def __call__(self, value: DeadLetterRecord, ctx: SerializationContext) -> bytes:
        return value[1]


def build_application(spec: LaneSpec, processor: LaneProcessor,
                      on_message_processed: Callable[[str, int, int], None] | None = None) -> Application:
    """The Quix app of one lane: ``signals`` → :meth:`LaneProcessor.handle` → ``notifications.dlq``."""
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
        commit_every=1,
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
    signals = app.topic(topics.signals.name, value_deserializer="bytes", key_deserializer="bytes")
    dead_letters = app.topic(topics.notifications_dlq.name, value_serializer=_DeadLetterValue(),
                             key_serializer="str")
    stream = app.dataframe(signals)
    stream = stream.apply(processor.handle, stateful=True, metadata=True, expand=True)
    stream.to_topic(dead_letters, key=lambda record: record[0])
    return app
