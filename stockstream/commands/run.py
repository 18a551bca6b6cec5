"""``stockstream run``: the main job — local stack + the whole pipeline on the simulator feed."""

from __future__ import annotations

from typing import Annotated

import typer

from stockstream.stack.manager import Stack, StackError
from stockstream.stack.services import MissingToolError


def run(
    api_port: Annotated[int, typer.Option("--api-port", help="Port of the API and dashboard (env API_PORT).", show_default="8000")] = 8000,
    keep_stack: Annotated[bool, typer.Option("--keep-stack", help="Leave Kafka/Redis/Prometheus/Alertmanager running on exit.")]
    = False,
) -> None:
    """Start the local stack and every pipeline service (simulator feed); Ctrl-C stops everything."""
    from stockstream.cli import app
    from stockstream.supervisor import Supervisor, default_services

    available = {command.name or command.callback.__name__ for command in app.registered_commands
                 if command.callback is not None}
    available |= {group.name for group in app.registered_groups if group.name}
    supervisor = Supervisor(default_services(available, api_port), Stack(), keep_stack)
    try:
        raise typer.Exit(supervisor.run())
    except (StackError, MissingToolError) as error:
        typer.echo(f"stack failed to start: {error}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command(name="run")(run)
