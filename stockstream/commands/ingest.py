"""``stockstream ingest --source simulator|file|alphavantage|coinbase|binance|kraken``."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError


class SourceChoice(StrEnum):
    simulator = "simulator"
    file = "file"
    alphavantage = "alphavantage"
    coinbase = "coinbase"
    binance = "binance"
    kraken = "kraken"


def _settings_error(error: ValidationError) -> str:
    # Never echo input values: one of them may be a secret.
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "settings"
        lines.append(f"  {where}: {item['msg']}")
    return "bad ingest configuration:\n" + "\n".join(lines)


def ingest(
    source: Annotated[SourceChoice | None, typer.Option("--source", help="Where ticks come from (env INGEST_SOURCE).", show_default="simulator")] = None,
    symbols: Annotated[str | None, typer.Option("--symbols", help="Comma-separated symbols, e.g. BTC-USD,ETH-USD (env INGEST_SYMBOLS).")] = None,
    interval: Annotated[float | None, typer.Option("--message-interval", help="Poll/emit interval in seconds (env MESSAGE_INTERVAL).")] = None,
    bootstrap_servers: Annotated[str | None, typer.Option("--bootstrap-servers", help="(env KAFKA_BOOTSTRAP_SERVERS)")] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="Ticks topic (env KAFKA_TOPIC).")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="/metrics port, 0 = off (env METRICS_PORT).", show_default="9101")] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR (env LOG_LEVEL).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="simulator: random seed (env INGEST_SIM_SEED).")] = None,
    rate: Annotated[float | None, typer.Option("--rate", help="simulator: ticks/s over all symbols, 0 = as fast as the broker takes (env INGEST_SIM_RATE).")] = None,
    count: Annotated[int | None, typer.Option("--count", help="simulator: stop after N ticks (env INGEST_SIM_COUNT).")] = None,
    start_time: Annotated[datetime | None, typer.Option("--start-time", formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"], help="simulator: simulated clock start (UTC if no zone) (env INGEST_SIM_START).")] = None,
    step: Annotated[float | None, typer.Option("--step", help="simulator: simulated clock step in seconds (env INGEST_SIM_STEP_SECONDS).", show_default="1")] = None,
    no_volume: Annotated[bool, typer.Option("--no-volume", help="simulator: ticks without volume (env INGEST_SIM_VOLUME=false).")] = False,
    path: Annotated[list[Path] | None, typer.Option("--path", help="file: CSV or JSONL to replay; repeat to replay several (env INGEST_FILE_PATH).")] = None,
    speed: Annotated[float | None, typer.Option("--speed", help="file: replay at recorded speed × X (env INGEST_FILE_SPEED).", show_default="as fast as possible")] = None,
    file_format: Annotated[str | None, typer.Option("--format", help="file: auto, csv or jsonl (env INGEST_FILE_FORMAT).")] = None,
    venue: Annotated[str | None, typer.Option("--venue", help="file: the venue of records without a venue column (env INGEST_FILE_VENUE).", show_default="file")] = None,
    history: Annotated[bool, typer.Option("--history", help="alphavantage: first publish DIGITAL_CURRENCY_DAILY history (env ALPHAVANTAGE_HISTORY).")] = False,
    budget: Annotated[int | None, typer.Option("--budget", help="alphavantage: requests per UTC day (env ALPHAVANTAGE_DAILY_BUDGET).", show_default="25")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="Base URL of the selected API/feed (tests, proxies).")] = None,
) -> None:
    """Ingest ticks from one source into Kafka (validated; bad records go to the ticks DLQ)."""
    from processors.ingest.app import ConfigurationError, main
    from processors.ingest.settings import IngestSettings

    overrides: dict[str, Any] = {
        "source": source.value if source else None, "symbols": symbols, "message_interval": interval,
        "bootstrap_servers": bootstrap_servers, "ticks_topic": topic, "metrics_port": metrics_port,
        "log_level": log_level.upper() if log_level else None, "sim_seed": seed, "sim_rate": rate,
        "sim_count": count, "sim_step_seconds": step, "file_paths": tuple(path) if path else None,
        "file_speed": speed, "file_format": file_format, "file_venue": venue, "alphavantage_daily_budget": budget,
    }
    if start_time is not None:
        overrides["sim_start"] = start_time if start_time.tzinfo else start_time.replace(tzinfo=UTC)
    if no_volume:
        overrides["sim_volume"] = False
    if history:
        overrides["alphavantage_history"] = True
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = IngestSettings(**given)
        if base_url is not None:
            field = {"alphavantage": "alphavantage_base_url", "coinbase": "coinbase_ws_url",
                     "binance": "binance_ws_url", "kraken": "kraken_ws_url"}.get(settings.source)
            if field is None:
                typer.echo(f"--base-url does not apply to the {settings.source} source", err=True)
                raise typer.Exit(2)
            settings = IngestSettings(**given, **{field: base_url})
    except ValidationError as error:
        typer.echo(_settings_error(error), err=True)
        raise typer.Exit(2) from None
    try:
        code = main(settings)
    except ConfigurationError as error:
        typer.echo(f"bad ingest configuration: {error}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(name="ingest")(ingest)
