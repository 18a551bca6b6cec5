"""File replay format: CSV (with or without header) and JSONL lines → ticks or precise rejections."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from processors.ingest.sources.base import Accepted, Rejected
from processors.ingest.sources.file import FileSource, file_tag
from processors.ingest.validation import TimeBounds
from schemas.events import encode

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def outcomes(path, **kwargs):
    return list(FileSource((path,), TimeBounds(), now=lambda: NOW, **kwargs).outcomes(path))


def test_csv_with_header_in_any_order_and_optional_volume(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text("symbol,price,timestamp,volume\nBTC-USD,65000.5,2024-05-01T10:00:00Z,0.5\n"
                    "eth/usd,3500,1714557600,\n")
    first, second = outcomes(path)
    assert isinstance(first, Accepted) and isinstance(second, Accepted)
    assert (first.tick.symbol, first.tick.price, first.tick.volume) == ("BTC-USD", 65000.5, 0.5)
    assert (second.tick.symbol, second.tick.volume, second.tick.ts_event) == (
        "ETH-USD", None, datetime(2024, 5, 1, 10, tzinfo=UTC))
    tag = file_tag(path)
    assert first.tick.source_id == f"{tag}:2" and second.tick.source_id == f"{tag}:3"
    assert first.tick.source == "file" and first.tick.ts_init == NOW


def test_csv_without_header_uses_the_default_columns_and_skips_blank_lines(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("2024-05-01T10:00:00Z,BTC-USD,1\n\n2024-05-01T10:00:01Z,BTC-USD,2,3\n")
    result = outcomes(path)
    assert [o.tick.price for o in result] == [1.0, 2.0]
    assert [o.tick.source_id.rsplit(":", 1)[1] for o in result] == ["1", "3"]  # physical line numbers


def test_jsonl_records_and_their_types(tmp_path):
    path = tmp_path / "ticks.jsonl"
    path.write_text('{"timestamp": "2024-05-01T10:00:00Z", "symbol": "BTC-USD", "price": "65000.1"}\n'
                    '{"timestamp": 1714557600000, "symbol": "BTC-USD", "price": 65000.2, "volume": 0}\n')
    assert [o.tick.price for o in outcomes(path)] == [65000.1, 65000.2]


def test_file_tag_names_the_content_not_the_location(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two = tmp_path / "a" / "x.csv", tmp_path / "b" / "x.csv"
    one.write_text("2024-05-01T10:00:00Z,BTC-USD,1\n")
    two.write_text("2024-05-01T10:00:00Z,BTC-USD,1\n")
    assert file_tag(one) == file_tag(two)
    two.write_text("2024-05-01T10:00:00Z,BTC-USD,2\n")
    assert file_tag(one) != file_tag(two)


def test_a_file_name_that_is_not_utf8_still_gives_encodable_ticks(tmp_path):
    path = Path(os.fsdecode(bytes(tmp_path) + b"/ticks-\xff\xfe.csv"))
    path.write_text("2024-05-01T10:00:00Z,BTC-USD,1\n")
    (only,) = outcomes(path)
    assert isinstance(only, Accepted)
    assert only.tick.source_id.startswith("ticks-\\xff\\xfe.csv#")
    assert b"ticks-\\\\xff\\\\xfe.csv#" in encode(only.tick)  # JSON escapes the backslash


@pytest.mark.parametrize(("line", "reason"), [
    ("not json", "malformed_json"), ("[1, 2]", "not_an_object"),
    ('{"timestamp": "2024-05-01T10:00:00Z", "symbol": "BTC-USD", "price": "1", "bid": "1"}', "field_unexpected"),
    ('{"timestamp": "2024-05-01T10:00:00Z", "symbol": "BTC-USD", "price": true}', "price_not_number"),
    ('{"timestamp": "2024-05-01T10:00:00Z", "symbol": ["BTC"], "price": "1"}', "symbol_invalid"),
])
def test_jsonl_rejections(tmp_path, line, reason):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    (only,) = outcomes(path)
    assert isinstance(only, Rejected) and only.reason == reason
    assert only.raw == line and only.detail.startswith(f"{file_tag(path)}:1: ")


def test_bad_csv_header_is_dead_lettered_and_replay_continues(tmp_path):
    path = tmp_path / "bad-header.csv"
    path.write_text("timestamp,symbol,price,colour\n2024-05-01T10:00:00Z,BTC-USD,1\n")
    header, row = outcomes(path)
    assert isinstance(header, Rejected) and header.reason == "csv_header_invalid"
    assert isinstance(row, Accepted)


def test_undecodable_bytes_are_escaped_in_the_dead_letter(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"2024-05-01T10:00:00Z,BTC-\xe9,1\n")
    (only,) = outcomes(path)
    assert only.reason == "encoding_invalid" and "\\xe9" in only.raw


def test_speed_replays_recorded_gaps_divided_by_speed(tmp_path):
    path = tmp_path / "paced.csv"
    path.write_text("2024-05-01T10:00:00Z,BTC-USD,1\n2024-05-01T10:00:10Z,BTC-USD,2\nbad\n"
                    "2024-05-01T10:00:30Z,BTC-USD,3\n")
    clock = {"now": 0.0}

    async def sleep(seconds: float) -> None:
        clock["now"] += seconds

    source = FileSource((path,), TimeBounds(), now=lambda: NOW, speed=10.0,
                        monotonic=lambda: clock["now"], sleep=sleep)

    async def run() -> list[object]:
        return [o async for o in source.stream()]

    assert len(asyncio.run(run())) == 4
    assert clock["now"] == pytest.approx(3.0)  # 30 s of recorded time at ×10


def test_the_venue_column_names_each_records_venue_and_the_source_venue_fills_the_rest(tmp_path):
    path = tmp_path / "venues.csv"
    path.write_text("timestamp,symbol,price,venue\n2024-05-01T10:00:00Z,BTC-USD,1,coinbase\n"
                    "2024-05-01T10:00:00Z,BTC-USD,2,Kraken\n2024-05-01T10:00:01Z,BTC-USD,3,\n"
                    "2024-05-01T10:00:02Z,BTC-USD,4,index\n2024-05-01T10:00:03Z,BTC-USD,5\n")
    found = outcomes(path, venue="replay-1")
    assert [o.tick.venue for o in found if isinstance(o, Accepted)] == ["coinbase", "kraken", "replay-1", "replay-1"]
    rejected = [o for o in found if isinstance(o, Rejected)]
    assert [o.reason for o in rejected] == ["venue_invalid"]  # index is the composite's
    jsonl = tmp_path / "venues.jsonl"
    jsonl.write_text('{"timestamp": 1714557600, "symbol": "BTC-USD", "price": 1, "venue": "binance"}\n'
                     '{"timestamp": 1714557600, "symbol": "BTC-USD", "price": 1}\n')
    assert [o.tick.venue for o in outcomes(jsonl)] == ["binance", "file"]  # type: ignore[union-attr]
