"""``stockstream indicators --input TICKS.csv --output OUT.csv``: the indicator engine over a CSV.

Exit codes: 0 every data row was used; 1 done, but some rows were skipped (each one is
listed on stderr with its line number and reason); 2 nothing done: bad option, unreadable
input, bad header or invalid strategy file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from processors.core.strategy import DEFAULT_STRATEGY, StrategyError, load_strategy
from schemas.instruments import InvalidInstrumentError, check_venue
from schemas.timeframes import TICK, InvalidTimeframeError, validate_timeframe
from stockstream.batch import InputFormatError, SkippedRow, counting_lines, run
from stockstream.console import console

EXIT_OK, EXIT_SKIPPED, EXIT_USAGE = 0, 1, 2


def indicators(
    input_path: Annotated[str, typer.Option("--input", "-i", help="Ticks CSV (timestamp,symbol,price[,volume][,venue]); - for stdin.")],
    output_path: Annotated[str, typer.Option("--output", "-o", help="Output CSV; - for stdout.")],
    timeframe: Annotated[str, typer.Option(help="tick: one row per input row; a candle timeframe (1m, 5m, 1h…): one row per closed candle.")] = TICK,
    strategy: Annotated[Path | None, typer.Option(help="Strategy file (.toml/.yaml): periods, thresholds, rules, per-symbol overrides.")] = None,
    grace: Annotated[float, typer.Option(help="Seconds after a candle's end during which late ticks still count.")] = 5.0,
    flush: Annotated[bool, typer.Option(help="Close the candles still open at the end of the input (candle timeframes).")] = True,
    venue: Annotated[str, typer.Option(help="Venue of rows without a venue column (each venue's symbol is its own series).")] = "file",
) -> None:
    """Compute indicators and signals per instrument (venue + symbol) over a CSV of ticks (same engine as the stream).

    Bad rows are listed on stderr with their line numbers and skipped.

    Exit codes: 0 every row used; 1 some rows skipped; 2 nothing done (bad option, input, header or strategy).
    """
    err = console(stderr=True)

    def fail(message: str) -> typer.Exit:
        err.print(f"[red]error:[/] {escape(message)}")
        return typer.Exit(EXIT_USAGE)

    try:
        validate_timeframe(timeframe)
    except InvalidTimeframeError as error:
        raise fail(str(error)) from None
    if not 0 <= grace <= 86_400:
        raise fail("--grace must be between 0 and 86400 seconds")
    try:
        check_venue(venue)
    except InvalidInstrumentError as error:
        raise fail(str(error)) from None
    try:
        chosen = DEFAULT_STRATEGY if strategy is None else load_strategy(strategy)
    except StrategyError as error:
        raise fail(str(error)) from None

    def on_skip(row: SkippedRow) -> None:
        sys.stderr.write(f"line {row.line}: skipped ({row.reason}): {row.detail}\n")

    with ExitStack() as stack:
        try:
            source: TextIO = sys.stdin if input_path == "-" else stack.enter_context(
                open(input_path, encoding="utf-8", errors="replace", newline=""))
            sink: TextIO = sys.stdout if output_path == "-" else stack.enter_context(
                open(output_path, "w", encoding="utf-8", newline=""))
        except OSError as error:
            raise fail(f"cannot open {error.filename}: {error.strerror}") from None
        lines: Iterable[str] = source
        if input_path != "-" and sys.stderr.isatty():
            progress = stack.enter_context(Progress(
                TextColumn("[progress.description]{task.description}"), BarColumn(), TaskProgressColumn(),
                TimeRemainingColumn(), console=err, transient=True,
            ))
            task = progress.add_task(Path(input_path).name, total=Path(input_path).stat().st_size)
            lines = counting_lines(source, lambda n: progress.advance(task, n))
        try:
            report = run(
                lines, sink, strategy=chosen, timeframe=timeframe,
                topic="stdin" if input_path == "-" else Path(input_path).name, grace_ms=round(grace * 1000),
                venue=venue, flush=flush, on_skip=on_skip,
            )
        except InputFormatError as error:
            raise fail(str(error)) from None
        except BrokenPipeError:  # the reader went away (``… -o - | head``): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(EXIT_OK) from None
    if report.skipped:
        err.print(f"{len(report.skipped)} of {report.rows} rows skipped; {report.written} rows written",
                  markup=False)
        raise typer.Exit(EXIT_SKIPPED)


def register(app: typer.Typer) -> None:
    app.command("indicators")(indicators)
