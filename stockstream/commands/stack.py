"""``stockstream stack up|down|status``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from stockstream.console import console
from stockstream.stack.manager import Stack, StackError
from stockstream.stack.services import MissingToolError

stack_app = typer.Typer(help="The local real services: Kafka (KRaft), Redis, Prometheus, Alertmanager on 127.0.0.1.",
                        no_args_is_help=True)

Only = Annotated[list[str] | None, typer.Option("--only", help="Limit to these services (kafka, redis, prometheus, alertmanager).")]


@stack_app.command()
def up(only: Only = None) -> None:
    """Start the services that are not running and wait until each one answers."""
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
    stopped = Stack().down(only, hard=kill)
    console(stderr=True).print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@stack_app.command()
def status() -> None:
    """Show each service, its port, pid and whether it answers. Exit 1 if one is down."""
    stack = Stack()
    if not _print_status(stack):
        raise typer.Exit(1)


def _print_status(stack: Stack) -> bool:
    table = Table(title=f"stack in {stack.settings.state_dir}")
    for column in ("service", "address", "pid", "state"):
        table.add_column(column)
    healthy = True
    for entry in stack.status():
        state = "[green]up[/]" if entry.answering else ("[yellow]starting/not answering[/]" if entry.pid else "[red]down[/]")
        healthy &= entry.answering
        table.add_row(entry.name, f"{stack.settings.host}:{entry.port}", str(entry.pid or "-"), state)
    console().print(table)
    from stockstream.stack import kafka_security

    if kafka_security.is_secured(stack.settings):
        console().print(f"kafka SASL/SCRAM listener {stack.settings.host}:{stack.settings.kafka_sasl_port}"
                        f" (per-service users: `stockstream kafka-access env <user>`)")
    return healthy


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")
