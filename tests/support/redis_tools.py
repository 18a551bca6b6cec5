"""Small real-Redis helpers for tests."""

from __future__ import annotations

import redis

from tests.support.kafka_tools import wait_until


def wait_for_redis(client: redis.Redis, *, timeout_s: float, message: str) -> None:
    """Wait until ``client`` gets an answer to PING (a server still starting refuses or resets)."""

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_until(answers, timeout_s=timeout_s, message=message)
