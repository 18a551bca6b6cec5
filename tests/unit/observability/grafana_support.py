"""Reading the Grafana dashboards of ops/grafana/dashboards: panel queries and template variables.

Shared by the static dashboard tests (tests/unit/observability) and the test that runs every
panel query against a real Prometheus scraping a running pipeline (tests/integration/observability).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
DASHBOARD_DIR = REPO / "ops" / "grafana" / "dashboards"
PROVISIONING_DIR = REPO / "ops" / "grafana" / "provisioning"

#: Grafana's built-in variables, as Grafana would fill them for a 10-minute view of 5 s scrapes.
BUILTINS = {"__rate_interval": "20s", "__range": "10m", "__interval": "5s"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # uid
    panel_id: int
    title: str
    ref_id: str
    expr: str

    @property
    def name(self) -> str:
        return f"{self.dashboard}/{self.panel_id}{self.ref_id}:{self.title}"


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    found = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def panel_queries() -> list[PanelQuery]:
    return [PanelQuery(board["uid"], panel["id"], panel["title"], target["refId"], target["expr"])
            for board in dashboards().values() for panel in panels(board) for target in panel.get("targets", [])]


def query_variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [var for var in dashboard.get("templating", {}).get("list", []) if var.get("type") == "query"]


def variable_query(variable: dict[str, Any]) -> str:
    query = variable.get("query")
    return query["query"] if isinstance(query, dict) else str(query or variable.get("definition", ""))


def label_values(definition: str) -> tuple[str | None, str]:
    """``label_values(selector, label)`` → (selector, label); the only variable query kind we use."""
    match = LABEL_VALUES.match(definition.strip())
    assert match, f"unsupported variable query {definition!r} (use label_values(selector, label))"
    return match.group("selector"), match.group("label")


def variables_used(expr: str) -> set[str]:
    return {next(group for group in match.groups() if group) for match in VARIABLE.finditer(expr)}


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace ``$name``, ``${name}`` and ``[[name]]`` by their values (built-ins included)."""
    merged = {**BUILTINS, **values}

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        assert name in merged, f"no value for ${name} in {expr!r}"
        return merged[name]

    return VARIABLE.sub(replace, expr)
