"""``/health`` (liveness) and ``/ready`` (readiness) next to ``/metrics`` on every service's metrics port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from processors.runtime.observability import Health, register_secret, serve_metrics
from tests.support.ports import free_port


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_health_ready_and_metrics_endpoints_follow_the_service_state():
    port, health, registry = free_port(), Health(), CollectorRegistry()
    Counter("stockstream_test_things", "things", registry=registry).inc(3)
    server = serve_metrics("127.0.0.1", port, registry=registry, health=health)
    try:
        assert _get(port, "/health")[0] == 200
        status, body = _get(port, "/ready")
        assert (status, json.loads(body)["status"]) == (503, "starting")

        health.mark_ready()
        assert _get(port, "/ready")[0] == 200

        register_secret("hunter2-secret-value")
        health.problem("redis", "AUTH failed for hunter2-secret-value")
        status, body = _get(port, "/ready")
        assert status == 503 and b"hunter2-secret-value" not in body and b"redis" in body
        assert _get(port, "/health")[0] == 200  # a transient problem is no reason to restart

        health.clear("redis")
        assert _get(port, "/ready")[0] == 200
        health.fail("producer fenced")
        assert _get(port, "/health")[0] == 503

        status, body = _get(port, "/metrics")
        assert status == 200 and b"stockstream_test_things_total 3.0" in body
    finally:
        server.shutdown()
