"""Tick files: ``ingest --source file`` (``FileSource.outcomes``) and ``stockstream indicators`` (``batch.run``).

Files are built from lines of three kinds — CSV rows of odd cells (quoting, separators, odd
numbers and dates), JSONL objects with mutated fields, raw bytes — joined by assorted line breaks
(LF, CRLF, bare CR, blank lines). Properties: no exception; ingest yields one publishable
outcome per non-blank line (a valid header line excepted); the batch runner accounts for every
data row (written or skipped with a reason) and writes a well-formed CSV, or refuses the whole
input with a clear error; the command exits 0, 1 or 2, never with a traceback.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from processors.core.strategy import DEFAULT_STRATEGY
from processors.ingest.sources.base import Rejected
from processors.ingest.sources.file import FileSource
from processors.ingest.validation import TimeBounds
from stockstream.batch import InputFormatError, run
from stockstream.cli import app
from tests.fuzz.invariants import NOW, check_outcomes
from tests.fuzz.strategies import (
    NUMBERS,
    ODD_TEXT,
    TEXT,
    dumps,
    file_bytes,
    fuzz,
    mostly_ascii_bytes,
    mutated,
)

VALID_ROWS = [
    b"2024-05-01T12:00:00Z,BTC-USD,64000.5,0.25", b"2024-05-01T12:00:01.5+00:00,btc/usd,64000.7,",
    b"1714564802,ETH-USD,3000.1,1.5", b"1714564803000,ETH-USD,3000.2", b"2024-05-01 12:00:04,SOL-USD,150.25,2",
]
HEADERS = [b"timestamp,symbol,price,volume", b"symbol,price,timestamp", b"Timestamp, Symbol ,PRICE",
           b"timestamp,symbol,price,price", b"timestamp,price", b"timestamp,symbol,price,volume,extra"]


def _csv_cell() -> st.SearchStrategy[str]:
    return st.one_of(ODD_TEXT, NUMBERS.map(str), TEXT, st.sampled_from(["BTC-USD", "64000.5", "2024-05-01T12:00:00Z"]))


def _csv_line() -> st.SearchStrategy[bytes]:
    def render(cells: list[str], quote: bool) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, quoting=csv.QUOTE_ALL if quote else csv.QUOTE_MINIMAL, lineterminator="").writerow(cells)
        return buffer.getvalue().replace("\n", " ").encode("utf-8", "surrogatepass")

    unquoted = st.lists(_csv_cell(), min_size=0, max_size=6).map(
        lambda cells: ",".join(cells).replace("\n", " ").encode("utf-8", "surrogatepass"))
    return st.one_of(st.builds(render, st.lists(_csv_cell(), max_size=6), st.booleans()), unquoted)


def _jsonl_line() -> st.SearchStrategy[bytes]:
    valid = {"timestamp": "2024-05-01T12:00:00Z", "symbol": "BTC-USD", "price": "64000.5", "volume": 0.25}
    return st.one_of(mutated(valid, extra_keys=["timestamp", "price"]), st.just(valid)).map(
        lambda record: dumps(record).encode())


LINE = st.one_of(st.sampled_from(VALID_ROWS), st.sampled_from(HEADERS), _csv_line(), _jsonl_line(),
                 mostly_ascii_bytes()).map(lambda line: line.replace(b"\n", b" "))
FILES = file_bytes(LINE)


def _nonblank_lines(data: bytes) -> int:
    """Lines as ``FileSource`` reads them: split at LF, CR/LF stripped at the end, blank ones skipped."""
    return sum(1 for line in data.split(b"\n") if line.rstrip(b"\r\n").strip())


@given(data=FILES, fmt=st.sampled_from(["csv", "jsonl"]))
@example(data=b"timestamp,sym\rbol,price\n2024-05-01T12:00:00Z,BTC-USD,1\n", fmt="csv")
@example(data=b"a\rb,c\n", fmt="csv")
@example(data=b"0001-01-01T00:00:00+05:00,BTC-USD,1\n9999-12-31T23:59:59-05:00,BTC-USD,1\n", fmt="csv")
@example(data=b'{"timestamp": "2024-05-01T12:00:00Z", "symbol": "\\ud800", "price": "1"}\n', fmt="jsonl")
@fuzz(600)
def test_ingest_file_lines(tmp_path_factory, data: bytes, fmt: str) -> None:
    path = tmp_path_factory.mktemp("files") / f"ticks.{fmt}"
    path.write_bytes(data)
    source = FileSource((path,), TimeBounds(), now=lambda: NOW, fmt=fmt)
    outcomes = list(source.outcomes(path))
    check_outcomes("file", outcomes)
    lines = _nonblank_lines(data)
    assert lines - 1 <= len(outcomes) <= lines, (lines, outcomes)
    if fmt == "jsonl":  # no header in JSONL: exactly one outcome per line
        assert len(outcomes) == lines


def _batch(data: bytes, timeframe: str) -> tuple[str, object]:
    """``batch.run`` over ``data`` read exactly as the command opens its input."""
    lines = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")
    output = io.StringIO()
    try:
        report = run(lines, output, strategy=DEFAULT_STRATEGY, timeframe=timeframe, topic="fuzz.csv")
    except InputFormatError as error:
        assert str(error)
        return "", None
    return output.getvalue(), report


# Any date, with extra weight on the calendar's first and last days (where window bounds overflow).
MOMENTS = st.one_of(
    st.datetimes(),
    st.datetimes(min_value=datetime(9999, 12, 30)),  # noqa: DTZ001 - hypothesis takes naive bounds
    st.datetimes(max_value=datetime(1, 1, 2, 23, 59, 59)),  # noqa: DTZ001
)


def _extreme_row() -> st.SearchStrategy[bytes]:
    """A well-formed row whose values are at the edges: any date from year 1 to 9999 (any offset), any
    positive float price, tiny to huge volumes — the rows that reach the pipeline's arithmetic."""
    zone = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))])
    moment = st.tuples(MOMENTS, zone).map(lambda pair: pair[0].replace(tzinfo=pair[1]))
    price = st.one_of(st.floats(min_value=0, exclude_min=True, allow_infinity=False),
                      st.sampled_from([5e-324, 1e-12, 1e12, 1.7976931348623157e308]))
    volume = st.one_of(st.just(""), st.floats(min_value=0, allow_infinity=False).map(repr))
    symbol = st.sampled_from(["BTC-USD", "ETH-USD"])
    return st.builds(lambda t, s, p, v: f"{t.isoformat()},{s},{p!r},{v}".encode(), moment, symbol, price, volume)


def _sorted_rows() -> st.SearchStrategy[bytes]:
    """Extreme rows in event-time order (so they pass ``late`` checks and open/close windows)."""
    return st.lists(MOMENTS.map(lambda moment: moment.replace(tzinfo=UTC)), min_size=1, max_size=30).map(
        lambda moments: b"\n".join(f"{t.isoformat()},BTC-USD,{1 + i % 7}.5,{i}".encode()
                                   for i, t in enumerate(sorted(moments))))


CSV_FILES = st.one_of(
    file_bytes(st.one_of(st.sampled_from(VALID_ROWS), st.sampled_from(HEADERS), _csv_line(), _extreme_row(),
                         mostly_ascii_bytes()).map(lambda line: line.replace(b"\n", b" "))),
    _sorted_rows())


@given(data=CSV_FILES, timeframe=st.sampled_from(["tick", "1m", "1d"]))
@example(data=b"9999-12-31T23:59:59Z,BTC-USD,1\n9999-12-31T23:59:59.5Z,BTC-USD,2\n", timeframe="1d")
@example(data=b"9999-12-31T23:59:59Z,BTC-USD,1\n", timeframe="tick")
@example(data=b"0001-01-01T00:00:00Z,BTC-USD,1\n0001-01-01T00:00:01Z,BTC-USD,1e-12\n", timeframe="1m")
@example(data=b"2024-05-01T12:00:00Z,BTC-USD,1e300,1e300\n2024-05-01T12:00:01Z,BTC-USD,1e-300,0\n", timeframe="1m")
@example(data=b"a,b\x00,c\n\x00\n", timeframe="tick")
@fuzz(600)
def test_indicators_batch_rows(data: bytes, timeframe: str) -> None:
    text, report = _batch(data, timeframe)
    if report is None:
        return
    rows = list(csv.reader(io.StringIO(text)))
    if report.written == 0:  # type: ignore[attr-defined]
        assert rows == [], "nothing used: nothing written, not even the header"
    else:
        assert all(len(row) == len(rows[0]) for row in rows), "every output row has the header's columns"
        assert report.written == len(rows) - 1  # type: ignore[attr-defined]
    skipped = report.skipped  # type: ignore[attr-defined]
    assert all(row.reason and row.line >= 1 for row in skipped)
    if timeframe == "tick":  # one output row per used input row
        assert report.rows == report.written + len(skipped)  # type: ignore[attr-defined]
    else:
        assert len(skipped) <= report.rows  # type: ignore[attr-defined]


@given(data=CSV_FILES, timeframe=st.sampled_from(["tick", "5m"]))
@fuzz(80)
def test_indicators_command_exit_codes(tmp_path_factory, data: bytes, timeframe: str) -> None:
    folder: Path = tmp_path_factory.mktemp("indicators")
    (folder / "in.csv").write_bytes(data)
    result = CliRunner().invoke(app, ["indicators", "--input", str(folder / "in.csv"), "--output",
                                      str(folder / "out.csv"), "--timeframe", timeframe])
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    # Exit 2 means nothing written: no output file; otherwise the output holds at least one row.
    assert (folder / "out.csv").exists() == (result.exit_code != 2), (result.exit_code, result.output)
    assert sorted(path.name for path in folder.iterdir() if path.name.endswith(".partial")) == []


def test_rejections_name_their_line(tmp_path: Path) -> None:
    """Locators stay useful on hostile input: the dead letter's detail starts with file#hash:line."""
    target = tmp_path / "t.csv"
    target.write_bytes(b"2024-05-01T12:00:00Z,BTC-USD,1\n\xff\xfe,BTC-USD,1\n")
    outcomes = list(FileSource((target,), TimeBounds(), now=lambda: NOW).outcomes(target))
    assert isinstance(outcomes[1], Rejected) and outcomes[1].reason == "encoding_invalid"
    assert outcomes[1].detail.startswith("t.csv#") and ":2:" in outcomes[1].detail
