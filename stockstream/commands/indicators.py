"""``stockstream indicators --input TICKS.csv --output OUT.csv``: the indicator engine over a CSV.

The input is ticks (``timestamp,symbol,price[,volume]``, header optional, common column names
accepted) or OHLCV bars (``Date,Open,High,Low,Close[,Volume]``, a market-data download):
:mod:`stockstream.csv_layout` decides. Exit codes: 0 every data row was used; 1 done, but some
rows were skipped (each one is listed on stderr with its line number and reason); 2 nothing
written: bad option, unreadable input, a header that is not understood (the expected one is
said), an invalid strategy file, or no row could be used. The output file (and the ``--outcomes``
file) is written under a temporary name and renamed at the end, so with exit 2 there is no output
file (and an existing one is left as it was).

What a strategy file's ``[strategies]`` add (columns named by the one rule of
:func:`stockstream.batch.column_name`) and the outcome columns: :mod:`stockstream.batch`, docs/core.md
("Batch command").
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.markup import escape

from schemas.timeframes import TICK, InvalidTimeframeError, validate_timeframe
from stockstream.console import console

if TYPE_CHECKING:  # the engine's modules are imported when the command runs (stockstream/cli.py)
    from stockstream.csv_layout import Layout

EXIT_OK, EXIT_SKIPPED, EXIT_USAGE = 0, 1, 2


def indicators(
    input_path: Annotated[str, typer.Option(
        "--input", "-i", help="Ticks CSV (timestamp,symbol,price[,volume]; time/date, ticker, last/close, qty/size"
        " accepted; optional venue) or OHLCV bars (Date,Open,High,Low,Close[,Volume]); - for stdin.")],
    output_path: Annotated[str, typer.Option("--output", "-o", help="Output CSV; - for stdout.")],
    timeframe: Annotated[str, typer.Option(help="tick: one row per input row; a candle timeframe (1m, 5m, 1h…): one row per closed candle (ticks only).")] = TICK,
    strategy: Annotated[Path | None, typer.Option(help="Strategy file (.toml/.yaml): periods, thresholds, rules, per-symbol overrides, [strategies.NAME] in the rule language (tick output: a column per indicator line they use, named name_parameters[_line], then _timeframe for a candle timeframe's value: ema_9, stoch_14_3_3_k, sma_50_1h for sma(50)@1h; their tick signals in signals).")] = None,
    outcomes: Annotated[str | None, typer.Option("--outcomes", help="Also write every signal's outcome at each horizon (the scorecard's SignalOutcome rows) to this CSV; - for stdout.", show_default="not written")] = None,
    horizons: Annotated[str, typer.Option(help="Scorecard horizons for --outcomes, comma-separated (as the processor's SCORECARD_HORIZONS).")] = "1m,5m,1h,1d",
    fee: Annotated[float, typer.Option(min=0, max=0.5, help="Round-trip fee a net return subtracts, a fraction (as SCORECARD_FEE; 0.001 = 10 bp).")] = 0.0,
    grace: Annotated[float, typer.Option(help="Seconds after a candle's end during which late ticks still count.")] = 5.0,
    flush: Annotated[bool, typer.Option(help="Close the candles still open at the end of the input (candle timeframes).")] = True,
    venue: Annotated[str, typer.Option(help="Venue of rows without a venue column (each venue's symbol is its own series).")] = "file",
    symbol: Annotated[str | None, typer.Option(help="Symbol of every row when the input has no symbol column.", show_default="the ticker row of a yfinance file, else the file name, e.g. BTC-USD.csv")] = None,
) -> None:
    """Compute indicators and signals per instrument (venue + symbol) over a CSV of ticks or OHLCV bars (same engine as the stream).

    Bad rows are listed on stderr with their line numbers and skipped. Bars: the close drives the
    indicators and each bar is written back with them. A strategy file's [strategies] run beside the
    fixed rules, with the candles of every timeframe they use; --outcomes scores every signal as the
    processor does (first tick at or after signal time + horizon; return = side x (p_h / p_signal - 1),
    net of --fee).

    Exit codes: 0 every row used; 1 some rows skipped; 2 nothing written (bad option, input, header or strategy,
    or no usable row; no output file then).
    """
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    from processors.core.outcomes import horizon_ms
    from processors.core.strategy import DEFAULT_STRATEGY, StrategyError, load_strategy
    from schemas.instruments import InvalidInstrumentError, check_venue
    from schemas.symbols import InvalidSymbolError, normalize_symbol
    from stockstream.batch import InputFormatError, SkippedRow, counting_lines, run

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
    if symbol is not None:
        try:
            symbol = normalize_symbol(symbol)
        except InvalidSymbolError as error:
            raise fail(f"--symbol: {error}") from None
    try:
        horizons_ms = tuple(horizon_ms(text.strip()) for text in horizons.split(",") if text.strip())
    except ValueError as error:
        raise fail(f"--horizons: {error}") from None
    if outcomes is not None and not horizons_ms:
        raise fail("--horizons: give at least one horizon for --outcomes, e.g. --horizons 1m,5m,1h")
    if len(set(horizons_ms)) != len(horizons_ms):
        raise fail(f"--horizons repeats a horizon: {horizons}")
    if outcomes == "-" and output_path == "-":
        raise fail("--output and --outcomes cannot both be stdout (-): give one of them a file")
    try:
        chosen = DEFAULT_STRATEGY if strategy is None else load_strategy(strategy)
    except StrategyError as error:
        raise fail(str(error)) from None

    def on_skip(row: SkippedRow) -> None:
        sys.stderr.write(f"line {row.line}: skipped ({row.reason}): {row.detail}\n")

    def symbol_note(layout: Layout | None) -> None:
        if layout is not None and layout.symbol is not None and layout.symbol_origin != "--symbol":
            sys.stderr.write(f"no symbol column: every row is {layout.symbol} (from {layout.symbol_origin};"
                             " --symbol to choose)\n")

    partials: list[tuple[Path, TextIO, str]] = []  # (temporary file, its handle, the target)

    def open_output(path: str, stack: ExitStack) -> TextIO:
        if path == "-":
            return sys.stdout
        # written beside the target under a temporary name, renamed once something was written
        target = Path(path)
        descriptor, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial",
                                            dir=target.parent if str(target.parent) else ".")
        handle = stack.enter_context(open(descriptor, "w", encoding="utf-8", newline=""))
        partials.append((Path(name), handle, path))
        return handle

    with ExitStack() as stack:
        stack.callback(lambda: [partial.unlink(missing_ok=True) for partial, _, _ in partials])
        try:
            source: TextIO = sys.stdin if input_path == "-" else stack.enter_context(
                open(input_path, encoding="utf-8", errors="replace", newline=""))
            sink = open_output(output_path, stack)
            outcome_sink = None if outcomes is None else open_output(outcomes, stack)
        except OSError as error:
            raise fail(f"cannot open {error.filename or output_path}: {error.strerror}") from None
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
                venue=venue, flush=flush, symbol=symbol, file_stem=None if input_path == "-" else Path(input_path).stem,
                on_skip=on_skip, outcomes=outcome_sink, horizons_ms=horizons_ms, fee=fee,
            )
        except (InputFormatError, StrategyError) as error:
            raise fail(str(error)) from None
        except BrokenPipeError:  # the reader went away (``… -o - | head``): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(EXIT_OK) from None
        if report.written == 0:
            raise fail(f"nothing written: {len(report.skipped)} of {report.rows} rows skipped" if report.rows
                       else "nothing written: the input has no data rows")
        symbol_note(report.layout)
        umask = os.umask(0)
        os.umask(umask)
        while partials:
            partial, handle, target = partials.pop()
            handle.close()
            partial.chmod(0o666 & ~umask)  # as open() would have made it (mkstemp makes 0600)
            os.replace(partial, target)
    if report.skipped:
        err.print(f"{len(report.skipped)} of {report.rows} rows skipped; {report.written} rows written",
                  markup=False)
        raise typer.Exit(EXIT_SKIPPED)


def register(app: typer.Typer) -> None:
    app.command("indicators")(indicators)
