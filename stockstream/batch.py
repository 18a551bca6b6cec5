"""``stockstream indicators``: the pipeline step over a CSV of ticks (the batch runner).

Reads ``timestamp,symbol,price[,volume][,venue]`` rows (a header naming the columns, in any
order, is optional; values are parsed by the same functions as ``ingest --source file``),
feeds every instrument's ticks (a venue's symbol: ``venue`` column, else ``--venue``, default
``file``) through its own :class:`processors.core.pipeline.SymbolProcessor` (the one
definition of the pipeline step) and writes either one row per input row (timeframe ``tick``:
the input's columns, ``venue`` when the input had none, the indicators, ``signals``) or one
row per closed candle (a candle timeframe, with ``symbol`` and ``venue``).

Each data row becomes a Tick with ``source="file"``, ``source_id`` = its line number and
``ts_init`` = its event time (no wall clock, so runs are reproducible); its lineage is
(topic = the input file name or ``stdin``, partition = -1, offset = the data row index,
0-based, blank lines not counted). Rows that cannot be used are reported and skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from processors.core.pipeline import StepOutput, SymbolProcessor
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
from schemas.events import Lineage, Signal, Tick
from schemas.instruments import Instrument
from schemas.timeframes import TICK

COLUMNS = ("timestamp", "symbol", "price", "volume")
ALL_COLUMNS = (*COLUMNS, "venue")
REQUIRED = ("timestamp", "symbol", "price")
DEFAULT_VENUE = "file"
CANDLE_COLUMNS = ("symbol", "venue", "timeframe", "ts_open", "ts_close", "open", "high", "low", "close", "volume",
                  "trade_count")
PARTITION = -1  # not a Kafka partition: the rows of a file


class InputFormatError(Exception):
    """The input as a whole is unusable (bad header); nothing was processed."""


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


@dataclass(frozen=True)
class _Layout:
    names: tuple[str, ...]  # lower-cased column names
    header: tuple[str, ...]  # as written in the file (or the defaults)


def _layout(first: list[str]) -> _Layout | None:
    """The layout from a header row, or None when ``first`` is already data."""
    names = tuple(cell.strip().lower() for cell in first)
    if "price" not in names and "timestamp" not in names:
        return None
    if (any(name not in ALL_COLUMNS for name in names) or len(set(names)) != len(names)
            or any(name not in names for name in REQUIRED)):
        raise InputFormatError(
            f"header {','.join(first)!r} must name timestamp, symbol, price and optionally volume and venue,"
            " once each"
        )
    return _Layout(names, tuple(cell.strip() for cell in first))


def _tick(cells: list[str], layout: _Layout, line: int, venue: str) -> Tick:
    if len(cells) == len(layout.names) - 1 and layout.names[-1] in ("volume", "venue"):
        cells = [*cells, ""]
    if len(cells) != len(layout.names):
        raise RecordRejected(reasons.MALFORMED_CSV, f"{len(cells)} fields, expected {len(layout.names)}")
    row = dict(zip(layout.names, cells, strict=True))
    ts_event = parse_file_timestamp(row["timestamp"])
    return Tick(
        symbol=parse_symbol(row["symbol"]), venue=parse_venue(row.get("venue"), venue),
        price=require_amount(row["price"], "price"),
        volume=parse_amount(row.get("volume"), "volume", required=False),
        ts_event=ts_event, ts_init=ts_event, source="file", source_id=str(line),
    )


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _signals(signals: Iterable[Signal], timeframe: str) -> str:
    return ";".join(f"{s.rule}:{s.side}" for s in signals if s.timeframe == timeframe)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


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
    on_skip: Callable[[SkippedRow], None] | None = None,
) -> BatchReport:
    """Process CSV ``lines`` into ``output``; returns what was read, written and skipped.

    ``timeframe`` ``tick`` writes one row per used input row (input cells, then every
    indicator, then ``signals``); a candle timeframe writes one row per closed candle.
    ``flush`` closes the still-open candles at the end of the input. ``venue`` is the venue of
    rows without a ``venue`` cell; each instrument is computed on its own. Raises
    :class:`InputFormatError` for a bad header.
    """
    candles = timeframe != TICK
    configs = PipelineConfigs(strategy, candle_timeframes=(timeframe,) if candles else (), grace_ms=grace_ms)
    names = strategy.indicator_names()
    processors: dict[tuple[str, str], SymbolProcessor] = {}
    last: dict[tuple[str, str], tuple[Tick, Lineage]] = {}
    report = BatchReport()
    writer = csv.writer(output, lineterminator="\n")
    reader = csv.reader(lines)
    layout: _Layout | None = None

    def skip(line: int, reason: str, detail: str) -> None:
        row = SkippedRow(line, reason, detail)
        report.skipped.append(row)
        if on_skip is not None:
            on_skip(row)

    def write_candles(out: StepOutput) -> None:
        snapshots = iter(s for s in out.snapshots if s.timeframe == timeframe)
        for candle, snapshot in zip(out.candles, snapshots, strict=False):
            fired = _signals((s for s in out.signals if s.ts_event == candle.ts_close), timeframe)
            writer.writerow([
                candle.symbol, candle.venue, candle.timeframe, _iso(candle.ts_open), _iso(candle.ts_close),
                repr(candle.open), repr(candle.high), repr(candle.low), repr(candle.close),
                repr(candle.volume), candle.trade_count,
                *(_number(snapshot.values.get(name)) for name in names), fired,
            ])
            report.written += 1

    offset = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # e.g. a NUL byte or an oversized field: that row only
            report.rows += 1
            offset += 1
            skip(reader.line_num, reasons.MALFORMED_CSV, str(error))
            continue
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if layout is None:
            found = _layout(cells)
            layout = found or _Layout(COLUMNS, COLUMNS)
            extra = () if "venue" in layout.names else ("venue",)
            writer.writerow([*(CANDLE_COLUMNS if candles else (*layout.header, *extra)), *names, "signals"])
            if found is not None:
                continue
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
            padded = cells + [""] * (len(layout.names) - len(cells))
            if "venue" in layout.names:
                padded[layout.names.index("venue")] = tick.venue
            else:
                padded.append(tick.venue)
            writer.writerow([*padded, *(_number(snapshot.values.get(name)) for name in names),
                             _signals(out.signals, TICK)])
            report.written += 1
    if layout is None:
        writer.writerow([*(CANDLE_COLUMNS if candles else (*COLUMNS, "venue")), *names, "signals"])
    if candles and flush:
        for key, processor in processors.items():
            if key in last:
                write_candles(processor.flush(*last[key]))
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
