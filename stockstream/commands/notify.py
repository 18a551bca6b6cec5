"""``stockstream notify``: deliver signals to the subscribed channels (see docs/notify.md)."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stockstream.console import console

if TYPE_CHECKING:  # the notifier's modules are imported when the command runs (stockstream/cli.py)
    from processors.notify.supervisor import ReplayFrom


def parse_since(value: str | None, now: datetime) -> ReplayFrom:
    """``beginning``, an ISO-8601 time (UTC if no offset) or a duration back from ``now`` (``2h``)."""
    from processors.notify.subscriptions import parse_duration

    if value is None:
        return None
    if value.strip().lower() == "beginning":
        return "beginning"
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter("use 'beginning', an ISO time like 2024-05-01T12:00:00Z or a duration like 2h") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def notify(
    subscriptions: Annotated[Path | None, typer.Option(
        "--subscriptions", "-s", help="Subscription file (.toml/.yaml) (env NOTIFY_SUBSCRIPTIONS).", show_default="console only",
        dir_okay=False)] = None,
    renotify: Annotated[bool, typer.Option(
        "--renotify", help="Re-announce the signals already in the log, old ones included, then exit. Runs beside"
        " the live notifier with its own consumer groups and ledger.")] = False,
    since: Annotated[str | None, typer.Option(
        "--from", help="With --renotify: start from 'beginning', an ISO time or a duration ago (2h).", show_default="beginning")] = None,
    check: Annotated[bool, typer.Option("--check", help="Validate the configuration and exit.")] = False,
) -> None:
    """Deliver BUY/SELL signals to consoles, webhooks, Slack, Discord, Telegram, email and browsers."""
    from pydantic import ValidationError

    from processors.notify.offsets import OffsetError
    from processors.notify.settings import NotifySettings
    from processors.notify.subscriptions import (
        SubscriptionConfigError,
        default_config,
        load_config,
        maskable_values,
        resolve_secrets,
    )
    from processors.notify.supervisor import Supervisor
    from processors.runtime.kafka_admin import KafkaUnavailableError
    from processors.runtime.observability import register_secret, setup_logging

    try:
        settings = NotifySettings()
    except ValidationError as error:
        console(stderr=True).print(f"[red]invalid notifier settings:[/] {error}")
        raise typer.Exit(2) from None
    setup_logging(settings.log_level, service="notify")
    path = subscriptions or settings.subscriptions_file
    try:
        config = load_config(path) if path else default_config()
        secrets = resolve_secrets(config, os.environ, path)
    except SubscriptionConfigError as error:
        console(stderr=True).print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    for value in maskable_values(secrets):
        register_secret(value)
    if since is not None and not renotify:
        console(stderr=True).print("[red]--from only applies to --renotify[/] (the live notifier always resumes where it stopped)")
        raise typer.Exit(2)
    if check:
        for name, channel in sorted(config.channels.items()):
            console(stderr=True).print(f"channel {name} ({channel.type}): {len(config.subscriptions_of(name))} subscription(s)")
        console(stderr=True).print("[green]configuration is valid[/]")
        return
    supervisor = Supervisor(settings, config, secrets, renotify=renotify,
                            since=parse_since(since, datetime.now(UTC)))
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stop())
    try:
        code = supervisor.run()
    except (KafkaUnavailableError, OffsetError) as error:
        console(stderr=True).print(f"[red]notify failed:[/] {error}")
        raise typer.Exit(1) from None
    except OSError as error:  # e.g. METRICS_PORT already taken
        console(stderr=True).print(f"[red]notify failed:[/] {error.strerror or error} (METRICS_PORT={settings.metrics_port}?)")
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("notify")(notify)
