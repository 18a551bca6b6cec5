"""The Kafka side of ingestion: an idempotent, ``acks=all`` producer with back-pressure.

librdkafka does the hard part: with ``enable.idempotence`` it retries every batch
until the broker has it exactly once and in order, and with ``message.timeout.ms=0``
(the default here) a message never expires, so a broker outage only pauses delivery.
When the local queue is full, :meth:`TickPublisher.send` waits (serving delivery
reports) instead of raising — the source simply slows down.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from processors.ingest.metrics import IngestMetrics
from processors.ingest.settings import IngestSettings
from processors.runtime.kafka_health import KafkaConnection
from schemas.events import DeadLetter, Tick, encode
from schemas.instruments import instrument_key

log = logging.getLogger(__name__)


PARTITIONER = "murmur2_random"
"""Kafka's Java client partitioner (and Quix's, which sets ``murmur2``): murmur2 of the key, positive,
modulo the partition count, so a key lands where every other client puts it. ``_random`` only
changes records without a key (spread at random, as Java does); ingest never sends one."""


def producer_config(settings: IngestSettings) -> dict[str, Any]:
    """librdkafka settings of the ingest producer (the bench's bare baseline uses the same)."""
    return {
        **settings.client_config(),
        "partitioner": PARTITIONER,
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": settings.message_timeout_ms,
        "linger.ms": settings.linger_ms,
        "queue.buffering.max.messages": settings.queue_max_messages,
        "compression.type": "lz4",
        "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 2_000,
        "reconnect.backoff.max.ms": 2_000,
    }


class FatalProducerError(RuntimeError):
    """librdkafka declared the idempotent producer unusable; the process must restart."""


class TickPublisher:
    """Produces ticks (key = the instrument ``SYMBOL@venue``) and dead letters (key = source) for one source.

    ``accepted`` counts records handed to librdkafka; after :meth:`flush` returns 0
    every one of them is acknowledged by the broker.
    """

    def __init__(self, settings: IngestSettings, source: str, metrics: IngestMetrics) -> None:
        topics = settings.topics()
        self.ticks_topic = topics.ticks.name
        self.dlq_topic = topics.ticks_dlq.name
        self.source = source
        self.metrics = metrics
        self.accepted_ticks = 0
        self.accepted_dead_letters = 0
        self.delivered_ticks = 0
        self.failed = 0
        self.fatal: str | None = None
        # librdkafka's own log lines go through Python logging, so they share the format and the secret mask.
        self.connection = KafkaConnection("producer")
        self._producer = Producer({**producer_config(settings), "error_cb": self._on_error,
                                   "logger": logging.getLogger("librdkafka"),
                                   **self.connection.client_config(settings.statistics_interval_ms)})
        metrics.queue_length.set_function(lambda: len(self._producer))
        self._published = metrics.published.labels(source)
        self._since_poll = 0

    async def send_tick(self, tick: Tick) -> None:
        await self._produce(self.ticks_topic, instrument_key(tick.symbol, tick.venue), encode(tick))
        self.accepted_ticks += 1

    async def send_dead_letter(self, letter: DeadLetter) -> None:
        await self._produce(self.dlq_topic, letter.source.encode(), encode(letter))
        self.accepted_dead_letters += 1

    async def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fatal is not None:
            raise FatalProducerError(self.fatal)
        waits = 0
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                # Local queue full (broker slow or down): serve delivery reports and wait, 1 ms growing
                # to 50 ms, so a brief stall costs little and a long outage does not spin.
                if waits == 0:
                    self.metrics.backpressure_waits.inc()
                self._producer.poll(0)
                await asyncio.sleep(min(0.05, 0.001 * 2**waits))
                waits += 1
        self._since_poll += 1
        if self._since_poll >= 64:  # serve delivery reports in batches: a poll per record costs ~15 % throughput
            self._since_poll = 0
            self._producer.poll(0)

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> int:
        """Wait until every accepted record is acknowledged; returns how many are still pending."""
        return int(self._producer.flush(timeout_s))

    def pending(self) -> int:
        return len(self._producer)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        topic = message.topic()
        if error is not None:
            self.failed += 1
            kind = "ticks" if topic == self.ticks_topic else "dlq"
            self.metrics.delivery_failures.labels(kind).inc()
            log.error("Kafka refused a %s record for good: %s", kind, error)
            return
        if topic == self.ticks_topic:
            self.delivered_ticks += 1
            self._published.inc()
            key = message.key()
            # The key is the instrument SYMBOL@venue; the freshness gauges are per symbol of this source.
            self.metrics.tick_published(self.source, key.decode().rpartition("@")[0] if key else "")

    def _on_error(self, error: KafkaError) -> None:
        self.metrics.kafka_errors.labels(error.name()).inc()
        if error.fatal():
            self.fatal = f"fatal Kafka producer error: {error}"
            log.critical(self.fatal)
        else:
            # Transport errors while a broker is down: librdkafka keeps retrying on its own.
            log.warning("Kafka: %s (retrying)", error)
