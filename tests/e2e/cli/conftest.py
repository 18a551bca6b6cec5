"""The CLI tests parse commands in this process: none of them may leave a variable behind."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _environment_unchanged() -> Iterator[None]:
    """A common option (``--redis-url`` …) sets its variable until its click context closes; a test that
    parses without running must not leak it into later tests (a Spark backfill once read REDIS_URL from
    an example's ``--redis-url``)."""
    before = dict(os.environ)
    yield
    leaked = {name for name in set(os.environ) | set(before)
              if os.environ.get(name) != before.get(name) and name != "PYTEST_CURRENT_TEST"}  # pytest's own
    for name in leaked:
        if name in before:
            os.environ[name] = before[name]
        else:
            os.environ.pop(name, None)
    assert not leaked, f"the test left these variables changed: {sorted(leaked)}"
