"""ops/alertmanager/alertmanager.yml passes ``amtool check-config``, routes every alert of ours where it
should (``amtool config routes test``), and the local stack's rendering of it keeps routes and secrets right.

``amtool`` comes with the Debian ``prometheus-alertmanager`` package (``make setup`` installs it). The
delivery itself (grouping, inhibition, every kind of channel, resolved notifications) is proven against a
real Alertmanager in tests/integration/observability/test_observability_alerting.py.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from stockstream.stack.alertmanager import AlertChannelSettings, Alertmanager, render_alertmanager_config
from stockstream.stack.services import StackSettings, render_prometheus_config

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "ops" / "alertmanager" / "alertmanager.yml"
RULE_FILES = sorted((REPO / "ops" / "prometheus" / "rules").glob("*.yml"))
RECEIVER_OF_SEVERITY = {"critical": "oncall", "warning": "team"}


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("amtool")
    assert binary, "amtool not found: install the Debian package 'prometheus-alertmanager' (make setup does)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def shipped() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def alert_rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


ALL_CHANNELS = AlertChannelSettings(
    webhook_url="http://127.0.0.1:1/hook", webhook_token=SecretStr("sentinel-webhook-token"),
    slack_webhook_url=SecretStr("https://hooks.slack.invalid/services/sentinel-slack"),
    email_to="oncall@example.invalid", smtp_smarthost="127.0.0.1:2525", smtp_username="alerts",
    smtp_password=SecretStr("sentinel-smtp-password"), smtp_require_tls=False)
SECRETS = ("sentinel-webhook-token", "sentinel-slack", "sentinel-smtp-password")


# --- the shipped file ----------------------------------------------------------------------------

def test_amtool_check_config_accepts_the_shipped_file():
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_amtool_check_config_rejects_a_broken_file(tmp_path):
    """Negative control: a route naming a receiver that does not exist."""
    broken = shipped()
    broken["route"]["routes"][0]["receiver"] = "nobody"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(broken))
    result = amtool("check-config", str(path))
    assert result.returncode != 0 and "nobody" in result.stdout + result.stderr


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_routes_to_the_receiver_of_its_severity(rule):
    severity = rule["labels"]["severity"]
    expected = RECEIVER_OF_SEVERITY[severity]
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={expected}",
                    f"alertname={rule['alert']}", f"severity={severity}", "job=stockstream",
                    "instance=127.0.0.1:9102")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(("labels", "receiver"), [
    (["severity=critical", "alertname=Anything"], "oncall"),
    (["severity=warning", "alertname=Anything"], "team"),
    (["alertname=NoSeverityLabel"], "team"),      # never lost: the root receiver
    (["severity=info", "alertname=Unknown"], "team"),
])
def test_routing_by_severity_with_a_default(labels, receiver):
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={receiver}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr


def test_routing_test_notices_a_wrong_receiver():
    """Negative control of the check above."""
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", "--verify.receivers=team",
                    "severity=critical", "alertname=StockstreamKafkaUnreachable")
    assert result.returncode != 0


def test_grouping_and_repeat_intervals():
    route = shipped()["route"]
    assert route["group_by"] == ["alertname"]  # every instance of an alert in one notification
    by_receiver = {child["receiver"]: child for child in route["routes"]}
    assert by_receiver["oncall"]["repeat_interval"] == "1h" and by_receiver["team"]["repeat_interval"] == "4h"
    for child in route["routes"]:
        assert "group_by" not in child  # inherits: one notification per alert name


def test_inhibition_names_real_alerts_and_only_silences_consequences():
    alerts = {rule["alert"]: rule for rule in alert_rules()}
    rules = {rule["source_matchers"][0]: rule for rule in shipped()["inhibit_rules"]}
    assert set(rules) == {'alertname="StockstreamKafkaUnreachable"', 'alertname="RedisDown"'}
    silenced: dict[str, set[str]] = {}
    for source, rule in rules.items():
        assert source.split('"')[1] in alerts
        [target] = rule["target_matchers"]
        names = set(target.split('"')[1].split("|"))
        assert names <= set(alerts), names - set(alerts)
        silenced[source.split('"')[1]] = names
    assert {"StockstreamConsumerLagHigh", "StockstreamNoTicks"} <= silenced["StockstreamKafkaUnreachable"]
    assert silenced["RedisDown"] == {"StockstreamRedisUnreachable"}
    # A down service, a crash loop or data loss are never hidden; no alert silences its own source.
    never = {"StockstreamTargetDown", "StockstreamServiceRestarting", "KafkaOfflinePartitions",
             "KafkaUnderMinIsrPartitions", "StockstreamKafkaUnreachable", "RedisDown"}
    assert not set().union(*silenced.values()) & never


def test_every_receiver_has_the_three_kinds_of_channel_the_notifier_has():
    receivers = {receiver["name"]: receiver for receiver in shipped()["receivers"]}
    assert set(receivers) == set(RECEIVER_OF_SEVERITY.values())
    assert {"webhook_configs", "slack_configs", "email_configs"} <= set(receivers["oncall"])
    assert {"webhook_configs", "slack_configs"} <= set(receivers["team"])
    for receiver in receivers.values():
        for kind in ("webhook_configs", "slack_configs", "email_configs"):
            assert all(config.get("send_resolved") for config in receiver.get(kind, [])), (receiver["name"], kind)


def test_no_secret_is_written_in_the_shipped_file():
    config = shipped()
    assert "slack_api_url" not in config["global"] and "smtp_auth_password" not in config["global"]
    assert config["global"]["slack_api_url_file"].startswith("/etc/alertmanager/secrets/")
    assert config["global"]["smtp_auth_password_file"].startswith("/etc/alertmanager/secrets/")
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            authorization = webhook["http_config"]["authorization"]
            assert set(authorization) == {"type", "credentials_file"}


# --- the local stack's rendering -----------------------------------------------------------------

def test_without_channels_alerts_are_routed_but_sent_nowhere(tmp_path):
    config, files = render_alertmanager_config(shipped(), AlertChannelSettings(), tmp_path)
    assert files == {}
    assert config["route"] == shipped()["route"] and config["inhibit_rules"] == shipped()["inhibit_rules"]
    for receiver in config["receivers"]:
        assert set(receiver) == {"name"}
    assert not any(key.startswith(("smtp_", "slack_")) for key in config["global"])
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    assert amtool("check-config", str(path)).returncode == 0


def test_every_channel_configured_from_env_values_keeps_secrets_in_files(tmp_path):
    config, files = render_alertmanager_config(shipped(), ALL_CHANNELS, tmp_path / "secrets")
    text = yaml.safe_dump(config)
    assert not any(secret in text for secret in SECRETS)
    assert sorted(files.values()) == sorted([
        "sentinel-webhook-token", "https://hooks.slack.invalid/services/sentinel-slack", "sentinel-smtp-password"])
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert receivers["oncall"]["webhook_configs"][0]["url"] == "http://127.0.0.1:1/hook"
    token_file = receivers["oncall"]["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"]
    assert files[Path(token_file)] == "sentinel-webhook-token"
    assert receivers["oncall"]["email_configs"][0]["to"] == "oncall@example.invalid"
    assert "email_configs" not in receivers["team"]  # e-mail only pages
    assert files[Path(config["global"]["slack_api_url_file"])].endswith("sentinel-slack")
    assert config["global"]["smtp_smarthost"] == "127.0.0.1:2525" and config["global"]["smtp_require_tls"] is False
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_secret_files_of_yours_are_used_where_they_are(tmp_path):
    mine = tmp_path / "my-slack-url"
    mine.write_text("https://hooks.slack.invalid/x")
    config, files = render_alertmanager_config(
        shipped(), AlertChannelSettings(slack_webhook_url_file=mine), tmp_path / "secrets")
    assert files == {} and config["global"]["slack_api_url_file"] == str(mine)
    assert all(set(receiver) == {"name", "slack_configs"} for receiver in config["receivers"])


def test_stack_prepare_writes_the_config_and_0600_secret_files(tmp_path, monkeypatch):
    if shutil.which("prometheus-alertmanager") is None and shutil.which("alertmanager") is None:
        pytest.fail("Alertmanager not installed: install the Debian package 'prometheus-alertmanager'")
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "http://127.0.0.1:1/hook")
    monkeypatch.setenv("ALERT_WEBHOOK_TOKEN", "sentinel-webhook-token")
    service = Alertmanager(StackSettings(state_dir=tmp_path, alertmanager_port=19299))
    service.prepare()
    rendered = service.config_file.read_text()
    assert "sentinel-webhook-token" not in rendered
    token = service.home / "secrets" / "webhook-token"
    assert token.read_text() == "sentinel-webhook-token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    assert amtool("check-config", str(service.config_file)).returncode == 0
    command = service.command()
    assert "--web.listen-address=127.0.0.1:19299" in command and "--cluster.listen-address=" in command


def test_stack_prometheus_sends_to_the_stack_alertmanager(tmp_path):
    settings = StackSettings(state_dir=tmp_path, prometheus_port=19298, alertmanager_port=19299)
    config = yaml.safe_load(render_prometheus_config(settings))
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:19299"]}]}]}
    assert config["rule_files"] == [str(REPO / "ops" / "prometheus" / "rules" / "*.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:19298"]}]
    # A config of the caller's (STACK_PROMETHEUS_CONFIG: the alerting tests' own targets) gets the same.
    own = tmp_path / "own.yml"
    own.write_text(yaml.safe_dump({"global": {"scrape_interval": "2s"}, "rule_files": ["/abs/rules/*.yml"],
                                   "scrape_configs": [{"job_name": "stockstream", "static_configs": [
                                       {"targets": ["127.0.0.1:1"]}]}]}))
    mine = yaml.safe_load(render_prometheus_config(settings.model_copy(update={"prometheus_config": own})))
    assert mine["alerting"] == config["alerting"] and mine["rule_files"] == ["/abs/rules/*.yml"]
    assert mine["scrape_configs"] == [{"job_name": "stockstream", "static_configs": [{"targets": ["127.0.0.1:1"]}]}]
    shipped_prometheus = yaml.safe_load((REPO / "ops" / "prometheus" / "prometheus.yml").read_text())
    assert jobs["stockstream"] == next(job for job in shipped_prometheus["scrape_configs"]
                                       if job["job_name"] == "stockstream")
