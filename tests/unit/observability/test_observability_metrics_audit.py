"""Metrics audit: every metric any service defines follows the naming rules.

The modules are found by reading the source tree (any module that imports prometheus_client),
so a new metrics module is audited without touching this test. Module-level metrics register
in the default registry on import; metrics classes that take a ``registry`` argument
(``IngestMetrics``, ``ProcessMetrics``) are instantiated against a registry of their own.
The rules themselves are :func:`processors.runtime.observability.naming_problems`; the running
services' ``/metrics`` pages are audited again in tests/integration/observability.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from processors.runtime.observability import (
    LATENCY_BUCKETS_SECONDS,
    SYMBOL_BOUNDED_METRICS,
    MetricDescription,
    describe_exposition,
    describe_registry,
    naming_problems,
)

REPO = Path(__file__).resolve().parents[3]
PACKAGES = ("processors", "stockstream", "spark_jobs")



def metrics_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "prometheus_client" in path.read_text(errors="replace") and path.name != "observability.py":
                names.append(".".join(path.relative_to(REPO).with_suffix("").parts))
    return names


def all_metrics() -> list[MetricDescription]:
    described = []
    for name in metrics_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and "registry" in inspect.signature(cls).parameters:
                registry = CollectorRegistry()
                cls(registry=registry)
                described.extend(describe_registry(registry))
    described.extend(describe_registry(REGISTRY))
    # The same definition seen twice (a metrics class another test already instantiated on the
    # default registry) counts once; two different definitions under one name stay and fail below.
    return list(dict.fromkeys(metric for metric in described if metric.name.startswith("stockstream_")))


METRICS = all_metrics()


def test_the_audit_sees_every_service():
    assert len(metrics_modules()) >= 6
    areas = {metric.name.split("_")[1] for metric in METRICS}
    assert {"ingest", "process", "materialize", "notify", "api"} <= areas


@pytest.mark.parametrize("metric", METRICS, ids=lambda metric: metric.name)
def test_metric_follows_the_naming_rules(metric):
    assert naming_problems(metric) == []


def test_metric_names_are_unique_across_services():
    """No two services (or modules) define the same name differently."""
    names = [metric.name for metric in METRICS]
    assert len(names) == len(set(names)), sorted({name for name in names if names.count(name) > 1})


def test_symbol_bounded_metrics_exist():
    """The allow-list above must not name metrics that were renamed or removed."""
    assert SYMBOL_BOUNDED_METRICS <= {metric.name for metric in METRICS}


def test_required_signals_are_exported():
    """The metrics the monitoring issue asks for (dashboards and alerts use them)."""
    names = {metric.name for metric in METRICS}
    for required in [
        "stockstream_process_consumer_lag_records",               # lag per partition
        "stockstream_process_state_recovery_remaining_records",   # recovery progress
        "stockstream_ingest_last_tick_age_seconds",               # time since last tick per source
        "stockstream_ingest_symbol_last_tick_age_seconds",        # … and per symbol
        "stockstream_ingest_records_rejected",                    # DLQ by reason
        "stockstream_process_dead_letters",
        "stockstream_materialize_dead_letters",
        "stockstream_notify_deliveries",                          # notifier deliveries/failures
        "stockstream_notify_failures",
        "stockstream_materialize_redis_errors",                   # Redis errors
        "stockstream_api_request_duration_seconds",               # API latency by route and status
    ]:
        assert required in names, required
    api = next(metric for metric in METRICS if metric.name == "stockstream_api_request_duration_seconds")
    assert {"route", "status"} <= set(api.labels)


# --- the rules themselves catch what they should --------------------------------------------

def _described(metric) -> MetricDescription:
    registry = CollectorRegistry()
    registry.register(metric)
    return describe_registry(registry)[0]


def test_rules_accept_a_well_named_metric():
    histogram = Histogram("stockstream_process_latency_seconds", "Tick to output", ["topic"],
                          buckets=LATENCY_BUCKETS_SECONDS, registry=None)
    assert naming_problems(_described(histogram)) == []


@pytest.mark.parametrize(("metric", "problem"), [
    (Counter("ticks_total", "no prefix", registry=None), "stockstream_<area>"),
    (Counter("stockstream_frobnicator_ticks", "unknown area", registry=None), "area"),
    (Gauge("stockstream_ingest_queue_length", "no unit", registry=None), "no unit"),
    (Histogram("stockstream_api_request_duration_seconds", "short buckets", buckets=(0.01, 0.1, 1),
               registry=None), "1 ms … 30 s"),
    (Counter("stockstream_api_requests", "raw path", ["path"], registry=None), "'path'"),
    (Counter("stockstream_process_signals", "unbounded symbols", ["symbol"], registry=None), "'symbol'"),
    (Counter("stockstream_process_ticks", "ids", ["trade_id"], registry=None), "'trade_id'"),
    (Counter("stockstream_notify_deliveries", "", registry=None), "no help text"),
], ids=["prefix", "area", "unit", "buckets", "path-label", "symbol-label", "id-label", "help"])
def test_rules_reject(metric, problem):
    problems = naming_problems(_described(metric))
    assert any(problem in text for text in problems), problems


def test_boolean_gauges_say_so_in_their_help():
    up = Gauge("stockstream_materialize_redis_up", "1 when the last Redis write succeeded", registry=None)
    vague = Gauge("stockstream_materialize_redis_up", "Redis state", registry=None)
    assert naming_problems(_described(up)) == []
    assert naming_problems(_described(vague)) != []


def test_symbol_label_is_accepted_where_bounded():
    gauge = Gauge("stockstream_ingest_symbol_last_tick_age_seconds", "age", ["source", "symbol"], registry=None)
    assert naming_problems(_described(gauge)) == []
    assert naming_problems(_described(gauge), symbol_allowed=False) != []


def test_exposition_parsing_sees_labels_and_buckets():
    registry = CollectorRegistry()
    latency = Histogram("stockstream_api_request_duration_seconds", "latency", ["route", "status"],
                        buckets=(0.5, 1.0), registry=registry)
    latency.labels("/symbols/{symbol}", "200").observe(0.2)
    from prometheus_client import generate_latest

    [described] = describe_exposition(generate_latest(registry).decode())
    assert described.kind == "histogram" and described.labels == ("route", "status")
    assert described.buckets == (0.5, 1.0)
    assert "1 ms … 30 s" in naming_problems(described)[0]
