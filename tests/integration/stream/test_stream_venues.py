"""Two venues feeding one symbol at once are two instruments: two series, each its venue's alone.

BTC-USD arrives from ``coinbase`` (a tick every 250 ms) and ``kraken`` (every 300 ms), interleaved
one by one, so their event times overlap and drift up to 60 s apart: as one mixed series (the
release before instruments) most of kraken's ticks would be ``late`` or out of order and the
indicators would jump between two prices. Here the real ``stockstream process`` must give each
instrument the series the batch engine (``stockstream indicators``) computes over that venue's
ticks alone, value for value and signal for signal, with no dead letter and nothing out of order.
"""

from __future__ import annotations

import io
import json
import math
import random
from datetime import timedelta

import pytest
from stream_support import T0, Processor, wait_drained

from processors.core.strategy import DEFAULT_STRATEGY
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Tick, encode
from schemas.upcasters import decode_indicator_snapshot, decode_signal
from stockstream.batch import run as batch_run
from tests.support.kafka_tools import produce, read_topic

pytestmark = pytest.mark.integration
COUNT = 1_200  # per venue
STEPS_MS = {"coinbase": 250, "kraken": 300}


def venue_ticks(venue: str, seed: int) -> list[Tick]:
    rng = random.Random(seed)  # noqa: S311 - test data
    price = 64_000.0 + seed
    ticks = []
    for index in range(COUNT):
        price *= math.exp(rng.gauss(0.0, 1.5e-3))
        moment = T0 + timedelta(milliseconds=STEPS_MS[venue] * index)
        ticks.append(Tick(symbol="BTC-USD", venue=venue, price=round(price, 2), volume=round(rng.uniform(0.01, 2), 4),
                          ts_event=moment, ts_init=moment, source=venue, source_id=f"{venue}-{index}"))
    return ticks


def batch_series(ticks: list[Tick]) -> list[dict[str, str]]:
    """The batch engine over one venue's ticks: one row per tick (indicator values as repr, signals)."""
    lines = ["timestamp,symbol,price,volume,venue"] + [
        f"{t.ts_event.isoformat()},{t.symbol},{t.price!r},{t.volume!r},{t.venue}" for t in ticks]
    output = io.StringIO()
    report = batch_run(lines, output, strategy=DEFAULT_STRATEGY)
    assert not report.skipped and report.written == len(ticks)
    import csv

    return list(csv.DictReader(io.StringIO(output.getvalue())))


def test_two_venues_of_one_symbol_are_two_series_each_equal_to_the_batch_engine(stack, namespaces, tmp_path):
    namespace = namespaces("tven" + tmp_path.name[-6:].replace("_", "") + ".")
    bootstrap = stack.kafka_bootstrap
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace)
    topics = settings.topics()
    ensure_topics(settings, topics.all())
    by_venue = {"coinbase": venue_ticks("coinbase", 1), "kraken": venue_ticks("kraken", 2)}
    interleaved = [tick for pair in zip(by_venue["coinbase"], by_venue["kraken"], strict=True) for tick in pair]
    spread = max(abs((a.ts_event - b.ts_event).total_seconds()) for a, b in zip(*by_venue.values(), strict=True))
    assert spread > 30  # far beyond the 5 s grace: one mixed series would reject ticks as late
    produce(bootstrap, topics.ticks.name, [(f"{t.symbol}@{t.venue}".encode(), encode(t)) for t in interleaved])

    processor = Processor(bootstrap, namespace, f"{namespace}g", tmp_path / "state")
    try:
        wait_drained(bootstrap, f"{namespace}g", topics.ticks.name, processors=[processor])
        assert read_topic(bootstrap, topics.ticks_dlq.name) == []  # no late, no out_of_order, nothing
        assert processor.metric("stockstream_process_ticks_out_of_order_total") == 0
        snapshots = [decode_indicator_snapshot(r.value) for r in read_topic(bootstrap, topics.indicators.name)]
        signals = [decode_signal(r.value) for r in read_topic(bootstrap, topics.signals.name)]
    finally:
        processor.terminate()

    names = DEFAULT_STRATEGY.indicator_names()
    for venue, ticks in by_venue.items():
        stream = [s for s in snapshots if s.venue == venue and s.timeframe == "tick"]
        stream.sort(key=lambda s: (s.lineage.partition, s.lineage.offset))
        batch = batch_series(ticks)
        assert len(stream) == len(batch) == COUNT
        for snapshot, row in zip(stream, batch, strict=True):
            assert snapshot.price == float(row["price"])
            assert [snapshot.values[name] for name in names] == [
                None if row[name] == "" else float(row[name]) for name in names], venue
        fired = {(s.lineage.offset, f"{s.rule}:{s.side}") for s in signals if s.venue == venue and s.timeframe == "tick"}
        offsets = [s.lineage.offset for s in stream]
        expected = {(offsets[index], item) for index, row in enumerate(batch) if row["signals"]
                    for item in row["signals"].split(";")}
        assert fired == expected, venue
    assert {s.venue for s in snapshots} == {"coinbase", "kraken"}
    assert json.loads(encode(snapshots[0]))["venue"] in ("coinbase", "kraken")
