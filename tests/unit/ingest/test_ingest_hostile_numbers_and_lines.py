"""Input found in review: JSON numbers of more than 4,300 digits and lines without end, in every parser.

Python's ``json`` raises a plain ``ValueError`` (not ``JSONDecodeError``) for an integer of more than
4,300 digits; each parser turns it into a ``malformed_json`` dead letter and goes on with the next
record (before: the file source crashed on that line at every restart, a WebSocket frame was lost).
A file line longer than the bound is a ``line_too_long`` dead letter, read past without holding it.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime

from pydantic import SecretStr

from processors.ingest.sources.alphavantage.source import AlphaVantageConfig, AlphaVantageSource
from processors.ingest.sources.base import Accepted, BudgetLeft, Outcome, Rejected
from processors.ingest.sources.exchanges.common import load_object
from processors.ingest.sources.file import FileSource
from processors.ingest.validation import TimeBounds
from tests.support.fake_servers.alphavantage import FakeAlphaVantage, Reply

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HUGE = "1" * 5000  # beyond Python's 4,300-digit limit for int() of a string


def good(second: int) -> str:
    return json.dumps({"timestamp": f"2024-05-01T10:00:0{second}Z", "symbol": "BTC-USD", "price": 65000.5})


def test_file_jsonl_huge_number_is_a_dead_letter_and_the_next_lines_go_on(tmp_path):
    path = tmp_path / "ticks.jsonl"
    path.write_text("\n".join([good(1), '{"timestamp": "2024-05-01T10:00:02Z", "symbol": "BTC-USD", "price": '
                               + HUGE + "}", good(3)]) + "\n")
    found = list(FileSource((path,), TimeBounds(), now=lambda: NOW).outcomes(path))
    assert [type(o).__name__ for o in found] == ["Accepted", "Rejected", "Accepted"]
    rejected = found[1]
    assert isinstance(rejected, Rejected) and rejected.reason == "malformed_json"
    assert "4300" in rejected.detail or "digits" in rejected.detail


def test_file_line_too_long_is_skipped_without_reading_it_whole(tmp_path):
    path = tmp_path / "ticks.jsonl"
    with path.open("wb") as handle:
        handle.write(good(1).encode() + b"\n")
        handle.write(b"x" * 50_000 + b"\n")  # a line past the bound (1 KiB here)
        handle.write(good(3).encode() + b"\n")
        handle.write(b"y" * 5_000)  # and one without any newline at the end of the file
    found = list(FileSource((path,), TimeBounds(), now=lambda: NOW, max_line_bytes=1024).outcomes(path))
    assert [(type(o).__name__, getattr(o, "reason", None)) for o in found] == [
        ("Accepted", None), ("Rejected", "line_too_long"), ("Accepted", None), ("Rejected", "line_too_long")]
    assert isinstance(found[2], Accepted) and found[2].tick.source_id.endswith(":3")  # line numbers stay right
    assert all(len(o.raw) < 2048 for o in found if isinstance(o, Rejected))


def test_exchange_frame_with_a_huge_number_is_a_dead_letter():
    rejected = load_object('{"channel": "trade", "data": [{"price": ' + HUGE + "}]}")
    assert isinstance(rejected, Rejected) and rejected.reason == "malformed_json"
    assert isinstance(load_object(b'{"ok": 1}'), dict)
    broken = load_object(b"\xff\xfe")
    assert isinstance(broken, Rejected) and broken.reason == "malformed_json"


def test_alphavantage_body_with_a_huge_number_is_a_dead_letter():
    body = '{"Realtime Currency Exchange Rate": {"5. Exchange Rate": ' + HUGE + "}}"
    with FakeAlphaVantage([Reply(200, body)]) as server:
        config = AlphaVantageConfig(base_url=server.url, api_key=SecretStr("k"), symbols=("BTC-USD",),
                                    interval_s=0.0, daily_budget=1_000)

        async def no_sleep(_seconds: float) -> None:
            return None

        async def collect() -> list[Outcome]:
            source = AlphaVantageSource(config, TimeBounds(), now=lambda: NOW, sleep=no_sleep, rng=random.Random(0))
            stream = source.stream()
            outcomes: list[Outcome] = []
            try:
                async for outcome in stream:
                    outcomes.append(outcome)
                    if sum(isinstance(o, BudgetLeft) for o in outcomes) == 2:
                        break
            finally:
                await stream.aclose()
            return outcomes

        found = asyncio.run(collect())
    rejected = [o for o in found if isinstance(o, Rejected)]
    assert [o.reason for o in rejected] == ["malformed_json"]
