"""``stockstream serve``: the query API, the live endpoint and the dashboard (uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Bind address (default API_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default API_PORT or 8000).")] = None,
) -> None:
    """Serve the views API (OpenAPI docs at /docs), /live (SSE), /health, /metrics and the dashboard at /."""
    import uvicorn

    from processors.runtime.observability import setup_logging, start_metrics_server
    from stockstream.api.app import create_app
    from stockstream.api.settings import ApiSettings

    settings = ApiSettings()
    settings.register_secrets()
    setup_logging(settings.log_level, "serve")
    start_metrics_server(settings.api_host, 0, "serve")  # build info only; /metrics is served by the app itself
    app = create_app(settings)
    uvicorn.run(app, host=host or settings.api_host, port=port or settings.api_port, log_config=None,
                access_log=False, timeout_graceful_shutdown=3)


def register(app: typer.Typer) -> None:
    app.command(name="serve")(serve)
