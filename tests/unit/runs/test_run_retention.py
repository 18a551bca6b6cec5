"""Which runs ``runs prune`` deletes (processors/core/retention.py): expired, abandoned, never live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from processors.core.retention import after_handover, live_processor_record, prune_reason
from schemas.runs import LiveState, Namespace, Run, Serving, StrategyRef
from schemas.topics import run_group

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


def test_a_run_the_live_record_names_is_never_pruned():
    """Serving, what rollback returns to, a hand-over's target: their state is live state."""
    for state in ("running", "serving", "stopped"):
        named = run(state, kind="shadow", expires_at=T0 if state == "stopped" else None)
        assert prune_reason(named, T0 + 30 * WEEK, WEEK, group_active=False, in_live_view=True) is None


def test_a_stale_serving_record_is_abandoned_like_a_running_one():
    """A promote killed before it updated the records leaves ``serving`` on a run live names no more."""
    stale = run("serving", kind="shadow")
    assert prune_reason(stale, T0 + WEEK, WEEK, group_active=True) is None
    assert prune_reason(stale, T0 + WEEK, WEEK, group_active=False).startswith("abandoned: recorded as serving")  # type: ignore[union-attr]


def serving(run_id: str, group: str) -> Serving:
    return Serving(run_id=run_id, group=group, strategy=STRATEGY, since=T0)


LIVE_GROUP = "stockstream-process"
FIRST = "live-0123456789abcdef"


def test_promote_records_the_live_processor_then_retires_it_when_it_leaves_the_live_record():
    live = serving(FIRST, LIVE_GROUP)
    record = live_processor_record(live, "", "test", T0)
    assert (record.kind, record.state, record.group) == ("shadow", "serving", LIVE_GROUP)
    assert record.namespace.topic_prefix == f"runs.{FIRST}."  # what runs drop / prune delete
    a = run("running", kind="shadow", run_id="a").model_copy(update={"group": run_group("", "a", "process")})
    b = run("running", kind="shadow", run_id="b").model_copy(update={"group": run_group("", "b", "process")})
    # First promote (a over the live processor): a serves, the live processor follows in runs.live-….*
    runs = {FIRST: record, "a": a, "b": b}
    updates = {r.run_id: r for r in after_handover(runs, "a", FIRST, None, "", T0, WEEK)}
    assert {key: value.state for key, value in updates.items()} == {"a": "serving", FIRST: "running"}
    assert all(value.expires_at is None for value in updates.values())
    runs.update(updates)
    # Second promote (b over a): the live processor leaves the live record; it waits, its namespace expires.
    later = T0 + timedelta(days=2)
    updates = {r.run_id: r for r in after_handover(runs, "b", "a", serving(FIRST, LIVE_GROUP), "", later, WEEK)}
    assert updates[FIRST].state == "retired" and updates[FIRST].expires_at == later + WEEK
    assert (updates["b"].state, updates["a"].state) == ("serving", "running")
    assert prune_reason(updates[FIRST], later + WEEK, WEEK, group_active=False) is not None
    assert prune_reason(updates[FIRST], later + WEEK - timedelta(seconds=1), WEEK, group_active=False) is None


def test_a_displaced_runs_processor_keeps_following_and_a_rollback_displaces_nobody():
    a = run("running", kind="shadow", run_id="a").model_copy(update={"group": run_group("", "a", "process")})
    b = run("serving", kind="shadow", run_id="b").model_copy(update={"group": run_group("", "b", "process")})
    c = run("running", kind="shadow", run_id="c").model_copy(update={"group": run_group("", "c", "process")})
    runs = {"a": a, "b": b, "c": c}
    # c over b while a was previous: a's own processor goes on into runs.a.* (a shadow again), not retired.
    updates = after_handover(runs, "c", "b", serving("a", run_group("", "a", "process")), "", T0, WEEK)
    assert {r.run_id: r.state for r in updates} == {"c": "serving", "b": "running"}
    # rollback (a back over b, b previous): the previous becomes the serving one, nobody leaves.
    updates = after_handover(runs, "a", "b", serving("a", run_group("", "a", "process")), "", T0, WEEK)
    assert {r.run_id: r.state for r in updates} == {"a": "serving", "b": "running"}
