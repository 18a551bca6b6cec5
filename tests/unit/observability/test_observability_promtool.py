"""The Prometheus config and rules pass promtool, and every rule has a unit test with synthetic series.

``promtool`` comes with the Debian ``prometheus`` package (``make setup`` installs it). The rule
unit tests themselves live in ``ops/prometheus/tests/*.yml``; this module runs them so that
``make test`` does.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS = REPO / "ops" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: install the Debian package 'prometheus' (make setup does)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS)


def test_there_are_rule_and_test_files():
    assert RULE_FILES, "no rule files in ops/prometheus/rules"
    assert TEST_FILES, "no rule unit tests in ops/prometheus/tests"


def test_promtool_check_config():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout + result.stderr


def test_promtool_check_rules():
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules():
    result = promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def _rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def _tests() -> list[dict]:
    return [test for path in TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]]


def test_every_alert_has_a_firing_case_and_a_quiet_case():
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in _tests():
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert alerts, "no alert rules"
    assert alerts - firing == set(), "alerts without a test where they fire"
    assert alerts - quiet == set(), "alerts without a test where they stay quiet"


def test_every_recording_rule_has_an_expression_test():
    tested = {case["expr"].strip() for test in _tests() for case in test.get("promql_expr_test", [])}
    records = {rule["record"] for rule in _rules() if "record" in rule}
    assert records - tested == set()


@pytest.mark.parametrize("rule", [rule for rule in _rules() if "alert" in rule], ids=lambda rule: rule["alert"])
def test_every_alert_is_documented(rule):
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    docs = (REPO / "docs" / "monitoring.md").read_text()
    assert rule["alert"] in docs, f"{rule['alert']} is not explained in docs/monitoring.md"


def test_local_config_scrapes_every_service_on_its_default_port():
    from processors.ingest.settings import IngestSettings
    from processors.materialize.settings import MaterializeSettings
    from processors.notify.settings import NotifySettings
    from processors.stream.settings import ProcessSettings
    from stockstream.api.settings import ApiSettings

    ports = {settings.model_fields["metrics_port"].default
             for settings in (IngestSettings, ProcessSettings, MaterializeSettings, NotifySettings, ApiSettings)}
    assert ApiSettings.model_fields["api_port"].default not in ports  # serve's /metrics is not on the API port
    assert len(ports) == 5, "two services share a default metrics port"
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "stockstream"]
    targets = {target for group in job["static_configs"] for target in group["targets"]}
    assert targets == {f"127.0.0.1:{port}" for port in ports}
    assert config["rule_files"] == ["rules/*.yml"]
