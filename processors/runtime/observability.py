"""Logging and metrics set-up shared by every long-running service.

Entry points call :func:`setup_logging` once and :func:`start_metrics_server` once.
Secrets are registered with :func:`register_secret` as soon as settings are read; a
logging filter then masks them in every record, whoever logs it (our code,
quixstreams, httpx, librdkafka callbacks), together with the credentials of any
address in it (:func:`processors.runtime.masking.mask_urls`: ``redis://:***@host``,
webhook tokens), registered or not.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer

from prometheus_client import REGISTRY, CollectorRegistry, Info
from prometheus_client.exposition import MetricsHandler
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from processors.runtime import package_version
from processors.runtime.masking import mask_urls

_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "***"


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log line from now on (values shorter than 4 chars are ignored)."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret and the credentials of every address replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return mask_urls(text)


class RedactingFilter(logging.Filter):
    """Renders the message, masks secrets and address credentials in it and in any exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def setup_logging(level: str = "INFO", service: str = "stockstream") -> None:
    """One line per record on stderr, secrets masked; idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_stockstream", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    handler._stockstream = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # py4j (Spark's bridge) logs every connection at INFO, the last from a __del__ at interpreter exit, after
    # stderr is closed: a "--- Logging error ---" traceback at the end of every Spark run.
    logging.getLogger("py4j").setLevel(logging.WARNING)


_build_info: Info | None = None


class Health:
    """What a service's ``/health`` (liveness) and ``/ready`` (readiness) endpoints report.

    ``/health`` answers 200 while the process serves requests and has not declared itself
    broken with :meth:`fail` (then 503: restart me). ``/ready`` answers 200 once the service
    called :meth:`mark_ready` and no transient :meth:`problem` (Kafka or Redis unreachable…)
    is open (then 503: send no work, but do not restart). Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = False
        self._failed: str | None = None
        self._problems: dict[str, str] = {}

    def mark_ready(self) -> None:
        with self._lock:
            self._ready = True

    def fail(self, reason: str) -> None:
        with self._lock:
            self._failed = reason

    def problem(self, name: str, detail: str) -> None:
        with self._lock:
            self._problems[name] = detail

    def clear(self, name: str) -> None:
        with self._lock:
            self._problems.pop(name, None)

    def liveness(self) -> tuple[bool, dict[str, object]]:
        with self._lock:
            return self._failed is None, {"status": "failed" if self._failed else "alive",
                                          "reason": self._failed}

    def readiness(self) -> tuple[bool, dict[str, object]]:
        with self._lock:
            ok = self._ready and self._failed is None and not self._problems
            status = "ready" if ok else ("starting" if not self._ready else "degraded")
            return ok, {"status": status, "problems": dict(self._problems)}


HEALTH = Health()


def serve_metrics(host: str, port: int, registry: CollectorRegistry = REGISTRY,
                  health: Health = HEALTH) -> ThreadingHTTPServer:
    """Serve ``/metrics`` from ``registry`` plus ``/health`` and ``/ready`` from ``health``, in a daemon thread."""
    metrics_handler = MetricsHandler.factory(registry)

    class Handler(metrics_handler):  # type: ignore[misc,valid-type]
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path in ("/health", "/ready"):
                ok, detail = health.liveness() if path == "/health" else health.readiness()
                body = json.dumps(redact_value(detail)).encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence access logs
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


def redact_value(value: object) -> object:
    """``value`` (JSON-like) with registered secrets masked in every string."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


def start_metrics_server(host: str, port: int, service: str) -> None:
    """Expose ``/metrics`` (default registry, with process metrics), ``/health`` and ``/ready`` on ``host:port``.

    Port 0 means no endpoint (library use and tests that only read counters); build info is
    registered either way.
    """
    global _build_info
    if _build_info is None:
        _build_info = Info("stockstream_build", "Build information of this stockstream process", registry=REGISTRY)
        _build_info.info({"version": package_version(), "service": service,
                          "python": sys.version.split()[0]})
    if port:
        serve_metrics(host, port)


# --- Metric naming rules -------------------------------------------------------------------
# The conventions every stockstream metric follows (docs/monitoring.md explains them). They are
# checked by tests/unit/observability (every metric definition) and tests/integration/observability
# (every family a running service exposes).

#: Buckets for latency histograms: 1 ms … 30 s, as the monitoring issue asks.
LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

#: Units a gauge or histogram name must contain (plural, base units).
#: ``price`` is in the symbol's quote currency (USD for BTC-USD); ``value`` is an indicator in its own
#: scale (RSI 0-100, moving averages and MACD in the quote currency).
METRIC_UNITS = frozenset({"seconds", "bytes", "records", "messages", "requests", "partitions", "clients",
                          "ratio", "symbols", "price", "value"})
#: Service areas: the word after ``stockstream_``.
#: ``kafka`` is the client side of every service's Kafka connection (processors/runtime/kafka_health.py).
METRIC_AREAS = frozenset({"build", "ingest", "process", "composite", "materialize", "notify", "api", "views", "kafka"})
#: Label names whose values are bounded by code or configuration (reason codes, channels, topics
#: of the deployment, route templates, …). A new label name must be added here deliberately.
BOUNDED_LABELS = frozenset({
    "source", "reason", "kind", "code", "topic", "topic_kind", "partition", "outcome", "channel", "rule",
    "side", "timeframe", "route", "method", "status", "type", "service", "version", "python", "indicator",
    "view", "client",
    # One per ingest service of the deployment (coinbase, kraken …, index): only beside ``symbol``
    # on the per-instrument metrics, which PROCESS_METRICS_MAX_SYMBOLS bounds.
    "venue",
})
#: ``symbol`` is a label only where configuration bounds the symbols: ingest tracks the symbols its
#: source is configured with (INGEST_SYMBOLS or the source's defaults); the processor exports
#: per-symbol values for at most PROCESS_METRICS_MAX_SYMBOLS symbols.
SYMBOL_LABEL = "symbol"
SYMBOL_BOUNDED_METRICS = frozenset({
    "stockstream_ingest_symbol_last_tick_age_seconds",
    "stockstream_ingest_sequence_gaps",
    "stockstream_ingest_sequence_missing",
    "stockstream_process_symbol_last_price",
    "stockstream_process_symbol_indicator_value",
    "stockstream_process_symbol_signals",
    "stockstream_composite_ticks",  # COMPOSITE_SYMBOLS bounds it
})
#: Families of prometheus-client's default collectors (process, platform, GC): not ours to rename.
STANDARD_PREFIXES = ("process_", "python_")


@dataclass(frozen=True)
class MetricDescription:
    """What the naming rules look at: the family name (counters without ``_total``), type, labels."""

    name: str
    kind: str
    documentation: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


def describe_registry(registry: CollectorRegistry) -> list[MetricDescription]:
    """Every metric registered in ``registry``, including labelled ones that have no child yet."""
    described: list[MetricDescription] = []
    collectors = list(getattr(registry, "_collector_to_names", {}))
    for collector in collectors:
        if isinstance(collector, MetricWrapperBase):
            bounds = tuple(getattr(collector, "_upper_bounds", ()))
            described.append(MetricDescription(
                collector._name, collector._type, collector._documentation, tuple(collector._labelnames),
                tuple(bound for bound in bounds if bound != float("inf"))))
        else:
            described.extend(_describe_families(collector.collect()))
    return described


def describe_exposition(text: str) -> list[MetricDescription]:
    """Every family in a ``/metrics`` page (labels as far as its samples show them)."""
    return _describe_families(text_string_to_metric_families(text))


def _describe_families(families: Iterable[Metric]) -> list[MetricDescription]:
    described = []
    for family in families:
        if family.type == "gauge" and family.name.endswith("_created"):
            continue  # creation timestamps of counters/histograms in the text format, not a metric of ours
        # Families built by custom collectors know their label names even before any sample.
        labels: dict[str, None] = dict.fromkeys(getattr(family, "_labelnames", ()))
        buckets: set[float] = set()
        for sample in family.samples:
            labels.update(dict.fromkeys(name for name in sample.labels if name != "le"))
            if sample.name.endswith("_bucket") and "le" in sample.labels and sample.labels["le"] != "+Inf":
                buckets.add(float(sample.labels["le"]))
        described.append(MetricDescription(family.name, family.type, family.documentation, tuple(labels),
                                           tuple(sorted(buckets))))
    return described


def naming_problems(metric: MetricDescription, symbol_allowed: bool | None = None) -> list[str]:
    """What is wrong with ``metric``'s name, labels and buckets (empty when it follows the rules).

    ``symbol_allowed`` says whether configuration bounds this metric's symbols; by default, whether
    it is one of :data:`SYMBOL_BOUNDED_METRICS`.
    """
    name = metric.name
    if symbol_allowed is None:
        symbol_allowed = name in SYMBOL_BOUNDED_METRICS
    if name.startswith(STANDARD_PREFIXES):
        return []
    problems = []
    words = name.split("_")
    if not re.fullmatch(r"stockstream_[a-z][a-z0-9_]*[a-z0-9]", name) or "__" in name:
        problems.append("name must be stockstream_<area>_<what>_<unit> in snake case")
    elif words[1] not in METRIC_AREAS:
        problems.append(f"area {words[1]!r} is not one of {sorted(METRIC_AREAS)}")
    if metric.kind == "counter" and name.endswith("_total"):
        problems.append("counter family name already ends in _total (it would be exposed as _total_total)")
    if metric.kind in {"gauge", "histogram", "summary"} and not METRIC_UNITS.intersection(words):
        boolean = metric.kind == "gauge" and metric.documentation.startswith(("1 when", "1 while"))
        info = metric.kind == "gauge" and words[-1] == "info"  # an Info metric in the text format
        if not (boolean or info):
            problems.append(f"no unit in the name (one of {sorted(METRIC_UNITS)}); a 0/1 gauge's help"
                            " starts with '1 when' or '1 while'")
    if metric.kind == "histogram" and "seconds" in words:
        if not metric.buckets or min(metric.buckets) > 0.001 or max(metric.buckets) < 30:
            problems.append(f"latency buckets must span 1 ms … 30 s, got {metric.buckets}")
    for label in metric.labels:
        if label == SYMBOL_LABEL:
            if not symbol_allowed:
                problems.append("label 'symbol' only where the symbols are bounded by configuration")
        elif label not in BOUNDED_LABELS:
            problems.append(f"label {label!r} is not a known bounded label (ids, paths, offsets, free text"
                            " must never be labels)")
    if not metric.documentation.strip():
        problems.append("no help text")
    return problems
