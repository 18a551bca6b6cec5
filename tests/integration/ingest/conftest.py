"""Fixtures of the ingest integration tests (helpers live in ingest_support.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def ingest_env(stack, namespace, tmp_path):
    """Environment for a ``stockstream ingest`` subprocess against the shared broker and this namespace."""
    return {"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "STOCKSTREAM_TOPIC_PREFIX": namespace,
            "METRICS_PORT": "0", "INGEST_RETRY_INITIAL_SECONDS": "0.05", "INGEST_RETRY_MAX_SECONDS": "0.2",
            "ALPHAVANTAGE_BUDGET_DIR": str(tmp_path / "ingest-state"),
            "INGEST_FILE_POSITION_DIR": str(tmp_path / "ingest-state")}
