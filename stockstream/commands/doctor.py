"""``stockstream doctor [--json]``: is everything configured and reachable? (see :mod:`stockstream.doctor`).

Exit codes: 0 nothing failed (warnings allowed: monitoring unreachable, a topic unlike its declaration); 1 a check failed.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from stockstream.console import console

MARKS = {"ok": ("✓", "green"), "failed": ("✗", "red"), "warning": ("!", "yellow"), "skipped": ("-", "dim")}


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks and the settings as JSON on stdout.")]
    = False,
    settings: Annotated[bool, typer.Option(help="Also list the settings in effect (secrets masked).")] = True,
) -> None:
    """Check the configured Kafka and its topics, Redis, Prometheus, Alertmanager, strategy and subscription files; list the settings in effect.

    Nothing is changed; every probe has a short timeout. Exit 0 when nothing failed (an unreachable Prometheus or
    Alertmanager, or a topic whose partitions or config differ from their declaration, is a warning), 1 otherwise.
    """
    from stockstream.doctor import as_json as to_json
    from stockstream.doctor import healthy, run_checks

    checks, found = run_checks()
    if as_json:
        typer.echo(json.dumps(to_json(checks, found if settings else []), indent=2))
    else:
        out = console()
        for check in checks:
            mark, style = MARKS[check.status]
            line = Text(f"{mark} ", style=style) + Text(f"{check.name}: ", style="bold") + Text(check.detail)
            out.print(line)
            if check.hint:
                out.print(Text(f"    → {check.hint}", style="dim"))
        if settings:
            table = Table(title="settings in effect (secrets masked)")
            for column in ("variable", "value", "from", "read by"):
                table.add_column(column)
            for setting in found:
                table.add_row(Text(setting.name), Text(setting.value), Text(setting.source),
                              Text(", ".join(setting.services)))
            out.print(table)
    if not healthy(checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
