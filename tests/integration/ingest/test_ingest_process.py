"""``stockstream ingest`` as a real process: simulator output, metrics endpoint, SIGTERM flush, tail."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
from ingest_support import sample, scrape

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Tick
from tests.support.kafka_tools import produce, read_topic, wait_until
from tests.support.ports import free_port
from tests.support.processes import STOCKSTREAM, ServiceProcess

pytestmark = pytest.mark.integration

SIMULATED = ["ingest", "--source", "simulator", "--seed", "7", "--start-time", "2024-01-01T00:00:00",
             "--rate", "0", "--count", "600", "--symbols", "BTC-USD,ETH-USD,SOL-USD"]


def test_simulator_run_is_reproducible_and_keyed_by_instrument(stack, namespace, ingest_env):
    first = ServiceProcess(SIMULATED, ingest_env)
    assert first.wait(60) == 0, first.output
    ready = re.search(r"ingest ready in ([0-9.]+)s", first.output)
    assert ready and float(ready.group(1)) >= 0  # reported (how fast is a figure of make bench, not a test)
    records = read_topic(stack.kafka_bootstrap, f"{namespace}ticks")
    ticks = {Tick.model_validate_json(r.value).source_id: r for r in records}
    assert sorted(ticks) == sorted(f"sim-s7-{i}" for i in range(600))
    assert all(r.key == (json.loads(r.value)["symbol"] + "@simulator").encode() for r in records)
    assert {json.loads(r.value)["symbol"] for r in records} == {"BTC-USD", "ETH-USD", "SOL-USD"}

    second_namespace = namespace.rstrip(".") + "b."
    second = ServiceProcess(SIMULATED, {**ingest_env, "STOCKSTREAM_TOPIC_PREFIX": second_namespace})
    assert second.wait(60) == 0, second.output
    again = {Tick.model_validate_json(r.value).source_id: r.value
             for r in read_topic(stack.kafka_bootstrap, f"{second_namespace}ticks")}
    assert again == {source_id: record.value for source_id, record in ticks.items()}  # byte-identical


def test_sigterm_flushes_everything_accepted(stack, namespace, ingest_env):
    port = free_port()
    started = time.monotonic()
    service = ServiceProcess(["ingest", "--source", "simulator", "--rate", "0"],
                             {**ingest_env, "METRICS_PORT": str(port), "INGEST_LINGER_MS": "50"})
    try:
        wait_until(lambda: sample(scrape(port), "stockstream_ingest_records_published_total",
                                  source="simulator") >= 5_000, timeout_s=60, message="5000 ticks published")
        text = scrape(port)
        for name in ("records_received_total", "records_rejected_total", "last_tick_age_seconds",
                     "symbol_last_tick_age_seconds", "producer_queue_messages"):
            assert f"stockstream_ingest_{name}" in text
        age = sample(text, "stockstream_ingest_symbol_last_tick_age_seconds", source="simulator", symbol="BTC-USD")
        assert 0 <= age <= time.monotonic() - started  # a tick of this run, measured against the wall clock
    finally:
        code = service.terminate(60)
    output = service.log_path.read_text()
    assert code == 0, output
    summary = re.search(r"stopped cleanly: received=(\d+) accepted=(\d+) delivered=(\d+)", output)
    assert summary, output
    accepted = int(summary.group(2))
    assert accepted == int(summary.group(3)) >= 5_000
    ids = [json.loads(r.value)["source_id"] for r in read_topic(stack.kafka_bootstrap, f"{namespace}ticks")]
    assert len(ids) == accepted == len(set(ids))
    assert sorted(int(i.rsplit("-", 1)[1]) for i in ids) == list(range(accepted))  # none lost, none twice


def test_bad_configuration_fails_fast_with_a_clear_message(ingest_env):
    """Refused before anything is contacted: the "broker" is a local socket that records connections."""
    env = {key: value for key, value in ingest_env.items()}
    env.pop("ALPHAVANTAGE_API_KEY", None)
    with socket.socket() as broker:
        broker.bind(("127.0.0.1", 0))
        broker.listen()
        broker.setblocking(False)
        env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{broker.getsockname()[1]}"
        result = subprocess.run([STOCKSTREAM, "ingest", "--source", "alphavantage"], capture_output=True, text=True,
                                env={**{k: v for k, v in os.environ.items() if k != "ALPHAVANTAGE_API_KEY"}, **env},
                                timeout=300, check=False)
        try:
            broker.accept()
            contacted = True
        except BlockingIOError:
            contacted = False
    assert result.returncode == 2
    assert "ALPHAVANTAGE_API_KEY" in result.stderr and "Traceback" not in result.stderr
    assert not contacted, "the configuration error must come before any connection to Kafka"


def test_tail_prints_records_as_json_lines_and_table(stack, namespace):
    settings = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace)
    ensure_topics(settings, [settings.topics().ticks])
    topic = f"{namespace}ticks"
    ticks = [{"schema_version": 1, "symbol": "BTC-USD", "price": 100.0 + i, "volume": None, "bid": None,
              "ask": None, "ts_event": "2024-01-01T00:00:00Z", "ts_init": "2024-01-01T00:00:00Z",
              "source": "test", "source_id": f"t-{i}"} for i in range(5)]
    produce(stack.kafka_bootstrap, topic, [(b"BTC-USD", json.dumps(t)) for t in ticks])
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "STOCKSTREAM_TOPIC_PREFIX": namespace}
    result = subprocess.run([STOCKSTREAM, "tail", "--topic", "ticks", "--from-beginning", "--limit", "3", "--json"],
                            capture_output=True, text=True, env=env, timeout=60, check=True)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["value"]["source_id"] for line in lines] == ["t-0", "t-1", "t-2"]
    assert {line["topic"] for line in lines} == {topic} and lines[0]["key"] == "BTC-USD"
    table = subprocess.run([STOCKSTREAM, "tail", "--from-beginning", "--idle-exit", "2"],
                           capture_output=True, text=True, env=env, timeout=60, check=True)
    assert "source_id" in table.stdout and all(f"t-{i}" in table.stdout for i in range(5))
    unknown = subprocess.run([STOCKSTREAM, "tail", "--topic", "nope"], capture_output=True, text=True, env=env,
                             timeout=60, check=False)
    assert unknown.returncode == 2 and "known:" in unknown.stderr


def test_sigint_also_stops_cleanly(stack, namespace, ingest_env):
    service = ServiceProcess(["ingest", "--source", "simulator", "--interval", "0.01"], ingest_env)
    wait_until(lambda: "ingest ready" in service.output, timeout_s=120, message="service ready")
    os.killpg(service.process.pid, signal.SIGINT)
    assert service.wait(30) == 0
    assert "stopped cleanly" in service.output
