"""``stockstream backfill``: recompute candles, indicators, signals, outcomes and daily aggregates for a range of the log.

Runs with the live processor's settings (strategy file, timeframes, grace, scorecard horizons and
fee, instrument limit), so its events are the processor's (docs/spark.md).

Exit codes: 0 done; 1 done, but some group's warm-up was short (its first events may differ
from the live run beyond 1e-9; each is listed); 2 nothing done (bad option, unreadable
range, missing Spark jars, Kafka unreachable).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from stockstream.console import console
from stockstream.ranges import split_bound

EXIT_OK, EXIT_SHORT, EXIT_USAGE = 0, 1, 2
# The range of the log a command reads (backfill, backtest, replay): one vocabulary (tests/e2e/cli/test_cli_vocabulary.py).
RANGE_START = ("Range start: offsets (1200 for every partition, 0:1200,1:800 by partition), a tick event time"
               " (ISO 8601, UTC if no zone), a date or a duration ago (2h).")
RANGE_END = "Range end, exclusive: offsets, a time, a date or a duration ago."


class Mode(StrEnum):
    error = "error"
    overwrite = "overwrite"
    dynamic = "dynamic"


def parse_time(text: str | None, option: str) -> datetime | None:
    """ISO 8601 (``2024-03-01``, ``2024-03-01T12:00``, with or without zone; UTC when none)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not offsets (1200, 0:1200,1:800), an ISO 8601 time like"
                                 " 2024-03-01T12:00:00Z, a date or a duration ago (2h)", param_hint=option) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _summary(result: Any, startup_s: float, elapsed_s: float) -> Table:
    table = Table(title="backfill", show_header=False, box=None)
    recompute = result.timings.get("recompute", 0.0)
    table.add_row("ticks in range", f"{result.rows:,}")
    for kind, count in result.events.items():
        table.add_row(kind, f"{count:,}")
    table.add_row("groups", f"{len(result.groups)} ({sum(1 for g in result.groups if g.chunk) } extra chunks)")
    table.add_row("warm-up", f"{result.warmup.periods} periods, ≥ {result.warmup.duration_us / 3.6e9:.2f} h")
    table.add_row("spark start-up", f"{startup_s:.1f} s")
    if recompute:
        table.add_row("recompute", f"{recompute:.1f} s ({result.rows / recompute:,.0f} ticks/s)")
    table.add_row("total", f"{elapsed_s:.1f} s")
    for reason, instruments in result.refused.items():
        table.add_row(f"refused ({reason})", f"{len(instruments)} instruments: {', '.join(instruments[:10])}"
                      + (" …" if len(instruments) > 10 else ""))
    if result.refused:
        table.add_row("refused ticks", f"{result.refused_ticks:,} (dead_letters, reasons as the processor's DLQ)")
    for name, where in result.outputs.items():
        table.add_row(name, where)
    return table


def backfill(
    start: Annotated[str | None, typer.Option("--from", help=RANGE_START, show_default="the log's beginning")] = None,
    end: Annotated[str | None, typer.Option("--to", help=RANGE_END, show_default="the log's end when the job starts")] = None,
    symbols: Annotated[str | None, typer.Option(help="Only these symbols, comma-separated.", show_default="all")] = None,
    output: Annotated[str, typer.Option(help="Parquet root (path or URI): <root>/<kind>/symbol=…/date=…")] = "backfill",
    parquet: Annotated[bool, typer.Option(help="Write Parquet (--no-parquet: topics/Redis only).")] = True,
    mode: Annotated[Mode, typer.Option("--write-mode", help="Existing Parquet output: error, overwrite (each kind's dataset), dynamic (only the symbol/date partitions written).")] = Mode.dynamic,
    topics: Annotated[bool, typer.Option(help="Also write every event to the live topic's name + .backfill.")] = False,
    redis_prefix: Annotated[str | None, typer.Option(help="Also write Redis views under this key prefix (e.g. ss:backfill:).")] = None,
    master: Annotated[str | None, typer.Option(help="Spark master URL (env SPARK_MASTER).", show_default="local[*]")] = None,
    chunks: Annotated[int | None, typer.Option(min=1, help="Chunks per symbol (split at UTC midnights).", show_default="automatic")] = None,
    warmup_periods: Annotated[int | None, typer.Option(min=0, help="Warm-up periods per timeframe.", show_default="from the indicator periods, 1e-12")] = None,
    min_warmup: Annotated[float, typer.Option(min=0, help="Warm-up of at least this many seconds of event time.")] = 3600.0,
    strategy: Annotated[Path | None, typer.Option(help="Strategy file (env STOCKSTREAM_STRATEGY); must be the live processor's.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Recompute candles, indicators, signals, signal outcomes and daily aggregates for a range of the ticks log (Spark)."""
    import time

    from pydantic import ValidationError

    from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs, StrategyError, load_strategy
    from processors.runtime.observability import setup_logging
    from spark_jobs.backfill.job import BackfillRequest, run_backfill
    from spark_jobs.backfill.ranges import RangeError, RangeRequest, parse_offsets
    from spark_jobs.jars import SparkJarsError
    from spark_jobs.progress import SparkProgress
    from spark_jobs.session import build_session
    from spark_jobs.settings import SparkJobSettings

    err = console(stderr=True)

    def fail(message: str) -> typer.Exit:
        err.print(f"[red]error:[/] {escape(message)}")
        return typer.Exit(EXIT_USAGE)

    from_offset, from_time = split_bound(start)
    to_offset, to_time = split_bound(end)
    began = time.perf_counter()
    try:
        settings = SparkJobSettings(**({"spark_master": master} if master else {}),
                                    **({"strategy_file": strategy} if strategy else {}))
        settings.register_secrets()
        chosen = DEFAULT_STRATEGY if settings.strategy_file is None else load_strategy(settings.strategy_file)
        # The live processor's configs (strategies on STOCKSTREAM_TIMEFRAMES, scorecards): refused before Spark starts.
        PipelineConfigs(chosen, candle_timeframes=settings.candle_timeframes, grace_ms=settings.grace_ms,
                        horizons_ms=settings.horizons_ms, fee=settings.scorecard_fee)
        request = BackfillRequest(
            range=RangeRequest(
                from_offset=None if from_offset is None else parse_offsets(from_offset),
                to_offset=None if to_offset is None else parse_offsets(to_offset),
                from_time=parse_time(from_time, "--from"), to_time=parse_time(to_time, "--to"),
            ),
            symbols=tuple(s.strip().upper() for s in (symbols or "").split(",") if s.strip()),
            output=output if parquet else None, write_mode=mode.value, topics=topics,
            redis_prefix=redis_prefix, chunks=chunks, warmup_periods=warmup_periods,
            min_warmup_us=round(min_warmup * 1e6), strategy=chosen,
        )
    except ValidationError as error:
        raise fail("bad configuration: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())) from None
    except (RangeError, StrategyError) as error:
        raise fail(str(error)) from None
    if request.output is None and not topics and redis_prefix is None:
        raise fail("nothing to write: keep Parquet, or add --topics or --redis-prefix")
    setup_logging(settings.log_level, "backfill")
    try:
        session = build_session(settings, "stockstream-backfill")
    except SparkJarsError as error:
        raise fail(str(error)) from None
    from spark_jobs.backfill.sinks import OutputExistsError

    try:
        with SparkProgress(session.spark, err) as progress:
            result = run_backfill(session.spark, settings, request, progress)
    except (RangeError, OutputExistsError) as error:
        raise fail(str(error)) from None
    finally:
        session.stop()
    elapsed = time.perf_counter() - began
    if json_output:
        typer.echo(json.dumps({
            "rows": result.rows, "events": result.events, "outputs": result.outputs,
            "startup_s": session.startup_s, "elapsed_s": elapsed, "timings": result.timings,
            "warmup": {"periods": result.warmup.periods, "duration_s": result.warmup.duration_us / 1e6},
            "groups": [group.__dict__ for group in result.groups],
            "refused": {"instruments": result.refused, "ticks": result.refused_ticks},
        }, default=str))
    else:
        err.print(_summary(result, session.startup_s, elapsed))
    for group in result.short:
        err.print(f"[yellow]warning:[/] {escape(str(group.key))} chunk {group.chunk}: warm-up short: "
                  f"{escape(group.detail)}")
    if result.short:
        raise typer.Exit(EXIT_SHORT)


def register(app: typer.Typer) -> None:
    app.command("backfill")(backfill)
