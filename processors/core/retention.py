"""Which runs have outlived ``RUN_RETENTION`` and may lose their namespace (docs/runs.md, "Retention").

Called by ``stockstream runs prune`` and before every ``stockstream runs start``
(``stockstream/commands/runs.py``), which delete what this module names: the run's topics,
processing state, view keys and record. Pure: the caller passes the time and whether the run's
consumer group still has members.

- ``live`` and a run written ``--into-live`` own no namespace: never.
- A run that ended (``done``, ``failed``, ``stopped``) carries ``expires_at`` = its end +
  the ``RUN_RETENTION`` in force then: pruned from that time on.
- A run still recorded as ``running`` whose process died never recorded an end: it is
  *abandoned* once it started more than ``retention`` ago **and** its consumer group has no
  member (a replay still at work, or a shadow run following live, keeps its group's members).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.runs import LIVE_RUN_ID, Run


def prune_reason(run: Run, now: datetime, retention: timedelta, *, group_active: bool) -> str | None:
    """Why ``run``'s namespace may be deleted at ``now`` (a short text), or None to keep it."""
    if run.run_id == LIVE_RUN_ID or run.namespace.into_live:
        return None
    if run.expires_at is not None:
        return f"expired at {run.expires_at.isoformat()}" if run.expires_at <= now else None
    if run.state == "running" and not group_active and run.ts_init + retention <= now:
        return f"abandoned: recorded as running since {run.ts_init.isoformat()}, no consumer left"
    return None
