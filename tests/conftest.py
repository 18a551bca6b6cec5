"""Shared fixtures: the real local stack (session-scoped) and an isolated namespace per test.

No mock of Kafka or Redis anywhere: integration tests talk to the real broker and
Redis that ``stockstream stack up`` runs. A running stack is reused; otherwise the
fixture starts one and stops it at the end of the session.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling

from stockstream.stack import kafka_security
from stockstream.stack.manager import Stack
from stockstream.stack.services import StackSettings
from tests.support.ports import free_port


@dataclass(frozen=True)
class RunningStack:
    stack: Stack
    kafka_bootstrap: str
    redis_url: str
    prometheus_url: str


TEST_SERVICES = ("kafka", "redis", "redis-exporter", "prometheus")


_STARTED_STACK = pytest.StashKey[tuple[Stack, list[str]]]()


def _start_stack() -> tuple[Stack, list[str]]:
    """The shared stack's test services up; returns it and the services this call started."""
    local = Stack(StackSettings())
    already = {entry.name for entry in local.status() if entry.answering}
    # The services the tests use. Alertmanager is not one: the alerting tests run their own, and a stack
    # that runs it already keeps it (`stockstream stack up` starts it with the rest).
    started = local.up(TEST_SERVICES)
    return local, [name for name in started if name not in already]


def _stop_stack(local: Stack, started: list[str]) -> None:
    if started and not os.environ.get("STOCKSTREAM_KEEP_STACK"):
        local.down(started)


def _is_xdist_controller(config: pytest.Config) -> bool:
    """True in the process that hands tests to xdist workers (``-n N``, N > 0), False in a worker or a plain run."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", 0))


def pytest_sessionstart(session: pytest.Session) -> None:
    """With workers (``make test`` runs ``-n``), the controller brings the shared stack up once, before any
    worker starts (xdist starts them after this hook), and stops what it started at the end: workers then
    find it running, and none of them stops it while another still uses it."""
    if _is_xdist_controller(session.config):
        session.config.stash[_STARTED_STACK] = _start_stack()


def pytest_sessionfinish(session: pytest.Session) -> None:
    found = session.config.stash.get(_STARTED_STACK, None)
    if found is not None:
        _stop_stack(*found)


def _group_of(nodeid: str) -> str:
    """The tests one worker runs together: a test file (its module fixtures are built once, and some files'
    tests follow each other), except the files that share the session's Spark session and synthetic log (one
    worker builds them, ~1 min), and the CI chaos and soak runs (each loads the machine for ~3 min: one
    after the other, not side by side)."""
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/integration/spark/"):
        return "spark-session"
    if path.startswith(("tests/chaos/", "tests/soak/")):
        return "chaos-and-soak"
    return path


class _GroupScheduling(LoadScopeScheduling):
    """``--dist loadfile`` with the groups of :func:`_group_of` (xdist's own ``xdist_group`` mark is not applied
    under pytest 9.2: pytest-dev/pytest-xdist#1386)."""

    def _split_scope(self, nodeid: str) -> str:
        return _group_of(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadScopeScheduling | None:
    return _GroupScheduling(config, log) if config.getvalue("dist") == "loadfile" else None


_TIERS = {"chaos-and-soak": 0, "spark-session": 0}
_QUICK = ("tests/unit/",)  # many files of seconds each


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):
        # Longest first (`--no-loadscope-reorder` keeps the collection's order): the minutes-long groups start
        # at once and the many unit test files, seconds each, fill in at the end, so that no worker is left
        # alone with a long one.
        items.sort(key=lambda item: _TIERS.get(_group_of(item.nodeid), 2 if item.nodeid.startswith(_QUICK) else 1))


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    """The real local stack: reused if it is up, otherwise started (and stopped afterwards)."""
    local, started = _start_stack()
    settings = local.settings
    yield RunningStack(local, settings.kafka_bootstrap, settings.redis_url, settings.prometheus_url)
    _stop_stack(local, started)


@pytest.fixture
def private_stack(tmp_path) -> Iterator[RunningStack]:
    """A stack of its own (own ports, own state folder) for tests that stop or restart services.

    Never stop the shared ``stack``: other tests (and other developers' runs) use it.
    """
    settings = StackSettings(
        state_dir=tmp_path / "stack",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_sasl_port=free_port(),
        redis_port=free_port(),
        prometheus_port=free_port(),
        # The broker's JMX exporter agent and the Redis exporter: never the shared stack's ports.
        kafka_jmx_port=free_port(),
        redis_exporter_port=free_port(),
        alertmanager_port=free_port(),
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


@pytest.fixture(autouse=True)
def _service_log_handler_removed() -> Iterator[None]:
    """A command run in this process (typer's ``CliRunner``) installs the services' log handler on the
    runner's stderr, which is closed when the command returns: a later record of any test in the same
    worker then prints a "Logging error" traceback. Each test ends with the root logger as it found it."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before and getattr(handler, "_stockstream", False):
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def namespace() -> str:
    """A unique topic/key prefix so tests never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."
