"""Shared fixtures: the real local stack (session-scoped) and an isolated namespace per test.

No mock of Kafka or Redis anywhere: integration tests talk to the real broker and
Redis that ``stockstream stack up`` runs. A running stack is reused; otherwise the
fixture starts one and stops it at the end of the session.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from stockstream.stack import kafka_security
from stockstream.stack.manager import Stack
from stockstream.stack.services import StackSettings


@dataclass(frozen=True)
class RunningStack:
    stack: Stack
    kafka_bootstrap: str
    redis_url: str
    prometheus_url: str


TEST_SERVICES = ("kafka", "redis", "redis-exporter", "prometheus")


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    """The real local stack: reused if it is up, otherwise started (and stopped afterwards)."""
    local = Stack(StackSettings())
    already = {entry.name for entry in local.status() if entry.answering}
    # The services the tests use. Alertmanager is not one: the alerting tests run their own, and a stack
    # that runs it already keeps it (`stockstream stack up` starts it with the rest).
    started = local.up(TEST_SERVICES)
    settings = local.settings
    yield RunningStack(local, settings.kafka_bootstrap, settings.redis_url, settings.prometheus_url)
    if started and not os.environ.get("STOCKSTREAM_KEEP_STACK"):
        local.down([name for name in started if name not in already])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def private_stack(tmp_path) -> Iterator[RunningStack]:
    """A stack of its own (own ports, own state folder) for tests that stop or restart services.

    Never stop the shared ``stack``: other tests (and other developers' runs) use it.
    """
    settings = StackSettings(
        state_dir=tmp_path / "stack",
        kafka_port=_free_port(),
        kafka_controller_port=_free_port(),
        kafka_sasl_port=_free_port(),
        redis_port=_free_port(),
        prometheus_port=_free_port(),
        # The broker's JMX exporter agent and the Redis exporter: never the shared stack's ports.
        kafka_jmx_port=_free_port(),
        redis_exporter_port=_free_port(),
        alertmanager_port=_free_port(),
    )
    local = Stack(settings)
    local.up(["kafka", "redis"])
    try:
        yield RunningStack(local, settings.kafka_bootstrap, settings.redis_url, settings.prometheus_url)
    finally:
        local.down(hard=True)


@pytest.fixture
def sasl_stack(stack, request) -> RunningStack:
    """A stack whose broker runs the SASL/SCRAM listener (per-service users and ACLs).

    The shared stack when it has that listener (it gains it when restarted; a stack on its own
    ports always has it), otherwise a private one; tests add and remove their namespace's ACLs.
    """
    if kafka_security.is_secured(stack.stack.settings):
        return stack
    return request.getfixturevalue("private_stack")


@pytest.fixture
def namespace() -> str:
    """A unique topic/key prefix so tests never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."
