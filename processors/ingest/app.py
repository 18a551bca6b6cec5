"""``stockstream ingest`` as a process: logging, secrets, metrics endpoint, topics, signals, run.

Exit codes: 0 after a clean stop (source finished or SIGTERM/SIGINT, everything
flushed); 1 if records could not be delivered before the flush timeout or the producer
hit a fatal error; 2 for bad configuration (raised before anything starts).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from processors.ingest.backoff import Backoff
from processors.ingest.factory import build_source
from processors.ingest.metrics import IngestMetrics
from processors.ingest.publisher import FatalProducerError, TickPublisher
from processors.ingest.recall import recall_published
from processors.ingest.service import IngestService, stop_on_signals, wall_clock
from processors.ingest.settings import IngestSettings
from processors.ingest.sources.base import Source
from processors.ingest.sources.file_position import check_writable
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.kafka_health import KafkaConnection
from processors.runtime.observability import HEALTH, register_secret, setup_logging, start_metrics_server

log = logging.getLogger("processors.ingest")


class ConfigurationError(RuntimeError):
    """Bad configuration found at start; the message says what to change."""


def register_secrets(settings: IngestSettings) -> None:
    for secret in (settings.alphavantage_api_key, settings.sasl_password):
        if secret is not None:
            register_secret(secret.get_secret_value())


def check_state_folders(settings: IngestSettings) -> None:
    """Refuse to start when the file source could not save where it stopped (it would re-read forever)."""
    if settings.source != "file":
        return
    folder = settings.file_position_dir
    try:
        check_writable(folder)
    except OSError as error:
        raise ConfigurationError(
            f"cannot write the file positions to {folder} ({error.strerror or error}): set INGEST_FILE_POSITION_DIR"
            " to a writable folder (in a container: a volume)"
        ) from None


def main(settings: IngestSettings) -> int:
    """Run the ingest service until its source ends or a signal arrives; returns the exit code."""
    began = time.monotonic()
    register_secrets(settings)
    setup_logging(settings.log_level, "ingest")
    check_state_folders(settings)
    metrics = IngestMetrics()
    try:
        start_metrics_server(settings.metrics_host, settings.metrics_port, "ingest")
    except OSError as error:
        raise ConfigurationError(
            f"cannot serve /metrics on {settings.metrics_host}:{settings.metrics_port} ({error});"
            " set METRICS_PORT (0 disables it)") from None
    source = build_source(settings, wall_clock)
    try:
        return asyncio.run(_run(settings, source, metrics, began))
    except FatalProducerError as error:
        log.critical("%s; exiting so a supervisor restarts a fresh producer", error)
        return 1


async def ensure_topics_until_ready(settings: IngestSettings, stop: asyncio.Event) -> bool:
    """Create the ticks and DLQ topics, retrying while Kafka is unreachable; False if stopped first."""
    topics = settings.topics()
    backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds, random.Random())  # noqa: S311 - jitter, not security
    while not stop.is_set():
        try:
            await asyncio.to_thread(ensure_topics, settings, [topics.ticks, topics.ticks_dlq], 10.0)
            HEALTH.clear("kafka")
            KafkaConnection("producer").reachable()
            return True
        except Exception as error:  # noqa: BLE001 - any Kafka failure here is retried, never fatal
            delay = backoff.next_delay()
            HEALTH.problem("kafka", "Kafka not reachable at start-up")
            KafkaConnection("producer").unreachable()
            log.warning("Kafka at %s not ready (%s); retrying in %.1fs", settings.bootstrap_servers, error, delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
    return False


async def remember_published(settings: IngestSettings, service: IngestService) -> None:
    """Seed the duplicate window from the log, so a restart does not publish again what is there."""
    began = time.monotonic()
    for attempt in range(1, 6):
        try:
            keys = await asyncio.to_thread(recall_published, settings, settings.dedup_window)
            break
        except Exception as error:  # noqa: BLE001 - without the recall the service still runs, as before
            # A topic created a moment ago may not be served yet ("not leader for partition"): retry a little.
            if attempt == 5:
                log.warning("could not read the published ticks back from %s (%s); a restart may publish some"
                            " again", settings.topics().ticks.name, error)
                return
            await asyncio.sleep(1.0)
    for key in keys:
        service.recent.seen(key)
    log.info("duplicate window seeded with the %d newest ticks of the log in %.2fs", len(keys),
             time.monotonic() - began)


async def _run(settings: IngestSettings, source: Source, metrics: IngestMetrics, began: float) -> int:
    stop = asyncio.Event()
    stop_on_signals(stop)
    if not await ensure_topics_until_ready(settings, stop):
        log.info("stopped before Kafka was ready")
        return 0
    publisher = TickPublisher(settings, settings.source, metrics)
    topics = settings.topics()
    log.info("ingest ready in %.2fs: source=%s symbols=%s → %s (rejects → %s), metrics port %s",
             time.monotonic() - began, settings.source, ",".join(settings.active_symbols()) or "(from input)",
             topics.ticks.name, topics.ticks_dlq.name, settings.metrics_port or "off")
    service = IngestService(settings, source, publisher, metrics)
    await remember_published(settings, service)
    HEALTH.mark_ready()
    summary = await service.run(stop)
    if summary.undelivered or summary.failed:
        log.error("stopped with undelivered records: %s", summary.line())
        return 1
    log.info("stopped cleanly: %s", summary.line())
    return 0
