"""A full local producer queue slows the source down instead of crashing or dropping ticks."""

from __future__ import annotations

import pytest
from ingest_support import ingest_settings, run_ingest

pytestmark = pytest.mark.integration


def test_full_queue_applies_back_pressure_and_loses_nothing(stack, namespace):
    settings = ingest_settings(stack, namespace, source="simulator", sim_count=2_000, sim_rate=0, sim_seed=4,
                               sim_start="2024-01-01T00:00:00Z", queue_max_messages=20, linger_ms=5)
    run = run_ingest(settings, timeout_s=90)
    assert run.metric("stockstream_ingest_backpressure_waits_total") > 0  # the queue really was full
    assert run.summary.delivered == 2_000 and run.summary.undelivered == 0
    ids = sorted(int(t.source_id.rsplit("-", 1)[1]) for t in run.ticks())
    assert ids == list(range(2_000))
