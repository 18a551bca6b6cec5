"""Live output equals batch output, value for value.

The held-in series (tests/data/ticks_sample.csv: three symbols across a UTC midnight) goes
through the real commands: ``stockstream ingest --source file`` → Kafka → ``stockstream
process``; the ``indicators``, ``signals`` and ``candles.1m`` topics (read_committed) are then
compared with ``stockstream indicators`` on the same CSV, for the tick timeframe (one row per
tick) and for 1m candles (one row per closed candle; ``--no-flush`` because a stream never
closes its last, still open, windows; the series is in event order across its symbols and ends
within grace for all three, so the partitions' stream time closes no window the batch run leaves
open). Floats must be equal exactly: both runs execute the same pipeline step on the same numbers.
"""

from __future__ import annotations

import csv
import os
import subprocess
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from processors.ingest.validation import parse_file_timestamp
from processors.runtime.settings import KafkaSettings
from schemas.events import Candle, IndicatorSnapshot, Signal
from tests.integration.stream.stream_support import Processor, cleanup, wait_drained
from tests.support.kafka_tools import read_topic
from tests.support.processes import STOCKSTREAM

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "ticks_sample.csv"
CANDLE_COLUMNS = ("symbol", "timeframe", "ts_open", "ts_close", "open", "high", "low", "close", "volume",
                  "trade_count")


def batch(tmp_path: Path, *args: str) -> list[dict[str, str]]:
    output = tmp_path / f"batch{len(args)}.csv"
    result = subprocess.run([STOCKSTREAM, "indicators", "--input", str(SAMPLE), "--output", str(output), *args],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    with output.open(newline="") as handle:
        return list(csv.DictReader(handle))


def number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def fired(signals: list[Signal]) -> list[str]:
    return sorted(f"{s.rule}:{s.side}" for s in signals)


@pytest.fixture
def live(stack, tmp_path):
    """Ingest the sample file and run the processor over it; yields the output topics, parsed."""
    namespace = f"tpar{tmp_path.name[-6:].replace('_', '')}."
    bootstrap = stack.kafka_bootstrap
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STOCKSTREAM_TOPIC_PREFIX": namespace, "METRICS_PORT": "0"}
    topics = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace).topics()
    try:
        ingest = subprocess.run([STOCKSTREAM, "ingest", "--source", "file", "--path", str(SAMPLE)],
                                env={**os.environ, **env}, capture_output=True, text=True,
                                timeout=300, check=False)
        assert ingest.returncode == 0, ingest.stderr
        processor = Processor(bootstrap, namespace, f"{namespace}g", tmp_path / "state")
        try:
            wait_drained(bootstrap, f"{namespace}g", topics.ticks.name, processors=[processor])
        finally:
            processor.terminate()
        yield {
            "indicators": [IndicatorSnapshot.model_validate_json(r.value)
                           for r in read_topic(bootstrap, topics.indicators.name)],
            "signals": [Signal.model_validate_json(r.value) for r in read_topic(bootstrap, topics.signals.name)],
            # closed candles: the forming ones (final: false, LIVE_UPDATE_INTERVAL) have no batch row
            "candles": [candle for r in read_topic(bootstrap, topics.candles("1m").name)
                        if (candle := Candle.model_validate_json(r.value)).final],
            "dlq": read_topic(bootstrap, topics.ticks_dlq.name),
        }
    finally:
        cleanup(bootstrap, namespace)


def test_live_equals_batch_on_the_held_in_series(live, tmp_path):
    assert live["dlq"] == []  # every row of the sample is valid and in order per symbol
    snapshots: dict[tuple[str, str, datetime], IndicatorSnapshot] = {}
    for snapshot in live["indicators"]:
        key = (snapshot.symbol, snapshot.timeframe, snapshot.ts_event)
        assert key not in snapshots, key  # exactly one snapshot per tick / candle
        snapshots[key] = snapshot
    signals: dict[tuple[str, str, datetime], list[Signal]] = defaultdict(list)
    for signal in live["signals"]:
        signals[(signal.symbol, signal.timeframe, signal.ts_event)].append(signal)
        assert signal.lineage.topic.endswith("ticks") and signal.lineage.offset >= 0

    # Tick timeframe: one batch row per CSV row.
    rows = batch(tmp_path)
    names = [column for column in rows[0] if column not in ("timestamp", "symbol", "venue", "price", "volume", "signals")]
    assert len(rows) == 2821 == sum(1 for key in snapshots if key[1] == "tick")
    batch_signals = 0
    for row in rows:
        key = (row["symbol"], "tick", parse_file_timestamp(row["timestamp"]))
        snapshot = snapshots[key]
        assert snapshot.price == float(row["price"]) and snapshot.venue == row["venue"] == "file"
        assert [snapshot.values[name] for name in names] == [number(row[name]) for name in names], key
        assert fired(signals.get(key, [])) == sorted(filter(None, row["signals"].split(";"))), key
        batch_signals += len(list(filter(None, row["signals"].split(";"))))
    assert batch_signals > 100  # the series does produce signals on the tick timeframe

    # 1m candles: one batch row per closed candle; the stream leaves the last windows open.
    rows = batch(tmp_path, "--timeframe", "1m", "--no-flush")
    candles = {(c.symbol, c.ts_close): c for c in live["candles"]}
    assert len(rows) == len(candles) == sum(1 for key in snapshots if key[1] == "1m") > 100
    for row in rows:
        close = datetime.fromisoformat(row["ts_close"])
        candle = candles[(row["symbol"], close)]
        assert [candle.open, candle.high, candle.low, candle.close, candle.volume, candle.trade_count] == \
            [float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"]), float(row["volume"]),
             int(row["trade_count"])]
        assert candle.ts_open == datetime.fromisoformat(row["ts_open"])
        snapshot = snapshots[(row["symbol"], "1m", close)]
        assert [snapshot.values[name] for name in names] == [number(row[name]) for name in names]
        assert fired(signals.get((row["symbol"], "1m", close), [])) == sorted(filter(None, row["signals"].split(";")))
        batch_signals += len(list(filter(None, row["signals"].split(";"))))
    assert len(live["signals"]) == batch_signals  # and no live signal the batch run does not have
