"""The composite index on the real stack equals a pandas computation of its definition, staleness included.

Three venues quote BTC-USD into a one-partition ``ticks`` topic (so the order the composite stage
reads is the log order); ``binance`` goes silent for a minute in the middle and comes back. The
real ``stockstream composite`` publishes BTC-USD@index into ``ticks``; its ticks must be exactly
the emissions of the pandas reference (tests/unit/core/test_core_composite.py) over the venues'
ticks in log order, and the real ``stockstream process`` must compute the index's indicators like
any instrument's, with no dead letter.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from processors.core.timeutil import to_us
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Tick, encode
from schemas.upcasters import decode_indicator_snapshot, decode_tick
from tests.support.kafka_tools import delete_topics, produce, read_topic, wait_until
from tests.support.processes import ServiceProcess
from tests.unit.core.test_core_composite import run_pandas

pytestmark = pytest.mark.integration
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
STALE_S = 10


def venue_ticks() -> list[Tick]:
    rng = random.Random(4)  # noqa: S311 - test data
    ticks = []
    prices = {"coinbase": 64_000.0, "kraken": 64_020.0, "binance": 63_990.0}
    for second in range(0, 240):
        for venue in ("coinbase", "kraken", "binance"):
            if venue == "binance" and 90 <= second < 150:
                continue  # binance silent for 60 s: stale after 10 s, back at 150 s
            if rng.random() < 0.4:
                continue
            prices[venue] *= math.exp(rng.gauss(0.0, 4e-4))
            moment = T0 + timedelta(seconds=second, milliseconds=rng.randrange(0, 900))
            ticks.append(Tick(symbol="BTC-USD", venue=venue, price=round(prices[venue], 2), volume=0.1,
                              ts_event=moment, ts_init=moment, source=venue, source_id=f"{venue}-{second}"))
    return ticks


def test_the_composite_equals_pandas_and_gets_indicators_like_any_instrument(stack, tmp_path):
    prefix = f"tcmp{uuid.uuid4().hex[:8]}."
    bootstrap = stack.kafka_bootstrap
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=1)
    ensure_topics(settings, settings.topics().all())
    ticks = venue_ticks()
    produce(bootstrap, settings.topics().ticks.name, [(f"{t.symbol}@{t.venue}".encode(), encode(t)) for t in ticks])
    env = {"STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STOCKSTREAM_PARTITIONS": "1"}
    composite = ServiceProcess(["composite", "--symbols", "BTC-USD", "--stale", str(STALE_S), "--from-beginning",
                                "--metrics-port", "0", "--state-dir", str(tmp_path / "composite")], env)
    process = ServiceProcess(["process", "--metrics-port", "0", "--state-dir", str(tmp_path / "process")], env)
    try:
        log = [r for r in read_topic(bootstrap, settings.topics().ticks.name)]
        inputs = [decode_tick(r.value) for r in log if not r.key.endswith(b"@index")]
        expected = run_pandas([(t.venue, t.price, to_us(t.ts_event)) for t in inputs], STALE_S * 1_000_000)
        assert any(index > 0 for index, *_ in expected)

        def index_ticks(idle_s: float | None = 0.5) -> list[Tick]:  # sampled while waiting, read whole after
            return [decode_tick(r.value) for r in read_topic(bootstrap, settings.topics().ticks.name, idle_s=idle_s)
                    if r.key == b"BTC-USD@index"]

        wait_until(lambda: len(index_ticks()) >= len(expected) or not composite.alive(), timeout_s=300,
                   message="the composite's ticks")
        assert composite.alive(), composite.output[-3000:]
        emitted = index_ticks(idle_s=None)
        assert [(t.price, to_us(t.ts_event)) for t in emitted] == [(price, ts) for _, price, ts in expected]
        assert [t.source_id.split(":")[1] for t in emitted] == [inputs[index].source_id for index, *_ in expected]
        assert {t.source for t in emitted} == {"composite"} and {t.venue for t in emitted} == {"index"}
        # While binance was silent (stale after 10 s), the index was the median of two venues: never its price.
        binance_gap = [t for t in emitted if T0 + timedelta(seconds=101) <= t.ts_event < T0 + timedelta(seconds=150)]
        assert binance_gap

        def snapshots() -> list:
            return [decode_indicator_snapshot(r.value)
                    for r in read_topic(bootstrap, settings.topics().indicators.name, idle_s=0.5)
                    if r.key == b"BTC-USD@index"]

        wait_until(lambda: len([s for s in snapshots() if s.timeframe == "tick"]) == len(emitted)
                   or not process.alive(), timeout_s=300, message="indicators of BTC-USD@index")
        assert process.alive(), process.output[-3000:]
        assert read_topic(bootstrap, settings.topics().ticks_dlq.name) == []
    finally:
        composite.terminate()
        process.terminate()
        delete_topics(bootstrap, prefix)
        delete_topics(bootstrap, f"changelog__{prefix}")
        delete_topics(bootstrap, f"repartition__{prefix}")
