"""``stockstream doctor``: against the real stack (plus a real Alertmanager of its own) and against nothing.

The real console script; every address comes from the environment the way a person sets it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kafka_tools import delete_topics, wait_until
from tests.support.ports import free_port
from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[3]
SECRET = "hunter2-DO-NOT-LEAK"


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items()
            if not key.startswith(("REDIS_", "KAFKA_", "PROMETHEUS_", "ALERTMANAGER_", "NOTIFY_", "STOCKSTREAM_"))}
    return subprocess.run([STOCKSTREAM, "doctor", *args], capture_output=True, text=True, timeout=120, check=False,
                          cwd=ROOT, env={**base, **env})


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager (the Debian package's binary) on a free loopback port, with a minimal config."""
    port, cluster = free_port(), free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: none\nreceivers:\n  - name: none\n")
    with (tmp_path / "alertmanager.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            ["prometheus-alertmanager", f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", f"--cluster.listen-address=127.0.0.1:{cluster}"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _ready(url), timeout_s=120, message="alertmanager to start")
            yield url
        finally:
            process.terminate()
            process.wait(30)


def _ready(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=2) as answer:  # noqa: S310 - loopback test server
            return answer.status == 200
    except OSError:
        return False


@pytest.mark.integration
def test_doctor_against_the_real_stack(stack, alertmanager: str, tmp_path: Path, namespace: str) -> None:  # type: ignore[no-untyped-def]
    from processors.runtime.kafka_admin import ensure_topics
    from processors.runtime.settings import KafkaSettings

    strategy = tmp_path / "strategy.toml"
    strategy.write_text('[rules.rsi_reversal]\noversold = 25\n[symbols."ETH-USD".rules.rsi_reversal]\nperiod = 14\n')
    env = {"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "REDIS_URL": stack.redis_url,
           "PROMETHEUS_URL": stack.prometheus_url, "ALERTMANAGER_URL": alertmanager,
           "STOCKSTREAM_STRATEGY": str(strategy), "NOTIFY_SUBSCRIPTIONS": "docs/examples/subscriptions-console.toml",
           "STOCKSTREAM_TOPIC_PREFIX": namespace}
    settings = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace)
    try:
        nothing_yet = {check["name"]: check for check in json.loads(doctor(env, "--json").stdout)["checks"]}
        assert nothing_yet["topics"]["status"] == "skipped", nothing_yet["topics"]
        ensure_topics(settings, settings.topics().all())
        result = doctor(env, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        statuses = {check["name"]: check["status"] for check in report["checks"]}
        assert statuses == {"settings": "ok", "kafka": "ok", "topics": "ok", "redis": "ok", "prometheus": "ok",
                            "alertmanager": "ok", "strategy file": "ok", "subscription file": "ok"}, report["checks"]
        _doctor_names_a_topic_created_by_an_older_release(env, settings)
    finally:
        delete_topics(stack.kafka_bootstrap, namespace)
    assert report["ok"] is True
    settings = {setting["name"]: setting for setting in report["settings"]}
    assert settings["KAFKA_BOOTSTRAP_SERVERS"]["value"] == stack.kafka_bootstrap
    assert settings["KAFKA_BOOTSTRAP_SERVERS"]["source"] == "environment"
    assert "materialize" in settings["REDIS_URL"]["services"]
    assert settings["LOG_LEVEL"] == {"name": "LOG_LEVEL", "value": "INFO", "source": "default",
                                     "services": ["ingest", "process", "materialize", "notify", "serve", "backfill"]}
    # The same in words for a person.
    plain = doctor(env)
    assert plain.returncode == 0
    assert "✓ kafka: " in plain.stdout and "settings in effect (secrets masked)" in plain.stdout


def _doctor_names_a_topic_created_by_an_older_release(env: dict[str, str], settings) -> None:  # type: ignore[no-untyped-def]
    """A DLQ from before dead letters took the broker's time: a warning (exit 0) with the command that fixes it."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    dlq = settings.topics().ticks_dlq.name
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    older = ConfigResource("topic", dlq, incremental_configs=[
        ConfigEntry("message.timestamp.type", "CreateTime", incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([older]).values():
        future.result(timeout=30)
    result = doctor(env, "--json")
    assert result.returncode == 0, result.stdout + result.stderr  # a warning: the pipeline still runs
    topics = {check["name"]: check for check in json.loads(result.stdout)["checks"]}["topics"]
    assert topics == {
        "name": "topics", "status": "warning",
        "detail": f"{dlq} message.timestamp.type=CreateTime (declared LogAppendTime)",
        "hint": f"kafka-configs.sh --bootstrap-server … --alter --entity-type topics --entity-name {dlq}"
                " --add-config message.timestamp.type=LogAppendTime"}


def test_doctor_against_nothing_running_says_what_failed_and_masks_secrets() -> None:
    closed = [free_port() for _ in range(4)]
    env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed[0]}",
           "REDIS_URL": f"redis://:{SECRET}@127.0.0.1:{closed[1]}/0",
           "PROMETHEUS_URL": f"http://127.0.0.1:{closed[2]}", "ALERTMANAGER_URL": f"http://127.0.0.1:{closed[3]}",
           "KAFKA_SASL_PASSWORD": SECRET, "NOTIFY_SUBSCRIPTIONS": "docs/examples/subscriptions.toml"}
    result = doctor(env, "--json")
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["kafka"] == {
        "name": "kafka", "status": "failed",
        "detail": f"Kafka at 127.0.0.1:{closed[0]} is unreachable: connection refused",
        "hint": "Start it with `stockstream stack up`, or set KAFKA_BOOTSTRAP_SERVERS"}
    assert checks["redis"]["status"] == "failed"
    assert checks["redis"]["detail"] == f"Redis at redis://:***@127.0.0.1:{closed[1]}/0 is unreachable: connection refused"
    for name, port in (("prometheus", closed[2]), ("alertmanager", closed[3])):
        assert checks[name]["status"] == "warning"  # monitoring: the pipeline runs without it
        assert checks[name]["detail"].endswith(f"at http://127.0.0.1:{port} is unreachable: connection refused")
    assert checks["strategy file"]["status"] == "skipped"
    assert checks["subscription file"]["status"] == "failed"
    assert "DISCORD_WEBHOOK_URL: channel 'team-discord'" in checks["subscription file"]["detail"]
    settings = {setting["name"]: setting for setting in report["settings"]}
    assert settings["KAFKA_SASL_PASSWORD"]["value"] == "***"
    assert settings["REDIS_URL"]["value"] == f"redis://:***@127.0.0.1:{closed[1]}/0"


def test_invalid_settings_are_a_failed_check_not_a_traceback() -> None:
    result = doctor({"METRICS_PORT": "seventy", "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                     "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, "--json", "--no-settings")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    checks = [check for check in json.loads(result.stdout)["checks"] if check["name"].startswith("settings of")]
    assert {check["name"] for check in checks} >= {"settings of ingest", "settings of process"}
    assert all(check["detail"] == "METRICS_PORT: expected a whole number, got 'seventy'" for check in checks), checks
