"""Fixtures of the stream processor integration tests (helpers live in stream_support.py)."""

from __future__ import annotations

import pytest
from stream_support import cleanup


@pytest.fixture
def namespaces(stack):
    """Fresh topic prefixes for a test, deleted (with their changelogs) afterwards."""
    made: list[str] = []

    def make(namespace: str) -> str:
        made.append(namespace)
        return namespace

    yield make
    for namespace in made:
        cleanup(stack.kafka_bootstrap, namespace)
