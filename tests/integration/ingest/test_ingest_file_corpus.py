"""A corpus of malformed records through the file source: each one in the DLQ with its reason, the
valid records around them all in Kafka, in order; the same file twice is published once."""

from __future__ import annotations

import json
import re

import pytest
from ingest_support import ingest_settings, run_ingest

from processors.ingest.reasons import ALL_REASONS
from processors.ingest.sources.file import file_tag
from tests.support.kafka_tools import read_topic
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.integration


def ok(second: int, symbol: str = "BTC-USD") -> str:
    return json.dumps({"timestamp": f"2024-05-01T10:{second // 60:02d}:{second % 60:02d}Z", "symbol": symbol,
                       "price": f"{65000 + second}.25", "volume": "0.5"})


def rec(**fields: object) -> str:
    base: dict[str, object] = {"timestamp": "2024-05-01T10:00:00Z", "symbol": "BTC-USD", "price": "65000.5"}
    base.update(fields)
    return json.dumps({key: value for key, value in base.items() if value is not _ABSENT})


_ABSENT = object()

# (line, reason): every line a distinct way of being wrong.
JSONL_CORPUS: list[tuple[str, str]] = [
    ("not json at all", "malformed_json"),
    ('{"timestamp": "2024-05-01T10:00:00Z", "symbol": "BTC-USD", "price": "1"', "malformed_json"),
    ("[1, 2, 3]", "not_an_object"),
    ('"a string"', "not_an_object"),
    (rec(price=_ABSENT), "price_missing"),
    (rec(price=None), "price_missing"),
    (rec(price=""), "price_missing"),
    (rec(price="NaN"), "price_not_finite"),
    (rec(price="inf"), "price_not_finite"),
    (rec(price="-Infinity"), "price_not_finite"),
    ('{"timestamp": "2024-05-01T10:00:00Z", "symbol": "BTC-USD", "price": NaN}', "price_not_finite"),
    (rec(price="1e999"), "price_not_finite"),
    (rec(price="abc"), "price_not_number"),
    (rec(price=True), "price_not_number"),
    (rec(price={"value": 1}), "price_not_number"),
    (rec(price="1_000"), "price_not_number"),
    (rec(price="0"), "price_not_positive"),
    (rec(price=-3.5), "price_not_positive"),
    (rec(timestamp=_ABSENT), "timestamp_missing"),
    (rec(timestamp="yesterday"), "timestamp_invalid"),
    (rec(timestamp="2024-02-30T00:00:00Z"), "timestamp_invalid"),
    (rec(timestamp=True), "timestamp_invalid"),
    (rec(timestamp="1970-01-01T00:00:00Z"), "timestamp_too_old"),
    (rec(timestamp="2999-01-01T00:00:00Z"), "timestamp_in_future"),
    (rec(symbol=_ABSENT), "symbol_missing"),
    (rec(symbol="BTC USD"), "symbol_invalid"),
    (rec(symbol=42), "symbol_invalid"),
    (rec(symbol="X" * 40), "symbol_invalid"),
    (rec(volume="-1"), "volume_negative"),
    (rec(volume="NaN"), "volume_not_finite"),
    (rec(volume="lots"), "volume_not_number"),
    (rec(bid="65000"), "field_unexpected"),
]

CSV_CORPUS: list[tuple[str, str]] = [
    ("2024-05-01T10:00:00Z,BTC-USD", "malformed_csv"),
    ("2024-05-01T10:00:00Z,BTC-USD,1,2,3", "malformed_csv"),
    ('"2024-05-01T10:00:00Z,BTC-USD,1', "malformed_csv"),
    ("2024-05-01T10:00:00Z,BTC-USD,-0.01", "price_not_positive"),
    ("2024-05-01T10:00:00Z,,1", "symbol_missing"),
    (",BTC-USD,1", "timestamp_missing"),
]


def test_bad_input_corpus_ends_in_the_dlq_and_valid_records_arrive_in_order(stack, namespace, tmp_path):
    assert len(JSONL_CORPUS) + len(CSV_CORPUS) >= 25
    lines: list[str] = []
    expected_reason: dict[int, str] = {}
    valid_lines: dict[str, list[int]] = {"BTC-USD": [], "ETH-USD": []}
    for index, (bad, reason) in enumerate(JSONL_CORPUS):
        symbol = "ETH-USD" if index % 3 == 0 else "BTC-USD"
        lines.append(ok(index, symbol))
        valid_lines[symbol].append(len(lines))
        lines.append(bad)
        expected_reason[len(lines)] = reason
    lines.append(ok(59))
    valid_lines["BTC-USD"].append(len(lines))
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_bytes(("\n".join(lines) + "\n").encode() + b'{"symbol": "BTC-\xff"}\n')
    expected_reason[len(lines) + 1] = "encoding_invalid"

    csv_lines = ["timestamp,symbol,price,volume"]
    csv_reason: dict[int, str] = {}
    csv_valid: list[int] = []
    for index, (bad, reason) in enumerate(CSV_CORPUS):
        csv_lines.append(f"2024-05-01T11:00:{index:02d}Z,BTC-USD,{66000 + index},1")
        csv_valid.append(len(csv_lines))
        csv_lines.append(bad)
        csv_reason[len(csv_lines)] = reason
    csv_file = tmp_path / "corpus.csv"
    csv_file.write_text("\n".join(csv_lines) + "\n")

    run = run_ingest(ingest_settings(stack, namespace, source="file", file_paths=(jsonl, csv_file)), timeout_s=60)

    jsonl_tag, csv_tag = file_tag(jsonl), file_tag(csv_file)
    letters = run.dead_letters()
    got: dict[str, str] = {}
    for letter in letters:
        match = re.match(r"^(.+#[0-9a-f]{12}:\d+): ", letter.detail)
        assert match, letter.detail
        got[match.group(1)] = letter.reason
        assert letter.source == "file" and letter.reason in ALL_REASONS
    want = {f"{jsonl_tag}:{n}": reason for n, reason in expected_reason.items()}
    want |= {f"{csv_tag}:{n}": reason for n, reason in csv_reason.items()}
    assert got == want
    assert len(letters) == len(want)  # one dead letter per bad line, none twice
    raws = {letter.detail.split(": ")[0]: letter.raw for letter in letters}
    assert raws[f"{jsonl_tag}:2"] == JSONL_CORPUS[0][0]  # the raw payload, as it was in the file

    published = run.ticks_in_log_order()
    by_symbol: dict[str, list[str]] = {}
    for ticks in published.values():
        for tick in ticks:
            by_symbol.setdefault(tick.symbol, []).append(tick.source_id)
    assert by_symbol["ETH-USD"] == [f"{jsonl_tag}:{n}" for n in valid_lines["ETH-USD"]]
    assert by_symbol["BTC-USD"] == ([f"{jsonl_tag}:{n}" for n in valid_lines["BTC-USD"]]
                                    + [f"{csv_tag}:{n}" for n in csv_valid])

    total_valid = len(valid_lines["BTC-USD"]) + len(valid_lines["ETH-USD"]) + len(csv_valid)
    assert run.summary.received == total_valid + len(want)
    assert run.summary.delivered == total_valid and run.summary.undelivered == 0
    assert run.metric("stockstream_ingest_records_rejected_total", source="file", reason="price_not_finite") == 5
    assert run.metric("stockstream_ingest_records_published_total", source="file") == total_valid


def test_the_same_file_twice_in_one_run_is_published_once(stack, namespace, tmp_path, ingest_env):
    path = tmp_path / "twice.csv"
    path.write_text("".join(f"2024-05-01T10:00:{s:02d}Z,BTC-USD,{100 + s}\n" for s in range(40)))
    service = ServiceProcess(["ingest", "--source", "file", "--path", str(path), "--path", str(path)], ingest_env)
    assert service.wait(60) == 0, service.output
    assert "received=80 accepted=40 delivered=40 rejected=0 duplicates=40" in service.output
    records = read_topic(stack.kafka_bootstrap, f"{namespace}ticks")
    ids = [json.loads(r.value)["source_id"] for r in sorted(records, key=lambda r: r.offset)]
    assert ids == [f"{file_tag(path)}:{n}" for n in range(1, 41)]
