"""The held-in test series (tests/data/ticks_sample.csv) is what its generator says it is."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import datetime
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data"


def test_sample_is_reproducible_from_its_generator() -> None:
    generated = subprocess.run([sys.executable, str(DATA / "make_ticks_sample.py")], capture_output=True,
                               text=True, check=True, timeout=60).stdout
    assert generated == (DATA / "ticks_sample.csv").read_text()


def test_sample_spans_a_utc_midnight_with_interleaved_symbols_in_order() -> None:
    with (DATA / "ticks_sample.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert 2_000 <= len(rows) <= 10_000
    times = [datetime.fromisoformat(row["timestamp"]) for row in rows]
    assert {t.date().isoformat() for t in times} == {"2024-03-09", "2024-03-10"}
    assert {row["symbol"] for row in rows} == {"BTC-USD", "ETH-USD", "SOL-USD"}
    assert len({row["symbol"] for row in rows[:10]}) == 3  # interleaved, not blocks
    assert times == sorted(times) and len(set(times)) == len(times)
    btc = [float(row["price"]) for row in rows if row["symbol"] == "BTC-USD"]
    assert 50_000 < min(btc) and max(btc) < 80_000 and all(float(row["volume"]) > 0 for row in rows)
