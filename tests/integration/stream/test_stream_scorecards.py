"""Multi-timeframe strategies and signal outcomes live (Kafka, exactly-once) equal the batch core, also
through ``kill -9`` with outcomes pending.

One log (8 instruments over 4 partitions, ~2.8 h of event time each) goes to two namespaces. The
processor runs a strategy file with a 5m strategy reading the 1m and 1h candles (and a tick
strategy), STOCKSTREAM_TIMEFRAMES=1m,5m,1h and SCORECARD_HORIZONS=1m,5m,1h. In the first namespace
it drains the log uninterrupted; in the second it is killed with SIGKILL at seeded progress
fractions and restarted (every other restart from an empty state folder, so the state — pending
outcome segments included — comes back from the changelog). At every kill, 1h outcomes of the signals
of the last hour are pending by construction.

The reference is the pure core (:class:`~processors.core.pipeline.SymbolProcessor`) run per partition
with its stream time (:func:`processors.core.stream_time.process_in_partition`, the processor's rule)
over the ticks as the log holds them, with the log's lineage. Both
namespaces' committed ``signals``, ``signals.outcomes`` and candle topics must equal it record for
record, per key and in order: no outcome lost, none duplicated, the same multi-timeframe signals.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections import defaultdict

import pytest
from stream_support import (
    Processor,
    committed_offsets,
    make_ticks,
    outputs_by_key,
    produce_many,
    wait_drained,
)

from processors.core.pipeline import SymbolProcessor
from processors.core.scorecard import Scorecards
from processors.core.strategy import PipelineConfigs, load_strategy
from processors.core.stream_time import PartitionClock, process_in_partition
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Lineage, SignalOutcome, encode
from schemas.instruments import parse_instrument
from schemas.upcasters import decode_tick
from tests.support.kafka_tools import read_topic, wait_until
from tests.support.processes import STOCKSTREAM

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TIMEFRAMES = ("1m", "5m", "1h")
HORIZONS_MS = (60_000, 300_000, 3_600_000)
SYMBOLS = [f"M{i:02d}-USD" for i in range(8)]
TICKS = 40_000
SEED = 15_002
STRATEGY = """
[rules]
rsi_reversal = { enabled = false }
seed_rsi_ema = { enabled = false }
macd_cross = { enabled = false }
ema_cross = { enabled = false }

[strategies.trend_pullback]
timeframe = "5m"
buy  = "crosses_above(ema(3), ema(6)) and rsi(5)@1m < 80 and close > sma(2)@1h"
sell = "crosses_below(ema(3), ema(6)) or rsi(5)@1m > 85"
cooldown = "10m"

[strategies.tick_turn]
timeframe = "tick"
buy  = "crosses_above(ema(20), ema(60))"
sell = "crosses_below(ema(20), ema(60))"
"""
COMPARED = ("signals", "signals.outcomes", "candles.1m", "candles.5m", "candles.1h")


def batch_outputs(bootstrap: str, namespace: str, strategy_path) -> dict[str, dict[bytes, list]]:  # noqa: ANN001
    """The pure core over the committed ticks, per partition in log order with its stream time (the live
    processor's default LIVE_UPDATE_INTERVAL of 1 s: forming candles too), with the log's lineage."""
    configs = PipelineConfigs(load_strategy(strategy_path), candle_timeframes=TIMEFRAMES, grace_ms=5_000,
                              horizons_ms=HORIZONS_MS, fee=0.0, live_update_ms=1_000)
    topic = KafkaSettings(topic_prefix=namespace).topics().ticks.name
    processors: dict[str, SymbolProcessor] = {}
    clocks: dict[tuple[int, str], PartitionClock] = defaultdict(PartitionClock)  # per partition and venue
    found: dict[str, dict[bytes, list]] = {name: defaultdict(list) for name in COMPARED}

    def processor_of(key: str) -> SymbolProcessor:
        if key not in processors:
            instrument = parse_instrument(key)
            processors[key] = SymbolProcessor(configs.for_symbol(instrument.symbol), instrument)
        return processors[key]

    for record in sorted(read_topic(bootstrap, topic), key=lambda r: (r.partition, r.offset)):
        tick = decode_tick(record.value)
        key = f"{tick.symbol}@{tick.venue}"
        lineage = Lineage(topic=topic, partition=record.partition, offset=record.offset)
        for name, output in process_in_partition(clocks[(record.partition, tick.venue)], key, processor_of(key),
                                                 tick, lineage, processor_of):
            for event in output.signals:
                found["signals"][name.encode()].append(event)
            for event in output.outcomes:
                found["signals.outcomes"][name.encode()].append(event)
            for event in output.candles:
                found[f"candles.{event.timeframe}"][name.encode()].append(event)
    return {name: {key: [normalized(encode(e), namespace) for e in events] for key, events in by_key.items()}
            for name, by_key in found.items()}


def normalized(value: bytes, namespace: str) -> dict:
    document = json.loads(value)
    document["lineage"]["topic"] = document["lineage"]["topic"].removeprefix(namespace)
    return document


def progress(bootstrap: str, group: str, topic: str) -> float:
    return sum(committed_offsets(bootstrap, group, topic, 4).values()) / TICKS


def assert_equal(actual: dict[str, dict[bytes, list]], expected: dict[str, dict[bytes, list]], label: str) -> None:
    for topic in COMPARED:
        assert actual[topic].keys() == expected[topic].keys(), (label, topic)
        for key, want in expected[topic].items():
            got = actual[topic][key]
            assert len(got) == len(want), (label, topic, key, len(got), len(want))  # no loss, no duplicate
            assert got == want, (label, topic, key)


def test_multi_timeframe_signals_and_outcomes_live_equal_batch_through_kill_9(stack, namespaces, tmp_path):
    bootstrap = stack.kafka_bootstrap
    rng = random.Random(SEED)
    tag = tmp_path.name[-6:].replace("_", "")
    calm, crashed = namespaces(f"tsc{tag}a."), namespaces(f"tsc{tag}b.")
    strategy = tmp_path / "multi.toml"
    strategy.write_text(STRATEGY)
    records = make_ticks(SYMBOLS, TICKS, seed=SEED, step_ms=2_000)
    for namespace in (calm, crashed):
        settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace, partitions=4,
                                 candle_timeframes=TIMEFRAMES)
        ensure_topics(settings, settings.topics().all())
        produce_many(bootstrap, settings.topics().ticks.name, records)  # recent stamp: RECORD_MS
    env = {"STOCKSTREAM_STRATEGY": str(strategy), "STOCKSTREAM_TIMEFRAMES": ",".join(TIMEFRAMES),
           "SCORECARD_HORIZONS": "1m,5m,1h"}

    ticks = KafkaSettings(topic_prefix=calm).topics().ticks.name
    processor = Processor(bootstrap, calm, f"{calm}g", tmp_path / "calm", **env)
    try:
        wait_drained(bootstrap, f"{calm}g", ticks, timeout_s=900, processors=[processor])
    finally:
        processor.terminate()

    ticks = KafkaSettings(topic_prefix=crashed).topics().ticks.name
    group, state = f"{crashed}g", tmp_path / "crashed"
    processor = Processor(bootstrap, crashed, group, state, PROCESS_INSTANCE_ID="instance-0", **env)
    kills = sorted(rng.uniform(0.15, 0.85) for _ in range(3))
    try:
        for number, fraction in enumerate(kills):
            wait_until(lambda f=fraction: progress(bootstrap, group, ticks) >= f or not processor.alive(),
                       timeout_s=900, interval_s=0.1, message=f"progress {fraction:.0%}")
            assert processor.alive(), processor.output[-3000:]
            processor.kill9()
            if number % 2 == 1:
                shutil.rmtree(state, ignore_errors=True)  # the next start restores state from the changelog
            processor.restart()
        processor.wait_running()
        wait_drained(bootstrap, group, ticks, timeout_s=900, processors=[processor])
    finally:
        processor.terminate()

    expected = batch_outputs(bootstrap, calm, strategy)
    signals = [s for by_key in expected["signals"].values() for s in by_key]
    outcomes = [o for by_key in expected["signals.outcomes"].values() for o in by_key]
    assert {(s["strategy"], s["timeframe"]) for s in signals} == {("trend_pullback", "5m"), ("tick_turn", "tick")}
    assert all(s["strategy_version"] and s["condition"] for s in signals)
    assert {o["horizon"] for o in outcomes} == {"1m", "5m", "1h"}
    assert sum(1 for s in signals if s["timeframe"] == "5m") >= 20
    assert_equal(outputs_by_key(bootstrap, calm, COMPARED), expected, "uninterrupted")
    # The CLI's scorecards of the live log are those of the batch outcomes.
    result = subprocess.run([STOCKSTREAM, "query", "scorecard", "--json", "--strategy", "trend_pullback"],
                            capture_output=True, text=True, timeout=120, check=False,
                            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STOCKSTREAM_TOPIC_PREFIX": calm})
    assert result.returncode == 0, result.stderr
    cards = Scorecards().extend(SignalOutcome.model_validate(o) for o in outcomes
                                if o["strategy"] == "trend_pullback").cards()
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        json.loads(json.dumps({**c.key._asdict(), **{k: v for k, v in c._asdict().items() if k != "key"}}))
        for c in cards]
    assert {c.key.horizon for c in cards} == {"1m", "5m", "1h"}
    assert_equal(outputs_by_key(bootstrap, crashed, COMPARED), batch_outputs(bootstrap, crashed, strategy),
                 "killed")
