"""Prometheus metrics of the ingest service (names ``stockstream_ingest_*``).

Created against an explicit registry so in-process tests get their own; the service
uses the default registry that ``/metrics`` serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class IngestMetrics:
    """Every ingest metric, labelled by ``source`` (and ``reason``/``kind``/``symbol`` where bounded)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY, monotonic: Callable[[], float] = time.monotonic):
        self._monotonic = monotonic
        self.received = Counter(
            "stockstream_ingest_records_received_total",
            "Records received from the source (valid or not)", ["source"], registry=registry)
        self.published = Counter(
            "stockstream_ingest_records_published_total",
            "Ticks acknowledged by Kafka (acks=all)", ["source"], registry=registry)
        self.rejected = Counter(
            "stockstream_ingest_records_rejected_total",
            "Records refused and sent to the ticks DLQ, by reason code", ["source", "reason"], registry=registry)
        self.duplicates = Counter(
            "stockstream_ingest_records_duplicate_total",
            "Redelivered records (same source + source_id) not published again", ["source"], registry=registry)
        self.source_errors = Counter(
            "stockstream_ingest_source_errors_total",
            "Errors talking to the source, by kind", ["source", "kind"], registry=registry)
        self.reconnects = Counter(
            "stockstream_ingest_reconnects_total",
            "Reconnection attempts to the source", ["source"], registry=registry)
        self.sequence_gaps = Counter(
            "stockstream_ingest_sequence_gaps_total",
            "Jumps in the source's per-symbol trade ids", ["source", "symbol"], registry=registry)
        self.sequence_missing = Counter(
            "stockstream_ingest_sequence_missing_total",
            "Trade ids skipped by those jumps", ["source", "symbol"], registry=registry)
        self.delivery_failures = Counter(
            "stockstream_ingest_delivery_failures_total",
            "Records Kafka refused for good (not retriable)", ["topic_kind"], registry=registry)
        self.kafka_errors = Counter(
            "stockstream_ingest_kafka_errors_total",
            "Client-level Kafka errors reported by librdkafka (broker down, …)", ["code"], registry=registry)
        self.backpressure_waits = Counter(
            "stockstream_ingest_backpressure_waits_total",
            "Times the producer queue was full and ingestion paused", registry=registry)
        self.last_tick_age = Gauge(
            "stockstream_ingest_last_tick_age_seconds",
            "Seconds since the last published tick (since start while none)", ["source"], registry=registry)
        self.symbol_last_tick_age = Gauge(
            "stockstream_ingest_symbol_last_tick_age_seconds",
            "Seconds since the last published tick of a configured symbol", ["source", "symbol"],
            registry=registry)
        self.budget_remaining = Gauge(
            "stockstream_ingest_alphavantage_requests_remaining",
            "Alpha Vantage requests left in today's budget (UTC day)", registry=registry)
        self.queue_length = Gauge(
            "stockstream_ingest_producer_queue_messages",
            "Messages waiting in the producer's local queue", registry=registry)
        self._last_published: dict[tuple[str, str | None], float] = {}

    def track_ages(self, source: str, symbols: tuple[str, ...] | None) -> None:
        """Start the last-tick-age gauges: per source, and per symbol when the set is bounded."""
        start = self._monotonic()
        self._last_published[(source, None)] = start
        self.last_tick_age.labels(source).set_function(lambda: self._age(source, None))
        for symbol in symbols or ():
            self._last_published[(source, symbol)] = start
            self.symbol_last_tick_age.labels(source, symbol).set_function(
                lambda symbol=symbol: self._age(source, symbol))  # type: ignore[misc]

    def tick_published(self, source: str, symbol: str) -> None:
        now = self._monotonic()
        self._last_published[(source, None)] = now
        if (source, symbol) in self._last_published:
            self._last_published[(source, symbol)] = now

    def _age(self, source: str, symbol: str | None) -> float:
        return self._monotonic() - self._last_published[(source, symbol)]
