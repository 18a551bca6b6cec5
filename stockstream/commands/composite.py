"""``stockstream composite``: the composite index SYMBOL@index (median of the fresh venues) into ``ticks``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError


def composite(
    symbols: Annotated[str | None, typer.Option("--symbols", help="Comma-separated symbols with a composite index (env COMPOSITE_SYMBOLS).")] = None,
    stale: Annotated[float | None, typer.Option("--stale", help="Seconds of event time after which a silent venue stops counting (env COMPOSITE_STALE_S).", show_default="10")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Kafka consumer group (env COMPOSITE_CONSUMER_GROUP).")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Local state folder (env COMPOSITE_STATE_DIR).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Where a new group starts: end or beginning of the log (env COMPOSITE_AUTO_OFFSET_RESET: latest, earliest).", show_default="end")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="/metrics port, 0 = off (env METRICS_PORT).", show_default="9106")] = None,
) -> None:
    """Publish the composite index of each symbol (SYMBOL@index) into the ticks topic; docs/composite.md."""
    from processors.composite.service import main
    from processors.composite.settings import CompositeSettings

    overrides: dict[str, Any] = {"symbols": symbols, "stale_s": stale, "consumer_group": group,
                                 "state_dir": state_dir, "metrics_port": metrics_port,
                                 "auto_offset_reset": {"beginning": "earliest", "end": "latest", None: None}.get(start, start)}
    try:
        settings = CompositeSettings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        typer.echo(f"bad composite configuration: {error.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(main(settings))


def register(app: typer.Typer) -> None:
    app.command(name="composite")(composite)
