"""``stockstream run``: the main job — local stack + the whole pipeline on the simulator feed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def run(
    api_port: Annotated[int, typer.Option("--api-port", help="Port of the API and dashboard (env API_PORT).", show_default="8000")] = 8000,
    keep_stack: Annotated[bool, typer.Option("--keep-stack", help="Leave Kafka/Redis/Prometheus/Alertmanager running on exit.")]
    = False,
    kafka_credentials: Annotated[Path | None, typer.Option(
        "--kafka-credentials", help="A folder with one password file per Kafka user (as `kafka-access apply"
                                    " --credentials` reads): each service connects as its own user with its own"
                                    " file, on the cluster KAFKA_BOOTSTRAP_SERVERS names (a SASL protocol)."
                                    " Without it, on the stack's SASL listener with the stack's passwords.")] = None,
) -> None:
    """Start the local stack and every pipeline service (simulator feed); Ctrl-C stops everything.

    Each service runs as its own Kafka user on the stack's SASL listener with the stack's passwords
    (unless the caller set Kafka settings of their own: then all inherit them), or, with
    ``--kafka-credentials``, with that folder's passwords on the caller's SASL cluster
    (docs/security.md). Exit 2 for credentials that cannot work (checked before anything
    starts), 1 when the stack fails to start.
    """
    import os

    from stockstream.cli import app
    from stockstream.stack.manager import Stack, StackError
    from stockstream.stack.services import MissingToolError
    from stockstream.supervisor import Supervisor, check_credentials, default_services

    available = {command.name or command.callback.__name__ for command in app.registered_commands
                 if command.callback is not None}
    available |= {group.name for group in app.registered_groups if group.name}
    services = default_services(available, api_port)
    if kafka_credentials is not None:
        try:
            check_credentials(services, kafka_credentials, os.environ)
        except ValueError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(2) from None
    supervisor = Supervisor(services, Stack(), keep_stack, kafka_credentials)
    try:
        raise typer.Exit(supervisor.run())
    except (StackError, MissingToolError) as error:
        typer.echo(f"stack failed to start: {error}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command(name="run")(run)
