"""The network of the Kubernetes deployment (issue 18): default deny, and one rule per flow.

The flows are derived from the rendered NetworkPolicies the way a CNI enforces them: a connection
from pod A to pod B on port P is allowed when a policy selecting A allows it out (egress) *and* a
policy selecting B allows it in (ingress). Every workload must be selected by the default-deny
policy, the derived flows must be exactly the system's flows (``FLOWS``), and each flow must be
allowed by exactly one rule on each side, so a rule that grows (a missing port list, a broader
selector) or a flow nobody meant fails here.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.integration.deploy.deploy_support import OVERLAYS, pod_metadata, render, workloads

pytestmark = pytest.mark.integration

ANY = "any"  # every port (Spark's drivers and executors listen on random ones)
INTERNET = "internet"  # outside the cluster, public addresses only
DNS = "kube-dns"
INGRESS = "ingress-controller"
API = "kubernetes-api"  # not a pod: any destination on its ports

# (from, to, port): every connection the system makes. Workloads are named by their main label
# values (component for ours and Spark's, the name for the others).
FLOWS: set[tuple[str, str, int | str]] = {
    ("kafka", "kafka", 9093), ("kafka", "kafka", 9094),
    *((client, "kafka", 9092) for client in ("ingest", "process", "composite", "materialize", "notify", "serve",
                                              "backfill", "spark-worker")),
    ("kafka-access", "kafka", 9094),
    ("materialize", "redis", 6379), ("serve", "redis", 6379), ("notify", "redis", 6379),
    ("ingest", INTERNET, 443), ("ingest", INTERNET, 9443),  # Binance's stream is on 9443
    ("notify", INTERNET, 443),
    (INGRESS, "serve", 8000),
    ("backfill", "spark-master", 7077), ("spark-worker", "spark-master", 7077), ("spark-master", "spark-worker", 7078),
    ("backfill", "spark-worker", ANY), ("spark-worker", "backfill", ANY), ("spark-worker", "spark-worker", ANY),
    *(("prometheus", service, port) for service, port in (
        ("ingest", 9101), ("process", 9102), ("materialize", 9103), ("notify", 9104), ("serve", 9105),
        ("composite", 9106), ("kafka", 9404), ("redis", 9121), ("alertmanager", 9093))),
    ("prometheus", API, 443), ("prometheus", API, 6443),
    ("grafana", "prometheus", 9090),
    ("alertmanager", INTERNET, 443), ("alertmanager", INTERNET, 587),
}


@pytest.fixture(params=OVERLAYS)
def resources(request: pytest.FixtureRequest) -> tuple[dict[str, Any], ...]:
    return render(str(request.param))


def policies(resources: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] == "NetworkPolicy"]


def pods(resources: tuple[dict[str, Any], ...]) -> dict[str, dict[str, str]]:
    """Workload name as used in FLOWS -> its pod labels (one entry for all ingest sources)."""
    result = {}
    for workload in workloads(resources):
        labels = pod_metadata(workload)["labels"]
        name = labels["app.kubernetes.io/name"]
        component = labels.get("app.kubernetes.io/component")
        key = component if name == "stockstream" else f"spark-{component}" if name == "spark" else name
        result[key] = labels
    return result


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors here: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def peer_matches(peer: dict[str, Any], end: str, labels: dict[str, str] | None) -> bool:
    """Whether a from/to entry names ``end`` (a pod of this namespace with ``labels``, or an outside end)."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        # Public addresses only: the cluster's own ranges, metadata and loopback are excluded.
        assert block["cidr"] == "0.0.0.0/0" and {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                  "169.254.0.0/16"} <= set(block["except"]), block
        return end == INTERNET
    if "namespaceSelector" in peer:
        namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        pod = peer.get("podSelector", {}).get("matchLabels", {})
        if namespace == "kube-system":
            return end == DNS and pod == {"k8s-app": "kube-dns"}
        return end == INGRESS and namespace == "ingress-nginx" and not pod
    return labels is not None and selects(peer["podSelector"], labels)


def port_matches(rule: dict[str, Any], port: int | str, protocol: str = "TCP") -> bool:
    if "ports" not in rule:
        return True
    if port == ANY:
        return False
    for item in rule["ports"]:
        low, high = item["port"], item.get("endPort", item["port"])
        if item.get("protocol", "TCP") == protocol and isinstance(low, int) and low <= int(port) <= high:
            return True
    return False


def rules_allowing(resources, side: str, subject: str, other: str, port: int | str) -> list[str]:
    """The rules (policy/index) on ``subject``'s side that let ``other`` through on ``port``."""
    labels = pods(resources)
    found = []
    for policy in policies(resources):
        spec = policy["spec"]
        if subject not in labels or not selects(spec["podSelector"], labels[subject]):
            continue
        for index, rule in enumerate(spec.get(side, [])):
            peers = rule.get("from" if side == "ingress" else "to")
            if other == API:
                hit = peers is None
            else:
                hit = peers is not None and any(peer_matches(p, other, labels.get(other)) for p in peers)
            if hit and port_matches(rule, port):
                found.append(f"{policy['metadata']['name']}/{side}[{index}]")
    return found


def test_every_pod_is_denied_by_default_in_and_out(resources) -> None:
    [deny] = [p for p in policies(resources) if p["metadata"]["name"] == "default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for workload in workloads(resources):
        labels = pod_metadata(workload)["labels"]
        assert selects(deny["spec"]["podSelector"], labels), workload["metadata"]["name"]
        # …and every workload has a policy of its own (nothing is left to chance by the deny alone).
        own = [p for p in policies(resources) if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels)]
        assert own, f"{workload['metadata']['name']}: no policy names it"


def test_every_pod_may_ask_the_cluster_dns_and_nothing_else_is_open_to_all(resources) -> None:
    broad = [p for p in policies(resources) if not p["spec"]["podSelector"]]
    assert {p["metadata"]["name"] for p in broad} == {"default-deny", "dns"}
    [dns] = [p for p in broad if p["metadata"]["name"] == "dns"]
    assert "ingress" not in dns["spec"]
    [rule] = dns["spec"]["egress"]
    assert all(peer_matches(peer, DNS, None) for peer in rule["to"])
    assert {(p["port"], p["protocol"]) for p in rule["ports"]} == {(53, "UDP"), (53, "TCP")}


def test_each_flow_has_exactly_its_allow_rule_on_each_side(resources) -> None:
    present = set(pods(resources))
    outside = {INTERNET, INGRESS, API}
    for source, target, port in FLOWS:
        if (source not in present and source not in outside) or (target not in present and target not in outside):
            continue  # a component this overlay does not deploy (composite: prod only)
        if source in present:
            out = rules_allowing(resources, "egress", source, target, port)
            assert len(out) == 1, f"{source} -> {target}:{port}: egress rules {out}"
        if target in present:
            into = rules_allowing(resources, "ingress", target, source, port)
            assert len(into) == 1, f"{source} -> {target}:{port}: ingress rules {into}"


def unexpected_flows(resources) -> list[tuple[str, str, int | str]]:
    """Every pair of ends on every port a rule names (and any port) that is allowed but not a flow."""
    present = set(pods(resources))
    ends = [*present, INTERNET, INGRESS, API]
    named_ports: set[int | str] = {ANY, 53}
    for policy in policies(resources):
        for side in ("ingress", "egress"):
            for rule in policy["spec"].get(side, []):
                named_ports |= {item["port"] for item in rule.get("ports", [])}
                named_ports |= {item["endPort"] for item in rule.get("ports", []) if "endPort" in item}
    found = []
    for source in ends:
        for target in ends:
            if source not in present and target not in present:
                continue
            for port in named_ports:
                out = source not in present or rules_allowing(resources, "egress", source, target, port)
                into = target not in present or rules_allowing(resources, "ingress", target, source, port)
                listed = (source, target, port) in FLOWS or (source, target, ANY) in FLOWS
                if out and into and not listed:
                    found.append((source, target, port))
    return found


def test_no_flow_is_allowed_beyond_the_list(resources) -> None:
    assert unexpected_flows(resources) == []


def test_a_rule_that_grows_is_caught(resources) -> None:
    """Negative control: the process policy's Kafka rule without its port list opens every port."""
    broken = copy.deepcopy(resources)
    [process] = [p for p in policies(broken) if p["metadata"]["name"] == "process"]
    del process["spec"]["egress"][0]["ports"]
    [kafka] = [p for p in policies(broken) if p["metadata"]["name"] == "kafka"]
    kafka["spec"]["ingress"].append({"from": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "stockstream", "app.kubernetes.io/component": "process"}}}],
        "ports": [{"port": 9094, "protocol": "TCP"}]})
    assert ("process", "kafka", 9094) in unexpected_flows(broken)


def test_the_rules_reach_the_pods_on_ports_they_listen_on(resources) -> None:
    """An ingress rule's port is a container port of the pods it selects (a typo would block a flow)."""
    listening: dict[str, set[int]] = {}
    for workload in workloads(resources):
        labels = pod_metadata(workload)["labels"]
        spec = workload["spec"].get("template", {}).get("spec") or \
            workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        ports = {p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}
        for key, value in pods(resources).items():
            if value == labels:
                listening.setdefault(key, set()).update(ports)
    for source, target, port in FLOWS:
        if target in listening and port != ANY:
            assert port in listening[target], f"{target} does not listen on {port} (flow from {source})"


def test_the_venues_ingest_dials_by_default_are_allowed(resources) -> None:
    """Every default venue URL of IngestSettings (host port, or the scheme's) is an allowed ingest flow."""
    from urllib.parse import urlsplit

    from processors.ingest.settings import IngestSettings

    for name, field in IngestSettings.model_fields.items():
        if not isinstance(field.default, str) or "://" not in field.default:
            continue
        url = urlsplit(field.default)
        port = url.port or {"https": 443, "wss": 443}[url.scheme]
        assert ("ingest", INTERNET, port) in FLOWS, f"{name}: {field.default}"
        assert len(rules_allowing(resources, "egress", "ingest", INTERNET, port)) == 1, name
