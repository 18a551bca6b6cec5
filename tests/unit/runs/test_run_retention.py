"""Which runs ``runs prune`` deletes (processors/core/retention.py): expired, abandoned, never live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from processors.core.retention import prune_reason
from schemas.runs import LiveState, Namespace, Run, Serving, StrategyRef

T0 = datetime(2026, 12, 1, tzinfo=UTC)
WEEK = timedelta(days=7)
STRATEGY = StrategyRef(version="0123456789abcdef")


def run(state: str = "done", *, kind: str = "replay", expires_at: datetime | None = None, into_live: bool = False,
        run_id: str = "r1") -> Run:
    return Run(run_id=run_id, kind=kind, state=state, strategy=STRATEGY, code_version="test",  # type: ignore[arg-type]
               namespace=Namespace(topic_prefix=f"runs.{run_id}.", into_live=into_live), expires_at=expires_at,
               group=f"runs.{run_id}.process", ts_event=T0, ts_init=T0)


@pytest.mark.parametrize("state", ["done", "failed", "stopped"])
def test_an_ended_run_goes_at_its_expiry(state):
    ended = run(state, expires_at=T0 + WEEK)
    assert prune_reason(ended, T0 + WEEK - timedelta(seconds=1), WEEK, group_active=False) is None
    assert prune_reason(ended, T0 + WEEK, WEEK, group_active=False) == f"expired at {(T0 + WEEK).isoformat()}"


def test_a_running_run_goes_only_when_abandoned():
    running = run("running")
    assert prune_reason(running, T0 + WEEK - timedelta(seconds=1), WEEK, group_active=False) is None
    assert prune_reason(running, T0 + 2 * WEEK, WEEK, group_active=True) is None, "its process is still at work"
    assert prune_reason(running, T0 + WEEK, WEEK, group_active=False).startswith("abandoned")  # type: ignore[union-attr]
    shadow = run("running", kind="shadow")  # follows live, no end: kept while its group has members
    assert prune_reason(shadow, T0 + 30 * WEEK, WEEK, group_active=True) is None


def test_live_and_into_live_runs_are_never_pruned():
    rebuild = run(expires_at=None, into_live=True, state="done")
    assert prune_reason(rebuild, T0 + 100 * WEEK, WEEK, group_active=False) is None
    live = Run(run_id="live", kind="live", state="serving", strategy=STRATEGY, code_version="test",
               namespace=Namespace(topic_prefix=""), expires_at=T0,
               live=LiveState(current=Serving(run_id="r0", group="g", strategy=STRATEGY, since=T0)),
               ts_event=T0, ts_init=T0)
    assert prune_reason(live, T0 + 100 * WEEK, WEEK, group_active=False) is None
