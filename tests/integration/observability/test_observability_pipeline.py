"""The whole pipeline, scraped by a Prometheus of this test's own: metrics, rules and every dashboard panel.

One module-scoped run: ``ingest`` (simulator, fast), ``process``, ``materialize``, ``notify``
(console + two webhooks on a local HTTP receiver: one refuses every request, one fails once
then accepts) and ``serve`` run as subprocesses on free ports in a fresh topic/key namespace
of the shared broker and Redis. A private Prometheus (own port, own data folder, the shipped
ops/prometheus/prometheus.yml with the test's targets and a 1 s scrape interval, the shipped
rules) scrapes them. A poison record on the ticks topic makes a dead letter. Then:

* each service's ``/metrics`` follows the naming rules and carries build info and process metrics;
* Prometheus scrapes all five targets and evaluates every rule without error;
* every query of every panel of every dashboard, with its variables set to real values read
  from Prometheus the way Grafana would, is valid and returns data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import AdminClient

from processors.runtime.observability import describe_exposition, naming_problems
from tests.support.fake_receivers.http import HttpReceiver, status
from tests.support.kafka_tools import delete_topics, produce, wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess
from tests.unit.observability.grafana_support import (
    REPO,
    PanelQuery,
    dashboards,
    label_values,
    panel_queries,
    query_variables,
    substitute,
    variable_query,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SERVICES = ("ingest", "process", "materialize", "notify", "serve")
QUERIES = panel_queries()
READY_TIMEOUT_S = 180.0


def http_get(url: str, timeout_s: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 - local test servers
        return answer.read().decode()


@dataclass
class Pipeline:
    namespace: str
    ports: dict[str, int]
    prometheus_url: str
    services: dict[str, ServiceProcess]
    receiver: HttpReceiver
    logs: dict[str, Path] = field(default_factory=dict)

    def metrics_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}/metrics"

    def query(self, expr: str) -> dict[str, Any]:
        """Prometheus' answer to an instant query (status, data or error)."""
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            return json.loads(http_get(url, timeout_s=10))
        except urllib.error.HTTPError as error:  # 400/422 carry the PromQL error as JSON
            return json.loads(error.read().decode())

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.prometheus_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return json.loads(http_get(url, timeout_s=10))["data"]

    def diagnostics(self) -> str:
        """The tail of every service's output and of Prometheus' log, for failure messages."""
        tails = [f"--- {name} (alive={service.alive()})\n{service.output[-3000:]}"
                 for name, service in self.services.items()]
        tails += [f"--- {name}\n{path.read_text(errors='replace')[-2000:]}" for name, path in self.logs.items()]
        return "\n".join(tails)


def prometheus_config(ports: dict[str, int], prometheus_port: int, stack_settings: Any) -> dict[str, Any]:
    """The shipped config with this test's targets, a 1 s scrape interval and absolute rule paths.

    Kafka's JMX exporter and the Redis exporter are the stack's own (``stockstream stack up`` starts
    them): the Kafka and Redis panels and rules are checked against the real exporters.
    """
    config = yaml.safe_load((REPO / "ops" / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"}
    config["rule_files"] = [str(REPO / "ops" / "prometheus" / pattern) for pattern in config["rule_files"]]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", "stockstream", "kafka", "redis"}
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{prometheus_port}"]}]
    jobs["stockstream"]["static_configs"] = [
        {"targets": [f"127.0.0.1:{ports[service]}" for service in SERVICES]}]
    jobs["kafka"]["static_configs"] = [{"targets": [f"{stack_settings.host}:{stack_settings.kafka_jmx_port}"]}]
    jobs["redis"]["static_configs"] = [
        {"targets": [f"{stack_settings.host}:{stack_settings.redis_exporter_port}"]}]
    return config


SUBSCRIPTIONS = """
[channels.console]
type = "console"
[channels.broken]
type = "webhook"
allow_private_network = true
url = "{broken}"
[channels.flaky]
type = "webhook"
allow_private_network = true
url = "{flaky}"

[[subscriptions]]
channel = "console"
cooldown = 0
[[subscriptions]]
channel = "broken"
cooldown = 0
[[subscriptions]]
channel = "flaky"
cooldown = 0
"""


@pytest.fixture(scope="module")
def pipeline(stack, tmp_path_factory) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("observability")
    namespace = f"t{uuid.uuid4().hex[:10]}."
    ports = {service: free_port() for service in SERVICES}
    prometheus_port = free_port()
    api_port = free_port()
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "STOCKSTREAM_TOPIC_PREFIX": namespace,
        "REDIS_URL": stack.redis_url, "REDIS_KEY_PREFIX": namespace, "LOG_LEVEL": "INFO",
        "METRICS_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1",
    }
    receiver = HttpReceiver().__enter__()
    receiver.default("/broken", status(400, {"error": "invalid payload"}))
    receiver.script("/flaky", [status(503, "try again")])
    subscriptions = tmp / "subscriptions.toml"
    subscriptions.write_text(SUBSCRIPTIONS.format(broken=receiver.url("/broken"), flaky=receiver.url("/flaky")))
    specs = {
        "ingest": (["ingest", "--source", "simulator"],
                   {"INGEST_SIM_RATE": "40", "INGEST_SIM_SEED": "7"}),
        "process": (["process"], {"PROCESS_STATE_DIR": str(tmp / "process"), "PROCESS_STATS_INTERVAL_MS": "1000"}),
        "materialize": (["materialize"], {}),
        "notify": (["notify"], {"NOTIFY_SUBSCRIPTIONS": str(subscriptions), "NOTIFY_STATE_DIR": str(tmp / "notify"),
                                "NOTIFY_CONSUMER_GROUP": f"{namespace}notify", "NOTIFY_BACKOFF_INITIAL_S": "0.05",
                                "NOTIFY_BACKOFF_MAX_S": "0.2"}),
        # serve's /metrics is on its METRICS_PORT (ports["serve"]) like every service; the API on a port of its own
        "serve": (["serve", "--port", str(api_port)], {"API_PORT": str(api_port)}),
    }
    services: dict[str, ServiceProcess] = {}
    prometheus: subprocess.Popen[bytes] | None = None
    stop_reader = threading.Event()
    try:
        for name, (args, env) in specs.items():
            services[name] = ServiceProcess(args, {**common, "METRICS_PORT": str(ports[name]), **env})
        config_path = tmp / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(prometheus_config(ports, prometheus_port, stack.stack.settings)))
        binary = shutil.which("prometheus")
        assert binary, "prometheus not found: install the Debian package 'prometheus'"
        prometheus_log = (tmp / "prometheus.log").open("wb")
        prometheus = subprocess.Popen(  # noqa: S603
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}", "--storage.tsdb.retention.time=1h"],
            stdout=prometheus_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        run = Pipeline(namespace, ports, f"http://127.0.0.1:{prometheus_port}", services, receiver,
                       {"prometheus": tmp / "prometheus.log"})

        def prometheus_ready() -> bool:
            try:
                return http_get(f"{run.prometheus_url}/-/ready", 1).startswith("Prometheus")
            except OSError:
                return False

        wait_until(prometheus_ready, timeout_s=120, message="the test's Prometheus to be ready")
        wait_until(lambda: all(_answers(run.metrics_url(name)) for name in SERVICES), timeout_s=120,
                   message="every service's /metrics")
        # A reader of the API (as the dashboard would be), so its request metrics have data: /metrics is on
        # serve's metrics port now, so Prometheus' own scrapes no longer count as API requests.
        reader = threading.Thread(target=_read_api, args=(f"http://127.0.0.1:{api_port}", stop_reader), daemon=True)
        reader.start()
        wait_until(lambda: "stockstream_api_request_duration_seconds_count{" in http_get(run.metrics_url("serve")),
                   timeout_s=60, message="the API's first requests")
        # A poison record on the ticks topic: the processor dead-letters it (reason code, not a crash).
        # Produced once ingest has created the topic (a produce before would auto-create it wrongly).
        admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
        wait_until(lambda: f"{namespace}ticks" in admin.list_topics(timeout=5).topics, timeout_s=60,
                   message="the ticks topic")
        produce(stack.kafka_bootstrap, f"{namespace}ticks", [("BTC-USD", b"{not json")])
        yield run
    finally:
        stop_reader.set()
        for service in services.values():
            service.terminate(30)
        if prometheus is not None:
            os.killpg(prometheus.pid, 15)
            prometheus.wait(30)
        receiver.__exit__(None, None, None)
        delete_topics(stack.kafka_bootstrap, namespace)


def _read_api(base: str, stop: threading.Event) -> None:
    """GET a few API routes about once a second until ``stop``."""
    while not stop.is_set():
        for path in ("/symbols", "/symbols/BTC-USD/latest", "/health"):
            try:
                http_get(base + path, 2)
            except OSError:
                pass  # 404 before the first tick, or serve still starting: a reader just retries
        stop.wait(1.0)  # pacing the reader, not waiting for a condition


def _answers(url: str) -> bool:
    try:
        http_get(url, 2)
        return True
    except OSError:
        return False


# --- every service's /metrics ------------------------------------------------------------------

@pytest.mark.parametrize("service", SERVICES)
def test_service_exposes_conforming_metrics_with_build_and_process_info(pipeline, service):
    families = describe_exposition(http_get(pipeline.metrics_url(service)))
    names = {family.name for family in families}
    assert "process_cpu_seconds" in names and "process_resident_memory_bytes" in names
    assert "process_start_time_seconds" in names
    text = http_get(pipeline.metrics_url(service))
    build = [line for line in text.splitlines() if line.startswith("stockstream_build_info{")]
    assert len(build) == 1 and f'service="{service}"' in build[0] and 'version="' in build[0]
    ours = [family for family in families if family.name.startswith("stockstream_")]
    assert any(family.name.startswith(f"stockstream_{service if service != 'serve' else 'api'}_") for family in ours)
    problems = {family.name: naming_problems(family) for family in ours}
    assert {name: found for name, found in problems.items() if found} == {}


# --- Prometheus: targets and rules -------------------------------------------------------------

def test_prometheus_scrapes_every_service(pipeline):
    def all_up() -> bool:
        result = pipeline.query('up{job="stockstream"} == 1')["data"]["result"]
        return len(result) == len(SERVICES)

    wait_until(all_up, timeout_s=120, message="all five targets up")
    services = {sample["metric"]["service"]
                for sample in pipeline.query("stockstream_build_info")["data"]["result"]}
    assert services == set(SERVICES)


def test_prometheus_scrapes_the_kafka_and_redis_exporters(pipeline):
    """The broker's JMX exporter agent and the Redis exporter of the stack, with the series the
    infrastructure rules and the Kafka/Redis panels read."""
    def up(job: str) -> bool:
        return bool(pipeline.query(f'up{{job="{job}"}} == 1')["data"]["result"])

    wait_until(lambda: up("kafka") and up("redis"), timeout_s=120, message="the kafka and redis targets up")
    for series in ("kafka_server_replicamanager_underreplicatedpartitions",
                   "kafka_server_replicamanager_underminisrpartitioncount",
                   "kafka_server_replicamanager_isrshrinks_total",
                   "kafka_controller_kafkacontroller_offlinepartitionscount",
                   "kafka_server_kafkaserver_brokerstate", "redis_up", "redis_memory_used_bytes",
                   "redis_memory_max_bytes"):
        result = pipeline.query(series)["data"]["result"]
        assert result, f"no {series} scraped"
    assert float(pipeline.query("sum(kafka_server_replicamanager_underreplicatedpartitions)")
                 ["data"]["result"][0]["value"][1]) == 0
    assert pipeline.query("redis_up")["data"]["result"][0]["value"][1] == "1"


def test_every_rule_evaluates_without_error_and_nothing_fires(pipeline, panel_results):
    groups = pipeline.api("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 12
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []
    firing = [alert["labels"] for alert in pipeline.api("/api/v1/alerts")["alerts"] if alert["state"] == "firing"]
    assert firing == []


# --- the dashboards ----------------------------------------------------------------------------

def resolve_variables(pipeline: Pipeline) -> dict[str, dict[str, str]]:
    """Each dashboard's variable values, read from Prometheus as Grafana would (label_values)."""
    values: dict[str, dict[str, str]] = {}
    for board in dashboards().values():
        chosen: dict[str, str] = {}
        for variable in query_variables(board):
            selector, label = label_values(substitute(variable_query(variable), chosen))
            found = sorted(pipeline.api(f"/api/v1/label/{label}/values", **{"match[]": selector or "up"}))
            if not found:
                return {}
            # Like Grafana: "All" of a multi-value variable is the alternation of its values; a single
            # value keeps the dashboard's current selection while it is offered, else the first value.
            current = (variable.get("current") or {}).get("value")
            if variable.get("multi"):
                chosen[variable["name"]] = "|".join(found)
            else:
                chosen[variable["name"]] = current if current in found else found[0]
        values[board["uid"]] = chosen
    return values


@dataclass
class PanelResults:
    variables: dict[str, dict[str, str]]
    answers: dict[str, dict[str, Any]]
    seconds: float


@pytest.fixture(scope="module")
def panel_results(pipeline) -> PanelResults:
    """Every panel query's answer, once all return data (or the deadline passes: the tests then say which not)."""
    started = time.monotonic()
    deadline = started + READY_TIMEOUT_S
    variables: dict[str, dict[str, str]] = {}
    answers: dict[str, dict[str, Any]] = {}
    while True:
        variables = resolve_variables(pipeline) or variables
        answers = {}
        for query in QUERIES:
            if query.dashboard in variables:
                answers[query.name] = pipeline.query(substitute(query.expr, variables[query.dashboard]))
        # Every panel answers, and the notifier's channel variable already offers the three channels
        # (the webhook lanes' first failure can come after the console lane's first delivery).
        channels = set(variables.get("stockstream-notifier", {}).get("channel", "").split("|"))
        complete = len(answers) == len(QUERIES) and channels >= {"console", "broken", "flaky"} and all(
            answer.get("status") == "success" and answer["data"]["result"] for answer in answers.values())
        if complete or time.monotonic() > deadline:
            return PanelResults(variables, answers, time.monotonic() - started)
        time.sleep(2)


def test_dashboard_variables_resolve_to_real_values(pipeline, panel_results):
    assert set(panel_results.variables) == {board["uid"] for board in dashboards().values()}, pipeline.diagnostics()
    assert panel_results.variables["stockstream-symbol"] == {
        "symbol": "BTC-USD", "venue": "simulator", "timeframe": "tick"}
    assert set(panel_results.variables["stockstream-notifier"]["channel"].split("|")) == {"console", "broken", "flaky"}


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query.name)
def test_panel_query_is_valid_and_returns_data(pipeline, panel_results, query: PanelQuery):
    answer = panel_results.answers.get(query.name)
    assert answer is not None, f"variables of {query.dashboard} never resolved\n{pipeline.diagnostics()}"
    assert answer["status"] == "success", answer.get("error")
    assert answer["data"]["result"], (
        f"no data after {panel_results.seconds:.0f}s for {query.expr!r}\n{pipeline.diagnostics()}")


def test_events_behind_the_zero_fallbacks_really_show(pipeline, panel_results):
    """The poison tick, the refusing and the flaky webhook appear in the series that panels default to 0."""
    checks = {
        "dead letter": 'service_reason:stockstream_dead_letters:rate5m{service="process"}',
        "notifier failure": 'stockstream_notify_failures_total{channel="broken"}',
        "failure ratio": 'channel:stockstream_notify_failure_ratio:rate10m{channel="broken"}',
        "retry": 'stockstream_notify_retries_total{channel="flaky"}',
        "delivery": 'stockstream_notify_deliveries_total{channel="flaky"}',
    }
    # Recording rules (evaluated every interval) and the webhook lanes' retries can trail the panels'
    # first answers: wait for each series with a generous bound, then name the ones that never showed.
    def missing() -> dict[str, str]:
        return {name: expr for name, expr in checks.items() if not pipeline.query(expr)["data"]["result"]}

    deadline = time.monotonic() + READY_TIMEOUT_S
    while missing() and time.monotonic() < deadline:
        time.sleep(2)
    assert missing() == {}, pipeline.diagnostics()
