"""Replay of a CSV or JSONL file (``timestamp,symbol,price[,volume][,venue]``, one record per line).

Every non-blank line is either published as a tick or dead-lettered. A CSV may start
with a header naming its columns (any order; ``volume`` and ``venue`` optional); without one the
columns are ``timestamp,symbol,price[,volume]``. A record's venue is its ``venue`` column when
given, else the source's ``venue`` (``file`` by default, ``--venue NAME`` / ``INGEST_FILE_VENUE``),
so one file can replay several venues' series side by side. Timestamps are ISO 8601 (a naive one
is UTC) or epoch seconds/milliseconds. ``source_id`` is ``<file name>#<sha256[:12]>:<line>``:
deterministic, so the same file replayed twice in one run is caught as duplicates,
and ordered like the file.

By default records go out as fast as the broker takes them; with ``speed`` the gaps
between event times are replayed, divided by ``speed``.

With :class:`~processors.ingest.sources.file_position.FilePositions` the source resumes each file
where the last run's acknowledged records end, and yields a
:class:`~processors.ingest.sources.base.Checkpoint` every ``checkpoint_lines`` lines or
``checkpoint_seconds`` (and at the end of each file) for the service to save once Kafka has them.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from processors.ingest import reasons
from processors.ingest.reasons import RecordRejected
from processors.ingest.sources.base import Accepted, Checkpoint, Outcome, Rejected, raw_text
from processors.ingest.sources.file_position import FilePosition, FilePositions, head_fingerprint
from processors.ingest.validation import (
    TimeBounds,
    build_tick,
    parse_amount,
    parse_file_timestamp,
    parse_symbol,
    parse_venue,
    rejection_from_validation_error,
    require_amount,
)

COLUMNS = ("timestamp", "symbol", "price", "volume", "venue")
DEFAULT_VENUE = "file"
REQUIRED = ("timestamp", "symbol", "price")
JsonScalar = str | int | float | None


class FileRecordWire(BaseModel):
    """One line of the replay format, as it stands in the file."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    timestamp: JsonScalar = None
    symbol: str | None = None
    price: JsonScalar = None
    volume: JsonScalar = None
    venue: JsonScalar = None


_DOMAINS = {name: name for name in COLUMNS}


def to_tick(record: FileRecordWire, *, source_id: str, now: datetime, bounds: TimeBounds,
            venue: str = DEFAULT_VENUE) -> Accepted:
    """Convert one file record to a domain tick (the format's single conversion point).

    ``venue`` is the record's venue when its own ``venue`` field is absent or blank.
    """
    symbol = parse_symbol(record.symbol)
    return Accepted(build_tick(
        source="file", venue=parse_venue(record.venue, venue), source_id=source_id, symbol=symbol, price=require_amount(record.price, "price"),
        volume=parse_amount(record.volume, "volume", required=False),
        ts_event=parse_file_timestamp(record.timestamp), ts_init=now, bounds=bounds,
    ))


@dataclass
class CsvLayout:
    """The column order of a CSV file, learnt from its header (or the default)."""

    columns: tuple[str, ...] = COLUMNS[:4]

    def record(self, fields: list[str]) -> FileRecordWire:
        if len(fields) == len(self.columns) - 1 and self.columns[-1] in ("volume", "venue"):
            fields = [*fields, ""]
        if len(fields) != len(self.columns):
            raise RecordRejected(
                reasons.MALFORMED_CSV, f"{len(fields)} fields, expected {len(self.columns)} ({','.join(self.columns)})"
            )
        return FileRecordWire(**dict(zip(self.columns, fields, strict=True)))


def parse_header(fields: list[str]) -> tuple[str, ...] | None:
    """Column names if ``fields`` is a header line, else ``None``; raises if it is a bad header."""
    names = tuple(field.strip().lower() for field in fields)
    if "price" not in names and "timestamp" not in names:
        return None
    unknown = [name for name in names if name not in COLUMNS]
    if unknown or len(set(names)) != len(names) or any(name not in names for name in REQUIRED):
        raise RecordRejected(
            reasons.CSV_HEADER_INVALID,
            f"header {','.join(names)!r} must name timestamp, symbol, price and optionally volume and venue,"
            " once each",
        )
    return names


def parse_line(text: str, fmt: Literal["csv", "jsonl"], layout: CsvLayout) -> FileRecordWire:
    """The wire record of one (non-blank, non-header) line, or :class:`RecordRejected`."""
    if fmt == "jsonl":
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError) as error:
            # ValueError, not only JSONDecodeError: a number of more than 4,300 digits raises a plain ValueError.
            raise RecordRejected(reasons.MALFORMED_JSON, str(error)[:200]) from None
        if not isinstance(payload, dict):
            raise RecordRejected(reasons.NOT_AN_OBJECT, f"line holds a JSON {type(payload).__name__}")
        try:
            return FileRecordWire.model_validate(payload)
        except ValidationError as error:
            raise rejection_from_validation_error(error, _DOMAINS) from None
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as error:
        raise RecordRejected(reasons.MALFORMED_CSV, str(error)) from None
    return layout.record(rows[0] if rows else [])


def detect_format(path: Path, configured: str) -> Literal["csv", "jsonl"]:
    if configured in ("csv", "jsonl"):
        return configured  # type: ignore[return-value]
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"


def file_tag(path: Path) -> str:
    """``<name>#<sha256 prefix>``: identifies the file by name and content, not by where it lies."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    # A name that is not valid UTF-8 (bytes kept as surrogates by the OS layer) could not be encoded
    # into the tick's JSON: its undecodable bytes are written as \xNN escapes instead.
    name = os.fsencode(path.name).decode("utf-8", "backslashreplace")
    return f"{name[:64]}#{digest.hexdigest()[:12]}"


#: A tick is a line of well under 1 KiB; a "line" without a newline could be gigabytes.
MAX_LINE_BYTES = 1 << 20


def bounded_lines(handle: BinaryIO, limit: int, first_line: int = 1, offset: int = 0
                  ) -> Iterator[tuple[int, bytes, bool, int]]:
    """``(line number, line, too long, offset after it)`` for every line from the handle's position (line
    ``first_line``, byte ``offset``), never holding more than ``limit`` bytes of one: a longer line yields its
    first ``limit`` bytes with ``True`` and the rest is skipped unread into memory."""
    number = first_line - 1
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        offset += len(line)
        if len(line) <= limit or line.endswith(b"\n"):
            yield number, line, False, offset
            continue
        while not line.endswith(b"\n"):  # skip the rest of the line in bounded reads
            line = handle.readline(1 << 16)
            if not line:
                break
            offset += len(line)
        yield number, b"", True, offset


class FileSource:
    """Replays one or more files in order, then ends."""

    name = "file"
    symbols: tuple[str, ...] | None = None

    def __init__(
        self,
        paths: tuple[Path, ...],
        bounds: TimeBounds,
        now: Callable[[], datetime],
        speed: float | None = None,
        fmt: str = "auto",
        venue: str = DEFAULT_VENUE,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        max_line_bytes: int = MAX_LINE_BYTES,
        positions: FilePositions | None = None,
        checkpoint_lines: int = 10_000,
        checkpoint_seconds: float = 1.0,
    ) -> None:
        self.paths = paths
        self.positions = positions  # None: every file from line 1, no checkpoints (tests, one-off reads)
        self.checkpoint_lines = checkpoint_lines
        self.checkpoint_seconds = checkpoint_seconds
        self.max_line_bytes = max_line_bytes
        self.bounds = bounds
        self.now = now
        self.speed = speed
        self.fmt = fmt
        self.venue = venue
        self.monotonic = monotonic
        self.sleep = sleep

    async def stream(self) -> AsyncIterator[Outcome]:
        for place, path in enumerate(self.paths):
            anchor: tuple[float, datetime] | None = None
            if self.positions is not None:
                await asyncio.to_thread(self.positions.log)  # the ticks topic's id: one admin request, off the loop
            for index, outcome in enumerate(self.outcomes(path, place)):
                if self.speed is not None and isinstance(outcome, Accepted):
                    ts = outcome.tick.ts_event
                    if anchor is None:
                        anchor = (self.monotonic(), ts)
                    due = anchor[0] + (ts - anchor[1]).total_seconds() / self.speed
                    delay = due - self.monotonic()
                    if delay > 0:
                        await self.sleep(delay)
                elif index % 256 == 0:
                    await self.sleep(0)
                yield outcome

    def outcomes(self, path: Path, place: int = 0) -> Iterator[Outcome]:
        """The outcome of every non-blank line of ``path`` (the ``place``-th input), in file order, from its saved
        position when there is one; with positions, a :class:`Checkpoint` now and then (pure apart from reading)."""
        tag = file_tag(path)
        fmt = detect_format(path, self.fmt)
        layout = CsvLayout()
        first = True
        positions = self.positions
        with path.open("rb") as handle:
            start = None if positions is None else positions.load(place, path, handle)
            if start is not None:
                if fmt == "csv":
                    layout = self._layout_of(handle)
                    first = False
                handle.seek(start.offset)
            lines = bounded_lines(handle, self.max_line_bytes, 1 if start is None else start.line + 1,
                                  0 if start is None else start.offset)
            since = 0
            last_saved = self.monotonic()
            number = 0 if start is None else start.line
            offset = 0 if start is None else start.offset
            for number, line, too_long, offset in lines:
                outcome = self._outcome(line, too_long, f"{tag}:{number}", fmt, layout, first)
                first = False if outcome is not None or line.strip() else first
                if isinstance(outcome, CsvLayout):
                    layout = outcome
                elif outcome is not None:
                    yield outcome  # the service has handed it to the producer when the generator resumes
                if positions is not None:
                    since += 1
                    if since >= self.checkpoint_lines or self.monotonic() - last_saved >= self.checkpoint_seconds:
                        # Lines up to this one are done (published or dead-lettered); the service saves
                        # this once Kafka has acknowledged them.
                        yield self._checkpoint(place, path, handle, number, offset)
                        since, last_saved = 0, self.monotonic()
            if positions is not None and since:
                yield self._checkpoint(place, path, handle, number, offset)

    def _checkpoint(self, place: int, path: Path, handle: BinaryIO, line: int, offset: int) -> Checkpoint:
        positions = self.positions
        assert positions is not None  # noqa: S101 - only called with positions
        position = FilePosition(offset, line, head_fingerprint(handle, offset))
        return Checkpoint(path.name, line, lambda: positions.save(place, path, position))

    def _layout_of(self, handle: BinaryIO) -> CsvLayout:
        """The CSV layout its first non-blank line declares (resuming past it); the default without a header."""
        for _, line, too_long, _ in bounded_lines(handle, self.max_line_bytes):
            if too_long:
                break
            text = line.rstrip(b"\r\n")
            if not text.strip():
                continue
            try:
                header = parse_header(next(csv.reader([text.decode("utf-8")])))
            except (csv.Error, UnicodeDecodeError, RecordRejected):
                header = None
            return CsvLayout(header) if header is not None else CsvLayout()
        return CsvLayout()

    def _outcome(self, line: bytes, too_long: bool, source_id: str, fmt: Literal["csv", "jsonl"],
                 layout: CsvLayout, first: bool) -> Outcome | CsvLayout | None:
        """One line's outcome; a :class:`CsvLayout` for a header line, None for a blank one."""
        if too_long:
            return Rejected(reasons.LINE_TOO_LONG, f"{source_id}: line longer than {self.max_line_bytes} bytes", "")
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            return None  # blank lines are not records
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            return Rejected(reasons.ENCODING_INVALID, f"{source_id}: not UTF-8 ({error.reason})", raw_text(raw))
        try:
            if first and fmt == "csv":
                try:
                    header = parse_header(next(csv.reader([text])))
                except csv.Error:  # e.g. a bare CR inside the line: not a header, and parse_line says why
                    header = None
                if header is not None:
                    return CsvLayout(header)
            record = parse_line(text, fmt, layout)
            return to_tick(record, source_id=source_id, now=self.now(), bounds=self.bounds, venue=self.venue)
        except RecordRejected as rejected:
            return Rejected(rejected.reason, f"{source_id}: {rejected.detail}", raw_text(text))
