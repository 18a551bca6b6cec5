"""``stockstream serve``: the query API, the live endpoint and the dashboard (uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str | None, typer.Option("--api-host", help="Bind address (env API_HOST).", show_default="127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option("--api-port", help="Port of the API and dashboard (env API_PORT).", show_default="8000")] = None,
) -> None:
    """Serve the views API (OpenAPI docs at /docs), /live (SSE), /health, /ready and the dashboard at /.

    API keys are required unless API_AUTH=off (loopback only) or, by default (API_AUTH=auto), when bound
    to loopback; /metrics is on METRICS_PORT (9105). Exits 2 when asked to serve without keys beyond loopback.
    """
    import uvicorn
    from pydantic import ValidationError

    from processors.runtime.observability import HEALTH, setup_logging, start_metrics_server
    from stockstream.api.app import create_app
    from stockstream.api.settings import ApiSettings

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["api_host"] = host
    if port is not None:
        overrides["api_port"] = port
    try:
        settings = ApiSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        typer.echo(f"stockstream serve: {error.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    settings.register_secrets()
    setup_logging(settings.log_level, "serve")
    app = create_app(settings)
    start_metrics_server(settings.metrics_host, settings.metrics_port, "serve")
    HEALTH.mark_ready()
    import logging

    logging.getLogger(__name__).info(
        "serving on %s:%s, API keys %s%s; metrics on %s:%s", settings.api_host, settings.api_port,
        "required" if settings.auth_enabled else "NOT required",
        "" if settings.auth_enabled else " (loopback only; API_AUTH=on to require them)",
        settings.metrics_host, settings.metrics_port)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None,
                access_log=False, timeout_graceful_shutdown=3)


def register(app: typer.Typer) -> None:
    app.command(name="serve")(serve)
