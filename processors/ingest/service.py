"""The ingest loop: one source's outcomes → duplicate guard → Kafka (ticks, DLQ), metrics and logs.

:class:`IngestService` is what the CLI runs and what integration tests run in-process
against the real broker. It never crashes on bad input or on a source error: a
rejected record becomes a dead letter, a source problem is logged and counted, and an
unexpected exception inside a source restarts that source after a back-off. It ends
when the source ends (file, simulator with a count) or when ``stop`` is set
(SIGTERM/SIGINT); either way it flushes the producer before returning. A source's
:class:`~processors.ingest.sources.base.Checkpoint` is saved only after a flush found every
record produced before it acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from processors.ingest.backoff import Backoff
from processors.ingest.dedup import RecentKeys
from processors.ingest.metrics import IngestMetrics
from processors.ingest.publisher import FatalProducerError, TickPublisher
from processors.ingest.settings import IngestSettings
from processors.ingest.sources.base import (
    Accepted,
    BudgetLeft,
    Checkpoint,
    Outcome,
    Reconnecting,
    Rejected,
    SequenceGap,
    Source,
    SourceProblem,
)
from processors.runtime.observability import redact
from schemas.events import DeadLetter

log = logging.getLogger(__name__)


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class IngestSummary:
    """What one run did; ``undelivered`` > 0 means the final flush timed out."""

    received: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    delivered: int = 0
    undelivered: int = 0
    failed: int = 0

    def line(self) -> str:
        return (f"received={self.received} accepted={self.accepted} delivered={self.delivered}"
                f" rejected={self.rejected} duplicates={self.duplicates} undelivered={self.undelivered}"
                f" failed={self.failed}")


class IngestService:
    """Runs one source into Kafka until it ends or ``stop`` is set."""

    def __init__(
        self,
        settings: IngestSettings,
        source: Source,
        publisher: TickPublisher,
        metrics: IngestMetrics,
        now: Callable[[], datetime] = wall_clock,
    ) -> None:
        self.settings = settings
        self.source = source
        self.publisher = publisher
        self.metrics = metrics
        self.now = now
        self.recent = RecentKeys(settings.dedup_window)
        self.summary = IngestSummary()
        self._reasons_logged: set[str] = set()
        self._received = metrics.received.labels(source.name)  # bound once: the hot path skips label lookups
        self._duplicates = metrics.duplicates.labels(source.name)

    async def run(self, stop: asyncio.Event) -> IngestSummary:
        self.metrics.track_ages(self.source.name, self.source.symbols)
        pump = asyncio.create_task(self._pump(), name="ingest-pump")
        poller = asyncio.create_task(self._serve_delivery_reports(), name="ingest-poller")
        stopper = asyncio.create_task(stop.wait(), name="ingest-stop")
        try:
            await asyncio.wait({pump, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, poller, stopper):
                task.cancel()
            results = await asyncio.gather(pump, poller, stopper, return_exceptions=True)
        pending = self.publisher.pending()
        if pending:
            log.info("flushing %d record(s) to Kafka (up to %.0fs)", pending, self.settings.flush_timeout_seconds)
        self.summary.undelivered = await asyncio.to_thread(self.publisher.flush, self.settings.flush_timeout_seconds)
        self.summary.delivered = self.publisher.delivered_ticks
        self.summary.failed = self.publisher.failed
        if isinstance(results[0], FatalProducerError):
            raise results[0]
        return self.summary

    async def _pump(self) -> None:
        backoff = Backoff(self.settings.retry_initial_seconds, self.settings.retry_max_seconds, random.Random())  # noqa: S311 - jitter, not security
        while True:
            try:
                async for outcome in self.source.stream():
                    await self.handle(outcome)
                return
            except FatalProducerError:
                raise
            except Exception:  # a bug or an unforeseen source failure: log it, count it, start the source again
                delay = backoff.next_delay()
                log.exception("source %s failed unexpectedly; restarting it in %.1fs", self.source.name, delay)
                self.metrics.source_errors.labels(self.source.name, "unexpected").inc()
                await asyncio.sleep(delay)

    async def _serve_delivery_reports(self) -> None:
        # Sources can be idle for long (Alpha Vantage waits minutes): delivery reports still get served.
        while True:
            self.publisher.poll()
            await asyncio.sleep(0.1)

    async def handle(self, outcome: Outcome) -> None:
        name = self.source.name
        if isinstance(outcome, Accepted):
            self.summary.received += 1
            self._received.inc()
            tick = outcome.tick
            if self.recent.seen((tick.source, tick.source_id)):
                self.summary.duplicates += 1
                self._duplicates.inc()
                log.debug("duplicate %s/%s not published again", tick.source, tick.source_id)
                return
            await self.publisher.send_tick(tick)
            self.summary.accepted += 1
        elif isinstance(outcome, Rejected):
            self.summary.received += 1
            self.summary.rejected += 1
            self._received.inc()
            self.metrics.rejected.labels(name, outcome.reason).inc()
            detail = redact(outcome.detail)
            if outcome.reason not in self._reasons_logged:
                self._reasons_logged.add(outcome.reason)
                log.warning("rejected a %s record (%s): %s — sent to the DLQ; further %s rejections log at DEBUG",
                            name, outcome.reason, detail, outcome.reason)
            else:
                log.debug("rejected a %s record (%s): %s", name, outcome.reason, detail)
            await self.publisher.send_dead_letter(DeadLetter(
                source=name, reason=outcome.reason, detail=detail, raw=redact(outcome.raw), ts_init=self.now()))
        elif isinstance(outcome, SequenceGap):
            self.metrics.sequence_gaps.labels(name, outcome.symbol).inc()
            self.metrics.sequence_missing.labels(name, outcome.symbol).inc(outcome.missing)
            log.warning("%s %s: trade ids jumped from %d to %d (%d missing)",
                        name, outcome.symbol, outcome.expected - 1, outcome.received, outcome.missing)
        elif isinstance(outcome, SourceProblem):
            self.metrics.source_errors.labels(name, outcome.kind).inc()
            log.warning("%s: %s: %s", name, outcome.kind, redact(outcome.detail))
        elif isinstance(outcome, Reconnecting):
            self.metrics.reconnects.labels(name).inc()
            log.info("%s: reconnecting in %.1fs (attempt %d)", name, outcome.delay_seconds, outcome.attempt)
        elif isinstance(outcome, BudgetLeft):
            self.metrics.budget_remaining.set(outcome.remaining)
        elif isinstance(outcome, Checkpoint):
            await self._checkpoint(outcome)

    async def _checkpoint(self, checkpoint: Checkpoint) -> None:
        """Save the source's position once every record produced so far is acknowledged by Kafka.

        Not saved while records are pending after the flush timeout or any delivery failed: a restart
        then reads again from the last saved position (the recall window drops what the log holds).
        """
        pending = await asyncio.to_thread(self.publisher.flush, self.settings.flush_timeout_seconds)
        if pending or self.publisher.failed:
            log.warning("%s: position at line %d not saved (%d records unacknowledged, %d failed); a restart"
                        " reads from the last saved one", checkpoint.what, checkpoint.line, pending,
                        self.publisher.failed)
            return
        checkpoint.save()
        log.debug("%s: position saved at line %d", checkpoint.what, checkpoint.line)


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (the service then flushes and returns); call inside the loop."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, _on_signal, stop, signum)


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    if not stop.is_set():
        log.info("signal %d received: stopping, flushing what was accepted", signum)
    stop.set()
