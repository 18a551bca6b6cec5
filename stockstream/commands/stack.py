"""``stockstream stack up|down|status``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from stockstream.console import console

if TYPE_CHECKING:  # the stack's modules are imported when a command runs (stockstream/cli.py)
    from stockstream.stack.manager import Stack

stack_app = typer.Typer(help="The local real services: Kafka (KRaft), Redis, Prometheus, Alertmanager on 127.0.0.1.",
                        no_args_is_help=True)

Only = Annotated[list[str] | None, typer.Option("--only", help="Limit to these services (kafka, redis, prometheus, alertmanager).")]


@stack_app.command()
def up(only: Only = None) -> None:
    """Start the services that are not running and wait until each one answers."""
    from stockstream.stack.manager import Stack, StackError
    from stockstream.stack.services import MissingToolError

    stack = Stack()
    try:
        timings = stack.up(only, on_ready=lambda name, s: console(stderr=True).print(f"[green]✓[/] {name} ready in {s:.1f}s"))
    except (StackError, MissingToolError) as error:
        console(stderr=True).print(f"[red]stack up failed:[/] {error}")
        raise typer.Exit(1) from None
    if not timings:
        console(stderr=True).print("everything was already running")
    _print_status(stack)


@stack_app.command()
def down(
    only: Only = None,
    kill: Annotated[bool, typer.Option("--kill", help="SIGKILL instead of a clean stop.")] = False,
) -> None:
    """Stop the services this stack started (nothing else is touched)."""
    from stockstream.stack.manager import Stack

    stopped = Stack().down(only, hard=kill)
    console(stderr=True).print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@stack_app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON on stdout.")] = False,
) -> None:
    """Show each service, its port, pid and whether it answers. Exit 1 if one is down."""
    from stockstream.stack.manager import Stack

    stack = Stack()
    if not _print_status(stack, as_json=as_json):
        raise typer.Exit(1)


def _states(stack: Stack) -> list[dict[str, object]]:
    """One entry per service: its address, pid, and ``up``, ``starting`` (started, not answering yet),
    ``external`` (answering, but started by another stack folder or by hand) or ``down``."""
    entries: list[dict[str, object]] = []
    for entry in stack.status():
        if entry.answering:
            state = "up"
        elif entry.pid:
            state = "starting"
        else:  # not ours: is something else serving that port (another worktree's stack, a package)?
            state = "external" if stack.services[entry.name].ready() else "down"
        entries.append({"name": entry.name, "address": f"{stack.settings.host}:{entry.port}", "pid": entry.pid,
                        "state": state, "answering": state in ("up", "external")})
    return entries


_STYLE = {"up": "[green]up[/]", "starting": "[yellow]starting/not answering[/]",
          "external": "[green]up[/] (not started by this stack)", "down": "[red]down[/]"}


def _print_status(stack: Stack, *, as_json: bool = False) -> bool:
    entries = _states(stack)
    healthy = all(entry["answering"] for entry in entries)
    if as_json:
        typer.echo(json.dumps({"state_dir": str(stack.settings.state_dir), "healthy": healthy, "services": entries},
                              indent=2))
        return healthy
    from rich.table import Table

    table = Table(title=f"stack in {stack.settings.state_dir}")
    for column in ("service", "address", "pid", "state"):
        table.add_column(column)
    for entry in entries:
        table.add_row(str(entry["name"]), str(entry["address"]), str(entry["pid"] or "-"), _STYLE[str(entry["state"])])
    console().print(table)
    from stockstream.stack import kafka_security

    if kafka_security.is_secured(stack.settings):
        console().print(f"kafka SASL/SCRAM listener {stack.settings.host}:{stack.settings.kafka_sasl_port}"
                        f" (per-service users: `stockstream kafka-access env <user>`)")
    return healthy


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")
