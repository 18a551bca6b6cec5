"""``stockstream views rebuild|compare``: repopulate the Redis views from the log, check two sets are equal."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer

from stockstream.console import console
from stockstream.ranges import split_bound

views_app = typer.Typer(help="Maintain the Redis views: rebuild them from the log, compare two prefixes.",
                        no_args_is_help=True)


def _parse_time(text: str) -> datetime:
    """ISO 8601 time (``2026-11-27T12:00:00Z``) or date (midnight UTC); a time without zone is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise typer.BadParameter("use ISO 8601, e.g. 2026-11-27T12:00:00Z or 2026-11-27") from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@views_app.command()
def rebuild(
    start: Annotated[str | None, typer.Option(
        "--from", help="Start: an offset for every input partition (1000), or the first record at/after a time"
                       " (ISO 8601), a date or a duration ago (2h).", show_default="the beginning")] = None,
    into: Annotated[str | None, typer.Option("--redis-prefix", help="Rebuild into this key prefix (kept side by side).")]
    = None,
    swap: Annotated[bool, typer.Option("--swap", help="Rebuild into a staging prefix, then atomically replace the "
                                                       "live views (REDIS_KEY_PREFIX) with it.")] = False,
) -> None:
    """Repopulate the views from the log: into an empty REDIS_KEY_PREFIX, a new prefix (--redis-prefix), or --swap."""
    from processors.materialize.rebuild import Rebuilder, RebuildError, StartAt
    from processors.materialize.settings import MaterializeSettings
    from processors.runtime.observability import setup_logging

    from_offset, from_time = split_bound(start)
    if from_offset is not None and not from_offset.isdigit():
        raise typer.BadParameter("views rebuild starts every partition at one offset (1000), a time or a duration",
                                 param_hint="--from")
    begin = StartAt(offset=int(from_offset) if from_offset is not None else None,
                    time=_parse_time(from_time) if from_time else None)
    settings = MaterializeSettings()
    settings.register_secrets()
    setup_logging(settings.log_level, "views")
    try:
        report = Rebuilder(settings, progress=lambda text: console(stderr=True).print(text, markup=False)).run(
            begin, into=into, swap=swap)
    except RebuildError as error:
        console(stderr=True).print(f"[red]rebuild refused:[/] {error}")
        raise typer.Exit(1) from None
    console(stderr=True).print(f"rebuilt prefix {report.target_prefix!r}: {report.events} events from {report.records} records"
                  f" ({report.dead_letters} refused, {report.caught_up} caught up after the swap)"
                  f" in {report.seconds:.1f}s", markup=False)


@views_app.command()
def compare(
    other: Annotated[str, typer.Argument(help="The other key prefix.")],
    prefix: Annotated[str | None, typer.Option("--redis-prefix", help="The prefix compared with OTHER.", show_default="REDIS_KEY_PREFIX")] = None,
) -> None:
    """Compare the views under two prefixes key for key; exit 1 and list the differences if they differ."""
    from processors.materialize.rebuild import snapshot
    from processors.materialize.settings import MaterializeSettings, redis_client

    settings = MaterializeSettings()
    settings.register_secrets()
    client = redis_client(settings)
    mine = snapshot(client, settings.redis_key_prefix if prefix is None else prefix)
    theirs = snapshot(client, other)
    differing = sorted(key for key in set(mine) | set(theirs) if mine.get(key) != theirs.get(key))
    if differing:
        for key in differing[:50]:
            console(stderr=True).print(f"differs: {key}", markup=False)
        console(stderr=True).print(f"{len(differing)} of {len(set(mine) | set(theirs))} keys differ")
        raise typer.Exit(1)
    console(stderr=True).print(f"equal: {len(mine)} keys")


def register(app: typer.Typer) -> None:
    app.add_typer(views_app, name="views")
