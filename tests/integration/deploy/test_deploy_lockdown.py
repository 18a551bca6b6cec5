"""The cluster and Compose files lock things down (issue 18, "Writing"): what is checked here.

Kubernetes: no pod mounts a service-account token except Prometheus (its pod discovery reads the
API); the namespace carries Pod Security labels and every container meets the level it enforces.
Compose: every published port binds 127.0.0.1 only. Nowhere is Prometheus started with
``--web.enable-lifecycle`` (which lets anyone who reaches it shut it down or reload it).
"""

from __future__ import annotations

from typing import Any

import pytest

from stockstream.stack.services import Prometheus, StackSettings
from tests.integration.deploy.deploy_support import compose_services, pod_spec, render, workloads

pytestmark = pytest.mark.integration
OVERLAYS = ("dev", "prod")


@pytest.fixture(params=OVERLAYS)
def resources(request: pytest.FixtureRequest) -> tuple[dict[str, Any], ...]:
    return render(str(request.param))


def containers_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_no_service_account_token_except_for_prometheus(resources) -> None:
    for workload in workloads(resources):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        if name == "prometheus":
            assert spec.get("serviceAccountName") == "prometheus"
            continue
        assert spec.get("automountServiceAccountToken") is False, name


def test_the_namespace_enforces_pod_security_and_every_pod_meets_it(resources) -> None:
    [namespace] = [r for r in resources if r["kind"] == "Namespace"]
    labels = namespace["metadata"]["labels"]
    level = labels["pod-security.kubernetes.io/enforce"]
    assert level in ("baseline", "restricted")
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    for workload in workloads(resources):
        spec = pod_spec(workload)
        pod_context = spec.get("securityContext", {})
        for container in containers_of(spec):
            where = f"{workload['metadata']['name']}/{container['name']}"
            context = container.get("securityContext", {})
            # baseline: nothing privileged, no host namespaces or host paths, no added capabilities beyond the default
            assert not context.get("privileged"), where
            assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
            assert not [v for v in spec.get("volumes", []) if "hostPath" in v], where
            if level == "restricted":
                assert context.get("allowPrivilegeEscalation") is False, where
                assert context.get("capabilities", {}).get("drop") == ["ALL"], where
                assert (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")) is True, where
                profile = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
                assert profile.get("type") in ("RuntimeDefault", "Localhost"), where


def test_compose_publishes_on_loopback_only() -> None:
    published = []
    for name, service in compose_services().items():
        for port in service.get("ports", []):
            published.append(name)
            assert port.get("host_ip") == "127.0.0.1", (name, port)
    assert {"serve", "prometheus", "grafana"} <= set(published)


def test_prometheus_lifecycle_api_is_off_everywhere(resources) -> None:
    for workload in workloads(resources):
        for container in containers_of(pod_spec(workload)):
            assert "--web.enable-lifecycle" not in [*container.get("args", []), *container.get("command", [])]
    for name, service in compose_services().items():
        assert "--web.enable-lifecycle" not in (service.get("command") or []), name
    assert "--web.enable-lifecycle" not in Prometheus(StackSettings()).command()
