"""Static checks of the Grafana provisioning and dashboards (no Grafana needed).

Every panel query is valid PromQL (checked by promtool, as a recording rule), uses only
defined variables and names only metrics that some service defines or a recording rule
produces. Whether each query returns data from a running pipeline is tested in
tests/integration/observability/test_observability_pipeline.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from processors.runtime.observability import describe_registry
from tests.unit.observability.grafana_support import (
    BUILTINS,
    PROVISIONING_DIR,
    REPO,
    dashboards,
    label_values,
    panel_queries,
    panels,
    query_variables,
    substitute,
    variable_query,
    variables_used,
)
from tests.unit.observability.test_observability_metrics_audit import METRICS

DASHBOARDS = dashboards()
QUERIES = panel_queries()
RULE_FILES = sorted((REPO / "ops" / "prometheus" / "rules").glob("*.yml"))


def test_there_are_the_three_dashboards():
    uids = {board["uid"] for board in DASHBOARDS.values()}
    assert uids == {"stockstream-overview", "stockstream-symbol", "stockstream-notifier"}


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_structure(name):
    board = DASHBOARDS[name]
    assert board["title"] and board["tags"] == ["stockstream"] and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]] + [
        nested["id"] for panel in board["panels"] for nested in panel.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {var["name"] for var in board["templating"]["list"]}
    assert "datasource" in variables
    for panel in panels(board):
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        assert panel.get("description"), f"panel {panel['title']!r} has no description"
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            unknown = variables_used(target["expr"]) - variables - set(BUILTINS)
            assert not unknown, f"{panel['title']}: undefined variables {unknown}"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_variables_are_label_values_of_known_metrics(name):
    known = _known_series()
    for variable in query_variables(DASHBOARDS[name]):
        selector, _label = label_values(variable_query(variable))
        assert selector, variable["name"]
        by_name = re.search(r'__name__=~"([^"]+)"', selector)
        if by_name:
            assert any(re.fullmatch(by_name.group(1), name) for name in known), variable["name"]
        else:
            assert set(_metric_names(selector)) <= known, variable["name"]


def _metric_names(expr: str) -> list[str]:
    return re.findall(r"\b((?:stockstream|process|python|up)\w*|\w+:\w+:\w+)\b(?=\s*[{\[)]|\s|$)", expr)


def _known_series() -> set[str]:
    names: set[str] = {"up"}
    for metric in METRICS:
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "info": ["_info"]}
        names.update(metric.name + suffix for suffix in suffixes.get(metric.kind, [""]))
    from prometheus_client import REGISTRY

    for metric in describe_registry(REGISTRY):  # process_* and python_* of the default collectors
        if metric.name.startswith(("process_", "python_")):
            names.add(metric.name + ("_total" if metric.kind == "counter" else ""))
    names.add("stockstream_build_info")
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return names


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query.name)
def test_panel_names_only_existing_metrics(query):
    expr = re.sub(r'"[^"]*"', '""', query.expr)  # label values are not metric names
    unknown = set(_metric_names(expr)) - _known_series()
    assert not unknown, f"{query.name}: no service defines {sorted(unknown)}"


def test_every_panel_query_is_valid_promql(tmp_path):
    """promtool parses each query (variables substituted) as a recording rule."""
    binary = shutil.which("promtool")
    assert binary, "promtool not found: install the Debian package 'prometheus'"
    values = {"symbol": "BTC-USD", "venue": "coinbase", "timeframe": "tick", "channel": "console"}
    rules = [{"record": f"panel:query_{index}:check", "expr": substitute(query.expr, values)}
             for index, query in enumerate(QUERIES)]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run([binary, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_datasource_provisioning_matches_the_dashboards():
    config = yaml.safe_load((PROVISIONING_DIR / "datasources" / "prometheus.yaml").read_text())
    [source] = config["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus" and source["isDefault"]
    for board in DASHBOARDS.values():
        [variable] = [var for var in board["templating"]["list"] if var["name"] == "datasource"]
        assert variable["type"] == "datasource" and variable["query"] == "prometheus"
        assert variable["current"]["value"] == source["uid"]


def test_dashboard_provisioning_loads_the_dashboard_folder():
    config = yaml.safe_load((PROVISIONING_DIR / "dashboards" / "stockstream.yaml").read_text())
    [provider] = config["providers"]
    assert provider["type"] == "file" and provider["folder"] == "stockstream"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
