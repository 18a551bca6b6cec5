"""``stockstream kafka-access plan|apply|env``: the Kafka users and ACLs of the services.

``plan`` prints who may do what (no Kafka needed); ``apply`` makes a cluster match it, connected
with the ``KAFKA_*`` settings of a super user (the operator); ``env`` prints the variables that run
a service as its own user on the local stack's SASL listener. Passwords are read from files and
never printed. Exit 1 when Kafka refuses or a password file is missing, 2 for invalid input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from stockstream.console import console
from stockstream.kafka_access.plan import SCRAM_PRINCIPALS, Deployment, Grant, grants

kafka_access_app = typer.Typer(help="The Kafka users and ACLs of the services (docs/security.md).",
                               no_args_is_help=True)
out = console()
err = console(stderr=True)

Prefix = Annotated[str | None, typer.Option("--topic-prefix", help="Topic prefix of the deployment.",
                                            show_default="STOCKSTREAM_TOPIC_PREFIX")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _deployment(prefix: str | None) -> Deployment:
    from processors.runtime.settings import KafkaSettings

    settings = KafkaSettings() if prefix is None else KafkaSettings(topic_prefix=prefix)
    return Deployment.default(settings.topics())


def _grants(prefix: str | None, principal: str | None) -> list[Grant]:
    plan = grants(_deployment(prefix))
    return [grant for grant in plan if principal is None or grant.principal == principal]


@kafka_access_app.command("plan")
def show_plan(
    prefix: Prefix = None,
    principal: Annotated[str | None, typer.Option("--principal", help="Only this user's grants.")] = None,
    as_json: AsJson = False,
) -> None:
    """Every grant: principal, resource, name (literal or prefix), operations."""
    selected = _grants(prefix, principal)
    if as_json:
        print(json.dumps([{"principal": grant.principal, "resource": grant.resource, "name": grant.name,
                           "pattern": grant.pattern, "operations": list(grant.operations)} for grant in selected]))
        return
    table = Table("principal", "resource", "name", "pattern", "operations")
    for grant in selected:
        table.add_row(Text(grant.principal), Text(grant.resource), Text(grant.name), Text(grant.pattern),
                      Text(",".join(grant.operations)))
    out.print(table)


@kafka_access_app.command("apply")
def apply(
    credentials: Annotated[Path | None, typer.Option(
        "--credentials", help="A folder with one password file per user (a mounted Secret): their SCRAM"
                              " credentials are created or updated. Without it only the ACLs are applied.")] = None,
    prefix: Prefix = None,
) -> None:
    """Create the users (from password files) and the ACLs of the plan; idempotent. Run as a super user."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from processors.runtime.observability import register_secret
    from processors.runtime.settings import KafkaSettings
    from stockstream.kafka_access.admin import (
        KafkaAccessError,
        create_acls,
        read_password,
        upsert_scram_users,
    )

    settings = KafkaSettings()
    if settings.sasl_password is not None:
        register_secret(settings.sasl_password.get_secret_value())
    admin = AdminClient({**settings.client_config(), "log_level": 0})
    try:
        if credentials is not None:
            present = [user for user in SCRAM_PRINCIPALS if (credentials / user).is_file()]
            upsert_scram_users(admin, {user: read_password(credentials, user) for user in present})
            err.print(Text(f"users: {', '.join(present) or 'none found in ' + str(credentials)}"))
        count = create_acls(admin, _grants(prefix, None))
    except (KafkaAccessError, KafkaException) as error:
        err.print(Text(f"kafka-access: {error}"))
        raise typer.Exit(1) from None
    err.print(Text(f"ACLs applied: {count}"))


@kafka_access_app.command("env")
def environment(user: Annotated[str, typer.Argument(help=f"One of {', '.join(SCRAM_PRINCIPALS)}.")]) -> None:
    """The variables that run a service as ``user`` on the local stack's SASL listener (shell syntax).

    Names the user's password file, never the password: ``eval "$(stockstream kafka-access env process)"``.
    """
    import shlex

    from stockstream.stack import kafka_security
    from stockstream.stack.services import StackSettings

    try:
        variables = kafka_security.client_environment(StackSettings(), user)
    except ValueError as error:
        err.print(Text(f"kafka-access: {error}"))
        raise typer.Exit(2) from None
    except RuntimeError as error:
        err.print(Text(f"kafka-access: {error}"))
        raise typer.Exit(1) from None
    for name, value in variables.items():
        print(f"export {name}={shlex.quote(value)}")


def register(app: typer.Typer) -> None:
    app.add_typer(kafka_access_app, name="kafka-access")
