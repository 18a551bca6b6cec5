"""``stockstream process``: the stream processors (ticks → indicators, signals, candles, daily aggregates)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError


def _settings_error(error: ValidationError) -> str:
    # Never echo input values: one of them may be a secret.
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "settings"
        lines.append(f"  {where}: {item['msg']}")
    return "bad process configuration:\n" + "\n".join(lines)


def process(
    strategy: Annotated[Path | None, typer.Option("--strategy", help="Strategy file (.toml/.yaml): periods, thresholds, rules (env STOCKSTREAM_STRATEGY).")] = None,
    guarantee: Annotated[str | None, typer.Option("--guarantee", help="exactly-once or at-least-once (env PROCESSING_GUARANTEE).", show_default="exactly-once")] = None,
    commit_interval: Annotated[float | None, typer.Option("--commit-interval", help="Seconds between checkpoints (env PROCESS_COMMIT_INTERVAL_SECONDS).", show_default="0.25 exactly-once, 5 at-least-once")] = None,
    commit_every: Annotated[int | None, typer.Option("--commit-every", help="Also checkpoint after N input records, 0 = off (env PROCESS_COMMIT_EVERY).")] = None,
    grace: Annotated[float | None, typer.Option("--grace", help="Seconds after a candle's end during which late ticks still count (env PROCESS_GRACE_SECONDS).", show_default="5")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Kafka consumer group (env PROCESS_CONSUMER_GROUP).")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Local RocksDB state folder (env PROCESS_STATE_DIR).", show_default=".stack/state/process")] = None,
    instance_id: Annotated[str | None, typer.Option("--instance-id", help="Stable identity of this instance (e.g. a pod name): static group membership and transactional fencing on restart (env PROCESS_INSTANCE_ID).")] = None,
    bootstrap_servers: Annotated[str | None, typer.Option("--bootstrap-servers", help="(env KAFKA_BOOTSTRAP_SERVERS)")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="/metrics port, 0 = off (env METRICS_PORT).", show_default="9102")] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR (env LOG_LEVEL).")] = None,
    cold_start: Annotated[bool, typer.Option("--cold-start", help="Start symbols whose stored state was built with another strategy or timeframe set afresh, instead of refusing (env PROCESS_COLD_START).")] = False,
) -> None:
    """Compute indicators, signals, candles and daily aggregates from the ticks topic (Quix Streams)."""
    from processors.stream.service import ConfigurationError, main
    from processors.stream.settings import ProcessSettings

    overrides: dict[str, Any] = {
        "strategy_file": strategy, "processing_guarantee": guarantee, "commit_interval_s": commit_interval,
        "commit_every": commit_every, "grace_s": grace, "consumer_group": group, "state_dir": state_dir,
        "instance_id": instance_id,
        "bootstrap_servers": bootstrap_servers, "metrics_port": metrics_port,
        "log_level": log_level.upper() if log_level else None, "cold_start": cold_start or None,
    }
    try:
        settings = ProcessSettings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        typer.echo(_settings_error(error), err=True)
        raise typer.Exit(2) from None
    try:
        code = main(settings)
    except ConfigurationError as error:
        typer.echo(f"bad process configuration: {error}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(name="process")(process)
