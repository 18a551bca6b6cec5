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
from processors.ingest.sources.base import Accepted, Outcome, Rejected, raw_text
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


def bounded_lines(handle: BinaryIO, limit: int) -> Iterator[tuple[int, bytes, bool]]:
    """``(line number, line, too long)`` for every line, never holding more than ``limit`` bytes of one:
    a longer line yields its first ``limit`` bytes with ``True`` and the rest is skipped unread into memory."""
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) <= limit or line.endswith(b"\n"):
            yield number, line, False
            continue
        while not line.endswith(b"\n"):  # skip the rest of the line in bounded reads
            line = handle.readline(1 << 16)
            if not line:
                break
        yield number, b"", True


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
    ) -> None:
        self.paths = paths
        self.max_line_bytes = max_line_bytes
        self.bounds = bounds
        self.now = now
        self.speed = speed
        self.fmt = fmt
        self.venue = venue
        self.monotonic = monotonic
        self.sleep = sleep

    async def stream(self) -> AsyncIterator[Outcome]:
        for path in self.paths:
            anchor: tuple[float, datetime] | None = None
            for index, outcome in enumerate(self.outcomes(path)):
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

    def outcomes(self, path: Path) -> Iterator[Outcome]:
        """The outcome of every non-blank line of ``path``, in file order (pure apart from reading)."""
        tag = file_tag(path)
        fmt = detect_format(path, self.fmt)
        layout = CsvLayout()
        first = True
        with path.open("rb") as handle:
            for number, line, too_long in bounded_lines(handle, self.max_line_bytes):
                source_id = f"{tag}:{number}"
                if too_long:
                    yield Rejected(reasons.LINE_TOO_LONG, f"{source_id}: line longer than {self.max_line_bytes} bytes",
                                   "")
                    first = False
                    continue
                raw = line.rstrip(b"\r\n")
                if not raw.strip():
                    continue  # blank lines are not records
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    yield Rejected(reasons.ENCODING_INVALID, f"{source_id}: not UTF-8 ({error.reason})", raw_text(raw))
                    first = False
                    continue
                try:
                    if first and fmt == "csv":
                        first = False
                        try:
                            header = parse_header(next(csv.reader([text])))
                        except csv.Error:  # e.g. a bare CR inside the line: not a header, and parse_line says why
                            header = None
                        if header is not None:
                            layout = CsvLayout(header)
                            continue
                    first = False
                    record = parse_line(text, fmt, layout)
                    yield to_tick(record, source_id=source_id, now=self.now(), bounds=self.bounds, venue=self.venue)
                except RecordRejected as rejected:
                    yield Rejected(rejected.reason, f"{source_id}: {rejected.detail}", raw_text(text))
