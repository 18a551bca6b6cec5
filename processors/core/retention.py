"""Which runs have outlived ``RUN_RETENTION`` and may lose their namespace (docs/runs.md, "Retention").

Called by ``stockstream runs prune`` and before every ``stockstream runs start``
(``stockstream/commands/runs.py``), which delete what this module names: the run's topics,
processing state, view keys and record. Pure: the caller passes the time and whether the run's
consumer group still has members.

- ``live`` and a run written ``--into-live`` own no namespace: never.
- A run that ended (``done``, ``failed``, ``stopped``) carries ``expires_at`` = its end +
  the ``RUN_RETENTION`` in force then: pruned from that time on.
- A run still recorded as ``running`` (or ``serving``: a promote killed before it updated the
  records) whose process died never recorded an end: it is *abandoned* once it started more than
  ``retention`` ago **and** its consumer group has no member (a replay still at work, or a shadow
  run following live, keeps its group's members).
- A run the ``live`` record names — the one serving live, the one ``strategy rollback`` returns to,
  the target of a hand-over in flight — never: its state is live state (``in_live_view``).
- After a hand-over, the run it pushed out of the ``live`` record (neither serving nor previous any
  more) is *retired* by :func:`after_handover` when it is a live processor (its group is not the
  run's own ``runs.<id>.process``): such a processor now waits and writes nothing, so its namespace
  ``runs.<id>.*`` expires ``retention`` later like an ended run's. A run's own processor displaced
  that way goes on following live into its namespace (a shadow again) until it is stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from schemas.runs import LIVE_RUN_ID, Namespace, Run, Serving
from schemas.topics import run_group, run_topic_prefix

UNFINISHED = ("running", "serving")
"""States of a run that recorded no end (its process may have died without saying so)."""


def prune_reason(run: Run, now: datetime, retention: timedelta, *, group_active: bool,
                 in_live_view: bool = False) -> str | None:
    """Why ``run``'s namespace may be deleted at ``now`` (a short text), or None to keep it."""
    if run.run_id == LIVE_RUN_ID or run.namespace.into_live or in_live_view:
        return None
    if run.expires_at is not None:
        return f"expired at {run.expires_at.isoformat()}" if run.expires_at <= now else None
    if run.state in UNFINISHED and not group_active and run.ts_init + retention <= now:
        return f"abandoned: recorded as {run.state} since {run.ts_init.isoformat()}, no consumer left"
    return None


def live_processor_record(serving: Serving, prefix: str, code_version: str, now: datetime) -> Run:
    """The record of a live processor that serves without one (before the first promote names it
    ``live-<version>``), written when a hand-over begins so that, once demoted, its namespace is a
    run's like any other: listed, and retired then pruned when it leaves the ``live`` record."""
    return Run(run_id=serving.run_id, kind="shadow", state="serving", strategy=serving.strategy,
               code_version=code_version, namespace=Namespace(topic_prefix=run_topic_prefix(prefix, serving.run_id)),
               group=serving.group, description="the live processor before the first promote; demoted, it follows"
               " live into its own namespace", ts_event=now, ts_init=now)


def after_handover(runs: Mapping[str, Run], serving: str, demoted: str, displaced: Serving | None, prefix: str,
                   now: datetime, retention: timedelta) -> list[Run]:
    """The records a finished hand-over updates (informational: the ``live`` record decides).

    ``serving`` is now ``serving``; ``demoted`` (the run that served before) ``running`` again: it
    follows live into its namespace and is what ``strategy rollback`` returns to. ``displaced``, the
    run that was previous before and is named by the ``live`` record no more, is ``retired`` with an
    expiry when it is a live processor (see the module docstring). Only shadow records change.
    """
    updates = []
    for run_id, state in ((serving, "serving"), (demoted, "running")):
        record = runs.get(run_id)
        if record is not None and record.kind == "shadow" and record.state in UNFINISHED:
            updates.append(record.model_copy(update={"state": state, "ts_event": now}))
    if displaced is not None and displaced.run_id not in (serving, demoted):
        record = runs.get(displaced.run_id)
        own_group = run_group(prefix, displaced.run_id, "process")
        if (record is not None and record.kind == "shadow" and record.state in UNFINISHED
                and displaced.group != own_group):
            updates.append(record.model_copy(update={"state": "retired", "ts_event": now,
                                                     "expires_at": now + retention}))
    return updates
