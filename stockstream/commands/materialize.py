"""``stockstream materialize``: the Redis views service (settings from the environment, see docs/views.md)."""

from __future__ import annotations

import signal
import threading

import typer


def materialize() -> None:
    """Consume ticks, candles, indicators, signals and daily aggregates into Redis views until SIGTERM/Ctrl-C."""
    from processors.materialize.service import Materializer
    from processors.materialize.settings import MaterializeSettings
    from processors.runtime.kafka_admin import KafkaUnavailableError
    from processors.runtime.observability import setup_logging, start_metrics_server

    settings = MaterializeSettings()
    settings.register_secrets()
    setup_logging(settings.log_level, "materialize")
    start_metrics_server(settings.metrics_host, settings.metrics_port, "materialize")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        Materializer(settings, stop=stop).run()
    except KafkaUnavailableError as error:
        typer.echo(f"materialize: {error}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command(name="materialize")(materialize)
