"""The strategy file of ``stockstream process``: validated at start with a clear error, and applied."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from stream_support import Processor, make_ticks, wait_drained

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import IndicatorSnapshot, Signal
from tests.support.kafka_tools import produce, read_topic
from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("periods.toml", "[indicators]\nema = [0, 26]\n", "periods.toml:2: indicators.ema[1]: must be at least 1"),
    ("unknown.yaml", "rules:\n  rsi_reversal:\n    oversold: 30\n    treshold: 2\n", "treshold"),
    ("needs.toml", "[indicators]\nrsi = [7]\n", "rsi_14"),
    ("broken.toml", "[indicators\n", "not valid TOML"),
    ("strategy.json", "{}", "must end in .toml, .yaml or .yml"),
])
def test_an_invalid_strategy_stops_the_start_with_a_clear_error(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    # Nothing listens on this port: the strategy is checked before Kafka is contacted.
    result = subprocess.run([STOCKSTREAM, "process", "--strategy", str(path), "--metrics-port", "0",
                             "--bootstrap-servers", "127.0.0.1:1"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2, result.stderr
    assert str(path) in result.stderr and expected in result.stderr, result.stderr


def test_a_missing_strategy_file_is_a_configuration_error(tmp_path):
    result = subprocess.run([STOCKSTREAM, "process", "--metrics-port", "0"], capture_output=True, text=True,
                            timeout=60, check=False, env={"STOCKSTREAM_STRATEGY": str(tmp_path / "nope.toml"),
                                                          "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "STOCKSTREAM_STRATEGY" in result.stderr and "nope.toml" in result.stderr


def test_the_strategy_file_decides_indicators_and_rules(stack, namespaces, tmp_path):
    namespace = namespaces("tstr" + tmp_path.name[-6:].replace("_", "") + ".")
    bootstrap = stack.kafka_bootstrap
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace)
    ensure_topics(settings, settings.topics().all())
    strategy = tmp_path / "fast.yaml"
    strategy.write_text(
        "name: fast\n"
        "indicators: {sma: [], ema: [3, 5], rsi: [], vwap: false, macd: {enabled: false},"
        " bollinger: {enabled: false}}\n"
        "rules: {rsi_reversal: {enabled: false}, macd_cross: {enabled: false}, seed_rsi_ema: {enabled: false},"
        " ema_cross: {fast: 3, slow: 5}}\n")
    produce(bootstrap, settings.topics().ticks.name, make_ticks(["AAA-USD", "BBB-USD"], 400, seed=5))
    processor = Processor(bootstrap, namespace, f"{namespace}g", tmp_path / "state", STOCKSTREAM_STRATEGY=str(strategy))
    try:
        wait_drained(bootstrap, f"{namespace}g", settings.topics().ticks.name, processors=[processor])
        os.killpg(processor.service.process.pid, signal.SIGINT)  # Ctrl-C: a clean stop
        assert processor.service.wait(60) == 0
        assert "stopped cleanly" in processor.output
    finally:
        processor.terminate()
    snapshots = [IndicatorSnapshot.model_validate_json(r.value)
                 for r in read_topic(bootstrap, settings.topics().indicators.name)]
    signals = [Signal.model_validate_json(r.value) for r in read_topic(bootstrap, settings.topics().signals.name)]
    assert len(snapshots) >= 400 and {tuple(s.values) for s in snapshots} == {("ema_3", "ema_5")}
    assert signals and {s.rule for s in signals} == {"ema_cross"}
    for fired in signals:  # each signal carries the values that caused it: a real crossing of EMA3 over EMA5
        d = fired.indicators["ema_3"] - fired.indicators["ema_5"]
        assert (d > 0) if fired.side == "BUY" else (d < 0)
