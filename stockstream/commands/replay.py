"""``stockstream replay``: re-run the stream processor (and, with --views, the materializer) over a past range.

By default a replay is a **run** (docs/runs.md, ``stockstream runs start``): its outputs go to
the topics ``runs.<id>.*`` and never to the live ones. Writing the live outputs is deliberate:

- **fresh into live** (``--into-live``, confirmed; ``--yes`` for scripts): a new group ``<prefix>stockstream-replay-<time>`` with fresh state (its
  own changelog topic and state folder, removed afterwards unless ``--keep-state``);
- **reset** (``--group`` naming a group that exists, e.g. the live ``stockstream-process``):
  after confirmation (``--yes`` for scripts) the group's state is deleted (changelog topics
  and local state folder) and its offsets set to the range start; when the replay stops,
  ``stockstream process`` resumes from there with the rebuilt state. The group must have no
  running members.

Progress shows the records done and the lag left, from the group's committed offsets. The
replay stops at the first checkpoint at or past ``--to`` (offsets or a time; default: the
log's end when the replay starts), or with ``--follow`` keeps running until Ctrl-C. Records
past the bound that are already in the log when the bound is reached may be processed too
(at most one checkpoint, 0.5 s, of them).

Exit codes: 0 done; 1 a child process failed (its log is shown); 2 nothing done.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from stockstream.console import console
from stockstream.ranges import split_bound
from stockstream.replayer import EXIT_USAGE, Kafka, ReplayError, resolve_range, run_replay


def replay(
    start: Annotated[str | None, typer.Option("--from", help="Start: offsets (0 for every partition, 0:1200,1:800 by partition), the first tick at/after a time (ISO 8601, UTC if no zone), a date or a duration ago (2h).", show_default="the log's beginning")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Stop before these offsets, or before the first tick at/after this time (a time, a date or a duration ago).", show_default="the log's end now")] = None,
    follow: Annotated[bool, typer.Option(help="Do not stop at the end: keep processing live ticks until Ctrl-C.")] = False,
    group: Annotated[str | None, typer.Option(help="Consumer group to run under; an existing one (e.g. the live stockstream-process) is reset after confirmation.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Reset an existing group without asking (scripts).")] = False,
    views: Annotated[bool, typer.Option(help="Also run the materializer over the replayed events.")] = False,
    views_prefix: Annotated[str | None, typer.Option("--redis-prefix", help="Redis key prefix of the replayed views.", show_default="REDIS_KEY_PREFIX, the live views")] = None,
    strategy: Annotated[Path | None, typer.Option(help="Strategy file for the replayed processor (env STOCKSTREAM_STRATEGY).")] = None,
    keep_state: Annotated[bool, typer.Option(help="Keep a fresh group's state (changelog topic, folder) afterwards.")] = False,
    into_live: Annotated[bool, typer.Option("--into-live", help="Write the live topics (and views) instead of a run's own namespace: a deliberate rebuild (asks first; -y confirms in scripts).")] = False,
    run_id: Annotated[str | None, typer.Option("--id", help="The run's id when the replay is a run.", show_default="r<time>-<random>")] = None,
) -> None:
    """Re-run the processors over a past range into a run's own namespace (default), or into live (--into-live, --group)."""
    from pydantic import ValidationError

    from processors.stream.settings import ProcessSettings
    from spark_jobs.backfill.ranges import RangeError

    err = console(stderr=True)

    def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
        err.print(f"[red]error:[/] {escape(message)}")
        return typer.Exit(code)

    from_offset, from_time = split_bound(start)
    to_offset, to_time = split_bound(end)
    if end is not None and follow:
        raise fail("give --to or --follow, not both")
    if group is None and not into_live:
        # Every replay is a run (docs/runs.md): its outputs go to runs.<id>.*, never to live.
        if follow or views_prefix is not None or keep_state:
            raise fail("--follow, --redis-prefix and --keep-state apply to a replay into live (--into-live)")
        from stockstream.commands import runs

        runs.start(from_=start, to=end, strategy=strategy, run_id=run_id,
              description="stockstream replay", views=views, into_live=False, yes=False, as_json=False)
        return
    if into_live and group is None and not yes:
        if not sys.stdin.isatty():
            raise fail("--into-live appends to the live topics: pass --yes to confirm (no terminal to ask)")
        if not typer.confirm("Replay into the LIVE topics?", default=False, err=True):
            raise fail("nothing done")
    try:
        settings = ProcessSettings(**({"strategy_file": strategy} if strategy else {}))
    except ValidationError as error:
        raise fail("bad configuration: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                     for e in error.errors())) from None
    topic = settings.topics().ticks.name
    kafka = Kafka(settings)
    try:
        starts, stops = resolve_range(settings, kafka, topic, from_offset=from_offset, from_time=from_time,
                                      to_offset=to_offset, to_time=to_time, follow=follow)
        chosen = group or f"{settings.topic_prefix}stockstream-replay-{datetime.now(UTC):%Y%m%d%H%M%S}"
        code = run_replay(err, kafka, settings, topic, chosen, starts, stops, yes=yes, views=views,
                    views_prefix=views_prefix, keep_state=keep_state)
    except (RangeError, ReplayError) as error:
        raise fail(str(error)) from None
    finally:
        kafka.close()
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
