"""``stockstream indicators``: the pipeline step over a CSV of ticks or OHLCV bars (the batch runner).

What the columns mean is decided by :mod:`stockstream.csv_layout`: ``timestamp,symbol,price[,volume]
[,venue]`` rows (a header naming the columns, in any order and with the common aliases, is optional),
or OHLCV bar files (``Date,Open,High,Low,Close[,Volume]``). Values are parsed by the same functions as
``ingest --source file``. Every instrument's rows (a venue's symbol: ``venue`` column, else ``--venue``,
default ``file``) go through their own :class:`processors.core.pipeline.SymbolProcessor` (the one
definition of the pipeline step), which writes either one row per input row (timeframe ``tick``: the
input's columns, ``symbol`` and ``venue`` when the input had none, the indicators, ``signals``) or one
row per closed candle (a candle timeframe, with ``symbol`` and ``venue``).

Strategy files with ``[strategies.NAME]`` tables (the rule language): the run builds the candles of
``--timeframe`` and of every timeframe its strategies run on or read with ``@tf``
(:func:`candle_timeframes`), as a processor configured with those timeframes would. Tick output
then has, after the fixed indicators, one column per indicator line the strategies use
(:func:`strategy_columns`: the language's column name, ``ema_9``, ``stoch_14_3_3_k``,
``macd_12_26_9_line``, ``bb_20_2_upper``, followed by ``_<timeframe>`` for a value on a candle
timeframe, ``sma_50_1h``: the latest closed candle's value as the tick sees it), and the ``signals``
cell lists every tick-timeframe signal, fixed rules and strategies, as ``name:SIDE`` joined by ``;``.
With ``outcomes``, every :class:`~schemas.events.SignalOutcome` the pipeline step emits (every
timeframe's signals, at the ``horizons_ms``, net of ``fee``: docs/core.md, "Scorecards") is written as
a row of :data:`OUTCOME_COLUMNS`.

Bars are candles already: each bar is one update of the engine at the bar's timestamp with
price = its close and volume = its volume — exactly how the stream processor runs the indicators
of a candle timeframe on each closed candle — and is written back as it was read (its open, high,
low, close and volume), followed by the indicators and signals. A candle timeframe does not apply
to bars (they are not re-sampled); bar files are refused with ``--timeframe`` other than ``tick``.

Each data row becomes a Tick with ``source="file"``, ``source_id`` = its line number and
``ts_init`` = its event time (no wall clock, so runs are reproducible); its lineage is
(topic = the input file name or ``stdin``, partition = -1, offset = the data row index,
0-based, blank lines not counted). Rows that cannot be used are reported and skipped. The
output's header is written with its first row: an input of which nothing could be used writes
nothing at all.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from processors.core.pipeline import StepOutput, SymbolProcessor
from processors.core.strategies.engine import CompiledStrategies
from processors.core.strategy import PipelineConfigs, Strategy
from processors.ingest import reasons
from processors.ingest.reasons import RecordRejected
from processors.ingest.validation import (
    parse_amount,
    parse_file_timestamp,
    parse_symbol,
    parse_venue,
    require_amount,
)
from schemas.events import Lineage, Signal, SignalOutcome, Tick
from schemas.instruments import Instrument
from schemas.timeframes import TICK
from stockstream.csv_layout import OPTIONAL_LAST, InputFormatError, Layout, layout_of

DEFAULT_VENUE = "file"
CANDLE_COLUMNS = ("symbol", "venue", "timeframe", "ts_open", "ts_close", "open", "high", "low", "close", "volume",
                  "trade_count")
PARTITION = -1  # not a Kafka partition: the rows of a file
#: The columns of ``--outcomes``: the fields of :class:`SignalOutcome` (``schema_version`` aside), its lineage flattened.
OUTCOME_COLUMNS = (*(name for name in SignalOutcome.model_fields if name not in ("schema_version", "lineage")),
                   "lineage_topic", "lineage_partition", "lineage_offset")
__all__ = ["InputFormatError", "BatchReport", "SkippedRow", "run", "counting_lines", "candle_timeframes",
           "column_name", "strategy_columns", "OUTCOME_COLUMNS"]


@dataclass(frozen=True)
class SkippedRow:
    line: int
    reason: str
    detail: str


@dataclass
class BatchReport:
    rows: int = 0  # data rows read
    written: int = 0  # output rows
    skipped: list[SkippedRow] = field(default_factory=list)
    outcomes: int = 0  # outcome rows written
    layout: Layout | None = None  # how the input was read (None: no data row at all)


def _bar_prices(cells: list[str], layout: Layout) -> None:
    """Open, high and low of a bar are prices, and high/low bound the bar; raises RecordRejected."""
    values: dict[str, float] = {}
    for role in ("open", "high", "low", "close"):
        try:
            values[role] = require_amount(cells[layout.columns[role]], "price")
        except RecordRejected as rejected:
            raise RecordRejected(rejected.reason, f"{role}: {rejected.detail}") from None
    if values["high"] < max(values.values()) or values["low"] > min(values.values()):
        raise RecordRejected(reasons.FIELD_INVALID, f"bar out of bounds: open {values['open']!r}, high"
                             f" {values['high']!r}, low {values['low']!r}, close {values['close']!r}")


def _tick(cells: list[str], layout: Layout, line: int, venue: str) -> Tick:
    last = next((role for role, index in layout.columns.items() if index == layout.width - 1), None)
    if len(cells) == layout.width - 1 and last in OPTIONAL_LAST:
        cells = [*cells, ""]
    if len(cells) != layout.width:
        raise RecordRejected(reasons.MALFORMED_CSV, f"{len(cells)} fields, expected {layout.width}")
    if layout.kind == "bars":
        _bar_prices(cells, layout)
    column = layout.columns
    ts_event = parse_file_timestamp(cells[column["timestamp"]])
    symbol = layout.symbol if "symbol" not in column else parse_symbol(cells[column["symbol"]])
    return Tick(
        symbol=symbol, venue=parse_venue(cells[column["venue"]] if "venue" in column else None, venue),
        price=require_amount(cells[layout.price_column], "price"),
        volume=parse_amount(cells[column["volume"]], "volume", required=False) if "volume" in column else None,
        ts_event=ts_event, ts_init=ts_event, source="file", source_id=str(line),
    )


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _signals(signals: Iterable[Signal], timeframe: str) -> str:
    return ";".join(f"{s.rule}:{s.side}" for s in signals if s.timeframe == timeframe)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _outcome_row(outcome: SignalOutcome) -> list[object]:
    cells: list[object] = []
    for name in OUTCOME_COLUMNS[:-3]:
        value = getattr(outcome, name)
        cells.append("" if value is None else _iso(value) if isinstance(value, datetime)
                     else repr(value) if isinstance(value, float) else value)
    lineage = outcome.lineage
    return [*cells, lineage.topic, lineage.partition, lineage.offset]


def candle_timeframes(strategy: Strategy, timeframe: str) -> tuple[str, ...]:
    """The candle timeframes a run builds: ``timeframe`` (when it is one), then every candle timeframe the
    strategy file's ``[strategies]`` run on or read with ``@tf`` (none without them: the default run
    builds no candles on ``tick``)."""
    chosen = [] if timeframe == TICK else [timeframe]
    return (*chosen, *(found for found in strategy.candle_timeframes_named() if found not in chosen))


def column_name(name: str, timeframe: str) -> str:
    """The column of a strategy value in tick output: its name on ``tick``, ``<name>_<timeframe>`` on a candle
    timeframe (``ema_9``, ``sma_50_1h``)."""
    return name if timeframe == TICK else f"{name}_{timeframe}"


def strategy_columns(strategy: Strategy, timeframes: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(column, timeframe, value name) of every indicator line the ``[strategies]`` use, for tick output.

    Tick-timeframe values first, then each candle timeframe of ``timeframes`` in order; within one, in
    the order the strategies first use them. Raises :class:`~processors.core.strategy.StrategyError`
    for invalid strategies.
    """
    definitions = strategy.definitions(timeframes)
    if not definitions:
        return []
    found = CompiledStrategies(definitions, candle_timeframes=timeframes).all_columns()
    columns: list[tuple[str, str, str]] = []
    for timeframe in (TICK, *timeframes):
        for name in found.get(timeframe, ()):
            columns.append((column_name(name, timeframe), timeframe, name))
    return columns


def _rows(lines: Iterable[str], skip: Callable[[int, str, str], None]) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank CSV row; a row the csv module cannot read is skipped."""
    reader = csv.reader(lines)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # e.g. a NUL byte or an oversized field: that row only
            skip(reader.line_num, reasons.MALFORMED_CSV, str(error))
            continue
        if any(cell.strip() for cell in cells):
            yield reader.line_num, cells


def run(
    lines: Iterable[str],
    output: TextIO,
    *,
    strategy: Strategy,
    timeframe: str = TICK,
    topic: str = "stdin",
    grace_ms: int = 5_000,
    venue: str = DEFAULT_VENUE,
    flush: bool = True,
    symbol: str | None = None,
    file_stem: str | None = None,
    on_skip: Callable[[SkippedRow], None] | None = None,
    on_layout: Callable[[Layout], None] | None = None,
    outcomes: TextIO | None = None,
    horizons_ms: tuple[int, ...] = (),
    fee: float = 0.0,
) -> BatchReport:
    """Process CSV ``lines`` into ``output``; returns what was read, written and skipped.

    ``timeframe`` ``tick`` writes one row per used input row (input cells, ``symbol`` and ``venue``
    when the input has no such column, then every indicator, then ``signals``); a candle timeframe
    writes one row per closed candle. ``flush`` closes the still-open candles at the end of the
    input. ``venue`` is the venue of rows without a ``venue`` cell; each instrument (venue + symbol)
    is computed on its own.
    ``symbol`` (``--symbol``) and ``file_stem`` name the symbol of a file without a symbol column.
    ``on_layout`` learns how the input is read before any row is processed. ``outcomes`` receives the
    signal outcomes at ``horizons_ms`` net of ``fee`` (a header, then one row per outcome; the header
    alone when none matured and some output row was written). Raises :class:`InputFormatError` for an
    unusable header or shape and :class:`~processors.core.strategy.StrategyError` for invalid
    strategies (nothing written then).
    """
    candles = timeframe != TICK
    timeframes = candle_timeframes(strategy, timeframe)
    configs = PipelineConfigs(strategy, candle_timeframes=timeframes, grace_ms=grace_ms,
                              horizons_ms=horizons_ms if outcomes is not None else (), fee=fee)
    names = strategy.indicator_names()
    # A strategy column named like a fixed indicator (ema_12, rsi_14, vwap: the same value, bit for bit) is
    # not repeated; it fills that column on the symbols whose fixed set lacks it (a per-symbol override).
    found = [] if candles else strategy_columns(strategy, timeframes)
    extra = [column for column in found if column[0] not in names]
    shared = [(names.index(column), timeframe, name) for column, timeframe, name in found if column in names]
    read_timeframes = tuple(dict.fromkeys(timeframe for _, timeframe, _ in found))
    outcome_writer = None if outcomes is None else csv.writer(outcomes, lineterminator="\n")
    outcome_header: list[str] = list(OUTCOME_COLUMNS)
    processors: dict[tuple[str, str], SymbolProcessor] = {}
    last: dict[tuple[str, str], tuple[Tick, Lineage]] = {}
    report = BatchReport()
    writer = csv.writer(output, lineterminator="\n")
    header: list[str] = []

    def skip(line: int, reason: str, detail: str) -> None:
        row = SkippedRow(line, reason, detail)
        report.skipped.append(row)
        if on_skip is not None:
            on_skip(row)

    def write(row: list[object]) -> None:
        if header:
            writer.writerow(header)
            header.clear()
        writer.writerow(row)
        report.written += 1

    def write_outcomes(out: StepOutput) -> None:
        if outcome_writer is None or not out.outcomes:
            return
        if outcome_header:
            outcome_writer.writerow(outcome_header)
            outcome_header.clear()
        for outcome in out.outcomes:
            outcome_writer.writerow(_outcome_row(outcome))
            report.outcomes += 1

    def indicator_cells(processor: SymbolProcessor, fixed: dict[str, float | None]) -> list[str]:
        """The fixed indicators' cells, then the strategies' (tick output)."""
        cells = [_number(fixed.get(name)) for name in names]
        compiled, state = processor.config.plan.compiled, processor.strategies
        if not found or compiled is None or state is None:
            return cells + [""] * len(extra)
        values = {timeframe: compiled.values(state, timeframe) for timeframe in read_timeframes}
        for index, timeframe, name in shared:
            if names[index] not in fixed:
                cells[index] = _number(values[timeframe].get(name))
        return cells + [_number(values[timeframe].get(name)) for _, timeframe, name in extra]

    def write_candles(out: StepOutput) -> None:
        snapshots = iter(s for s in out.snapshots if s.timeframe == timeframe)
        closed = (c for c in out.candles if c.timeframe == timeframe)
        for candle, snapshot in zip(closed, snapshots, strict=False):
            fired = _signals((s for s in out.signals if s.ts_event == candle.ts_close), timeframe)
            write([
                candle.symbol, candle.venue, candle.timeframe, _iso(candle.ts_open), _iso(candle.ts_close),
                repr(candle.open), repr(candle.high), repr(candle.low), repr(candle.close),
                repr(candle.volume), candle.trade_count,
                *(_number(snapshot.values.get(name)) for name in names), fired,
            ])

    offset = 0

    def unreadable(line: int, reason: str, detail: str) -> None:  # a row the csv module could not read
        nonlocal offset
        report.rows += 1
        offset += 1
        skip(line, reason, detail)

    rows = _rows(lines, unreadable)
    buffered = list(itertools.islice(rows, 3))  # a header may take up to 3 rows (yfinance)
    if not buffered:
        return report
    layout = layout_of([cells for _, cells in buffered], symbol=symbol, file_stem=file_stem)
    if layout.kind == "bars" and candles:
        raise InputFormatError("the input is OHLCV bars (each row is already a candle): they are not re-sampled"
                               " into other candles; leave --timeframe out (one output row per bar)")
    report.layout = layout
    if on_layout is not None:
        on_layout(layout)
    header[:] = [*(CANDLE_COLUMNS if candles else layout.header), *names, *(column for column, _, _ in extra),
                 "signals"]
    for line, cells in itertools.chain(buffered[layout.header_rows:], rows):
        report.rows += 1
        lineage = Lineage(topic=topic, partition=PARTITION, offset=offset)
        offset += 1
        try:
            tick = _tick(cells, layout, line, venue)
        except RecordRejected as rejected:
            skip(line, rejected.reason, rejected.detail)
            continue
        instrument = (tick.symbol, tick.venue)
        processor = processors.get(instrument)
        if processor is None:
            processor = processors[instrument] = SymbolProcessor(configs.for_symbol(tick.symbol),
                                                                 Instrument(tick.symbol, tick.venue))
        out = processor.process(tick, lineage)
        write_outcomes(out)
        if out.rejections:
            skip(line, out.rejections[0].reason, out.rejections[0].detail)
            continue
        last[instrument] = (tick, lineage)
        if candles:
            write_candles(out)
        elif out.out_of_order:
            skip(line, "out_of_order", "older than the instrument's previous tick: folded into candles and the "
                                       "daily aggregate only, so it has no tick-timeframe indicators")
        else:
            snapshot = out.snapshots[-1]
            padded = cells + [""] * (layout.width - len(cells))
            added = [tick.symbol] if "symbol" not in layout.columns else []
            if "venue" in layout.columns:
                padded[layout.columns["venue"]] = tick.venue
            else:
                added.append(tick.venue)
            write([*padded, *added, *indicator_cells(processor, snapshot.values), _signals(out.signals, TICK)])
    if candles and flush:
        for key, processor in processors.items():
            if key in last:
                write_candles(processor.flush(*last[key]))  # no outcomes: they mature on ticks only
    if outcome_writer is not None and outcome_header and report.written:
        outcome_writer.writerow(outcome_header)  # no signal matured: the header alone
    return report


def counting_lines(handle: TextIO, advance: Callable[[int], None], every: int = 4096) -> Iterator[str]:
    """Yield ``handle``'s lines, reporting characters read to ``advance`` now and then (progress)."""
    pending = 0
    for count, text in enumerate(handle, 1):
        pending += len(text)
        if count % every == 0:
            advance(pending)
            pending = 0
        yield text
    advance(pending)
