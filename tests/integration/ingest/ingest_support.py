"""Helpers for the ingest integration tests: run the real service in-process, read back its topics, scrape metrics."""

from __future__ import annotations

import asyncio
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from processors.ingest.factory import build_source
from processors.ingest.metrics import IngestMetrics
from processors.ingest.publisher import TickPublisher
from processors.ingest.service import IngestService, IngestSummary, wall_clock
from processors.ingest.settings import IngestSettings
from processors.ingest.sources.base import Source
from processors.runtime.kafka_admin import ensure_topics
from schemas.events import DeadLetter, Tick
from schemas.instruments import instrument_key
from schemas.upcasters import decode_dead_letter, decode_tick
from tests.support.kafka_tools import read_topic


@dataclass
class IngestRun:
    """One finished in-process run: its summary, its private metrics registry, its topics."""

    settings: IngestSettings
    registry: CollectorRegistry
    summary: IngestSummary
    source: Source

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def published(self) -> float:
        """Ticks acknowledged by Kafka so far (live, unlike ``summary.delivered``)."""
        return self.metric("stockstream_ingest_records_published_total", source=self.source.name)

    def ticks(self) -> list[Tick]:
        records = read_topic(self.settings.bootstrap_servers, self.settings.topics().ticks.name)
        ticks = [decode_tick(r.value) for r in records]
        # keyed by instrument
        assert all(r.key == instrument_key(t.symbol, t.venue) for r, t in zip(records, ticks, strict=True))
        return ticks

    def ticks_in_log_order(self) -> dict[int, list[Tick]]:
        """Ticks per partition, in offset order (the order a consumer sees)."""
        records = read_topic(self.settings.bootstrap_servers, self.settings.topics().ticks.name)
        by_partition: dict[int, list[Tick]] = {}
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            by_partition.setdefault(record.partition, []).append(decode_tick(record.value))
        return by_partition

    def dead_letters(self) -> list[DeadLetter]:
        records = read_topic(self.settings.bootstrap_servers, self.settings.topics().ticks_dlq.name)
        return [decode_dead_letter(r.value) for r in records]


def ingest_settings(stack: Any, namespace: str, **overrides: Any) -> IngestSettings:
    """Settings for a test run: the shared broker, a private topic namespace, fast retries, no .env."""
    values: dict[str, Any] = {
        "bootstrap_servers": stack.kafka_bootstrap, "topic_prefix": namespace, "metrics_port": 0,
        "retry_initial_seconds": 0.05, "retry_max_seconds": 0.2, "flush_timeout_seconds": 30,
        "linger_ms": 1,
        # each run its own Alpha Vantage budget (it persists across restarts: a shared one would carry over)
        "alphavantage_budget_dir": Path(tempfile.mkdtemp(prefix="av-budget-")),
        "file_position_dir": Path(tempfile.mkdtemp(prefix="file-positions-")),  # likewise
    }
    values.update(overrides)
    return IngestSettings(_env_file=None, **values)  # type: ignore[call-arg]


def run_ingest(
    settings: IngestSettings,
    *,
    until: Callable[[IngestRun], bool] | None = None,
    timeout_s: float = 60.0,
    source: Source | None = None,
) -> IngestRun:
    """Run the service until its source ends, or until ``until(run)`` holds (then stop it cleanly)."""
    topics = settings.topics()
    ensure_topics(settings, [topics.ticks, topics.ticks_dlq])
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    source = source or build_source(settings, wall_clock)
    publisher = TickPublisher(settings, source.name, metrics)
    service = IngestService(settings, source, publisher, metrics)
    run = IngestRun(settings, registry, service.summary, source)

    async def main() -> IngestSummary:
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        deadline = time.monotonic() + timeout_s
        while not task.done():
            if until is not None and until(run):
                break
            if time.monotonic() > deadline:
                stop.set()
                await task
                raise AssertionError(f"ingest run did not reach its condition within {timeout_s:.0f}s: {service.summary.line()}")
            await asyncio.sleep(0.05)
        stop.set()
        return await task

    run.summary = asyncio.run(main())
    return run


def scrape(port: int) -> str:
    """The ``/metrics`` text of a service on ``port`` ("" while it is not serving yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:  # noqa: S310
            return answer.read().decode()
    except OSError:
        return ""


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text output (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0
