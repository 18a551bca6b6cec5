"""Fixtures of the views tests: the real Redis of the shared stack, a per-test key prefix, cleanup."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.kafka_tools import delete_topics


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=prefix.replace("*", "\\*") + "*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])


@pytest.fixture
def redis_client(stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url)
    yield client
    client.close()


@pytest.fixture
def views_prefix(redis_client, namespace) -> Iterator[str]:
    """A fresh Redis key prefix for this test (the namespace); its keys are deleted afterwards."""
    yield namespace
    drop_prefix(redis_client, namespace)


@pytest.fixture
def topics_cleanup(stack, namespace) -> Iterator[None]:
    yield
    delete_topics(stack.kafka_bootstrap, namespace)
