"""Alerts reach someone: the real Alertmanager of the local stack, with the shipped routing file.

1. **Delivery** — alerts are posted to an Alertmanager started by :class:`stockstream.stack.manager.Stack`
   on free ports (the shipped ops/alertmanager/alertmanager.yml, its waits shortened, every kind of channel
   configured through the ``ALERT_*`` settings and pointed at local servers of ours speaking HTTP and SMTP):
   a critical alert firing on two instances arrives as one grouped notification on the webhook (with its
   bearer token), Slack and e-mail; the lag and no-tick alerts it causes are inhibited; an unrelated
   critical alert arrives on its own; when the Kafka alert resolves, the resolved notification arrives on
   each channel and the inhibited alerts are delivered (the warning one to the team's webhook and Slack,
   not by e-mail).
2. **End to end** — ingest, process and materialize run against a private Kafka; a Prometheus of the
   test's own (the shipped config with the test's targets and 2 s scrapes, the shipped rules, started by
   the stack code, so its ``alerting:`` block is the stack's) sends to the stack's Alertmanager. Kafka is
   stopped: ``StockstreamKafkaUnreachable`` fires in Prometheus and the webhook receiver gets one grouped
   notification naming the services (one while the outage lasts); Kafka is started again: each service's
   alert is reported resolved, none fires again, the group ends "resolved". Every
   wait is a condition with a generous bound; services that exit during the outage are restarted at once,
   as `stockstream run`, compose or Kubernetes would.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from stockstream.stack.manager import Stack
from stockstream.stack.services import StackSettings
from tests.support.fake_receivers.http import HttpReceiver, ReceivedRequest
from tests.support.fake_receivers.smtp import SmtpReceiver
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[3]
TOKEN = "sentinel-alert-webhook-token"  # noqa: S105 - a test value, checked to arrive as the bearer token
KAFKA_ALERT = "StockstreamKafkaUnreachable"


def http_json(url: str, payload: Any = None, timeout_s: float = 10.0) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310 - local servers
        body = answer.read()
    return json.loads(body) if body else None


def shortened_alertmanager_config(path: Path, *, group_wait: str, group_interval: str) -> Path:
    """The shipped file with shorter waits (routes, receivers, inhibition and repeat intervals unchanged)."""
    config = yaml.safe_load((REPO / "ops" / "alertmanager" / "alertmanager.yml").read_text())
    for route in [config["route"], *config["route"]["routes"]]:
        route["group_wait"], route["group_interval"] = group_wait, group_interval
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def webhook_notifications(receiver: HttpReceiver, alertname: str | None = None) -> list[dict[str, Any]]:
    found = []
    for request in receiver.requests("/alertmanager"):
        body = request.json()
        if alertname is None or body["groupLabels"].get("alertname") == alertname:
            found.append(body)
    return found


def slack_messages(receiver: HttpReceiver) -> list[dict[str, Any]]:
    return [request.json() for request in receiver.requests("/slack")]


def alert(name: str, severity: str, instance: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, "job": "stockstream", "instance": instance, **labels},
        "annotations": {"summary": f"{name} on {instance}", "description": f"test alert {name}"},
        # Now, not earlier: Alertmanager sends at once (without its group wait) for an alert that started
        # longer than the group wait ago, which would split alerts posted together.
        "startsAt": datetime.now(UTC).isoformat(),
    }


# --- 1. delivery, grouping, inhibition, every kind of channel ------------------------------------

@pytest.fixture
def channels(monkeypatch) -> Iterator[tuple[HttpReceiver, SmtpReceiver]]:
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", http.url("/alertmanager"))
        monkeypatch.setenv("ALERT_WEBHOOK_TOKEN", TOKEN)
        monkeypatch.setenv("ALERT_SLACK_WEBHOOK_URL", http.url("/slack"))
        monkeypatch.setenv("ALERT_EMAIL_TO", "oncall@example.invalid")
        monkeypatch.setenv("ALERT_SMTP_SMARTHOST", f"127.0.0.1:{smtp.port}")
        monkeypatch.setenv("ALERT_SMTP_REQUIRE_TLS", "false")
        yield http, smtp


def test_alertmanager_groups_inhibits_and_delivers_to_every_channel(tmp_path, channels):
    http, smtp = channels
    settings = StackSettings(
        state_dir=tmp_path / "stack", alertmanager_port=free_port(),
        # 10 s to gather a group (the shipped critical wait): alerts posted together always share one
        # notification, even on a loaded machine; updates every 2 s.
        alertmanager_config=shortened_alertmanager_config(tmp_path / "alertmanager.yml",
                                                          group_wait="10s", group_interval="2s"))
    stack = Stack(settings)
    api = f"{settings.alertmanager_url}/api/v2/alerts"
    try:
        stack.up(["alertmanager"])
        kafka_down = [alert(KAFKA_ALERT, "critical", "127.0.0.1:9101", service="ingest"),
                      alert(KAFKA_ALERT, "critical", "127.0.0.1:9102", service="process")]
        consequences = [alert("StockstreamConsumerLagHigh", "warning", "127.0.0.1:9102", topic="ticks", partition="0"),
                        alert("StockstreamNoTicks", "critical", "127.0.0.1:9101", source="simulator")]
        unrelated = [alert("StockstreamRedisUnreachable", "critical", "127.0.0.1:9103")]
        http_json(api, [*kafka_down, *consequences, *unrelated])

        http.wait_for(2, "/alertmanager", timeout_s=120)
        [grouped] = webhook_notifications(http, KAFKA_ALERT)
        assert grouped["receiver"] == "oncall" and grouped["status"] == "firing"
        assert sorted(entry["labels"]["instance"] for entry in grouped["alerts"]) == ["127.0.0.1:9101", "127.0.0.1:9102"]
        [redis_page] = webhook_notifications(http, "StockstreamRedisUnreachable")
        assert redis_page["receiver"] == "oncall" and len(redis_page["alerts"]) == 1
        assert {request.headers["authorization"] for request in http.requests("/alertmanager")} == {f"Bearer {TOKEN}"}

        def inhibited() -> set[str]:
            return {entry["labels"]["alertname"] for entry in http_json(api)
                    if entry["status"]["state"] == "suppressed" and entry["status"]["inhibitedBy"]}

        wait_until(lambda: inhibited() == {"StockstreamConsumerLagHigh", "StockstreamNoTicks"}, timeout_s=60,
                   message="the lag and no-tick alerts to be inhibited by the Kafka alert")
        http.wait_for(2, "/slack", timeout_s=120)
        smtp.wait_for(2, timeout_s=120)
        kafka_slack = [m for m in slack_messages(http) if KAFKA_ALERT in m["attachments"][0]["title"]]
        assert [m["channel"] for m in kafka_slack] == ["#stockstream-oncall"]
        assert kafka_slack[0]["attachments"][0]["title"] == f"[FIRING:2] {KAFKA_ALERT} (critical)"
        assert "Runbook: docs/monitoring.md#stockstreamkafkaunreachable" in kafka_slack[0]["attachments"][0]["text"]
        kafka_mail = [mail for mail in smtp.mails if KAFKA_ALERT in mail.message["Subject"]]
        assert len(kafka_mail) == 1 and kafka_mail[0].rcpt_tos == ("oncall@example.invalid",)
        assert not any(name in json.dumps(webhook_notifications(http)) for name in
                       ("StockstreamConsumerLagHigh", "StockstreamNoTicks"))

        # Kafka is back: the resolved notification on each channel, then what it held back.
        http_json(api, [{**entry, "endsAt": datetime.now(UTC).isoformat()} for entry in kafka_down])

        def resolved_everywhere() -> bool:
            webhook = [n for n in webhook_notifications(http, KAFKA_ALERT) if n["status"] == "resolved"]
            slack = [m for m in slack_messages(http) if m["attachments"][0]["title"].startswith("[RESOLVED]")]
            mail = [m for m in smtp.mails if m.message["Subject"].startswith("[RESOLVED]")]
            return len(webhook) == 1 and len(slack) == 1 and len(mail) == 1

        wait_until(resolved_everywhere, timeout_s=120, message="the resolved notification on webhook, Slack and e-mail")
        wait_until(lambda: len(webhook_notifications(http, "StockstreamConsumerLagHigh")) == 1
                   and len(webhook_notifications(http, "StockstreamNoTicks")) == 1, timeout_s=120,
                   message="the alerts the Kafka alert held back")
        [lag] = webhook_notifications(http, "StockstreamConsumerLagHigh")
        assert lag["receiver"] == "team" and lag["status"] == "firing"
        wait_until(lambda: any(m["channel"] == "#stockstream-alerts" for m in slack_messages(http)), timeout_s=120,
                   message="the warning on the team's Slack channel")
        assert not any("StockstreamConsumerLagHigh" in mail.message["Subject"] for mail in smtp.mails)
        assert len([n for n in webhook_notifications(http, KAFKA_ALERT) if n["status"] == "firing"]) == 1
    finally:
        stack.down(hard=True)
    rendered = (settings.state_dir / "alertmanager" / "alertmanager.yml").read_text()
    assert TOKEN not in rendered


# --- 2. end to end: Kafka stops under a running pipeline --------------------------------------------

SERVICES = ("ingest", "process", "materialize")


def prometheus_config(path: Path, ports: dict[str, int]) -> Path:
    """The shipped config with the test's targets and short intervals (the stack adds alerting and rule paths).

    Scrapes every 2 s with a 2 s timeout: on a loaded 2-core machine a 1 s timeout loses scrapes of busy
    services, and a lost scrape hides a change of ``stockstream_kafka_up`` for that long.
    """
    config = yaml.safe_load((REPO / "ops" / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "2s", "evaluation_interval": "1s", "scrape_timeout": "2s"}
    config["rule_files"] = [str(REPO / "ops" / "prometheus" / pattern) for pattern in config["rule_files"]]
    # Our services only: the broker and Redis exporters of the shared stack are no part of this test.
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] in ("prometheus", "stockstream")]
    for job in config["scrape_configs"]:
        if job["job_name"] == "stockstream":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[name]}" for name in SERVICES]}]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Pipeline:
    """The three services as subprocesses; one that exits is started again at once (like a supervisor)."""

    def __init__(self, specs: dict[str, tuple[list[str], dict[str, str]]]) -> None:
        self.specs = specs
        self.processes = {name: ServiceProcess(args, env) for name, (args, env) in specs.items()}
        self.restarts = dict.fromkeys(specs, 0)
        self.outputs: dict[str, list[str]] = {name: [] for name in specs}

    def supervise(self) -> None:
        for name, process in list(self.processes.items()):
            if not process.alive():
                process.terminate(5)
                self.outputs[name].append(process.output[-3000:])
                args, env = self.specs[name]
                self.processes[name] = ServiceProcess(args, env)
                self.restarts[name] += 1

    def diagnostics(self) -> str:
        return "\n".join(f"--- {name} (restarts {self.restarts[name]})\n{process.output[-2500:]}"
                         for name, process in self.processes.items())

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate(30)


def test_kafka_down_under_a_running_pipeline_pages_once_and_resolves(private_stack, tmp_path, monkeypatch):
    namespace = f"t{uuid.uuid4().hex[:10]}."
    ports = {name: free_port() for name in SERVICES}
    common = {"KAFKA_BOOTSTRAP_SERVERS": private_stack.kafka_bootstrap, "STOCKSTREAM_TOPIC_PREFIX": namespace,
              "REDIS_URL": private_stack.redis_url, "REDIS_KEY_PREFIX": namespace, "METRICS_HOST": "127.0.0.1",
              "KAFKA_STATISTICS_INTERVAL_MS": "1000", "PYTHONUNBUFFERED": "1"}
    specs = {
        "ingest": (["ingest", "--source", "simulator"], {"INGEST_SIM_RATE": "20", "INGEST_SIM_SEED": "3"}),
        "process": (["process"], {"PROCESS_STATE_DIR": str(tmp_path / "process"), "PROCESS_STATS_INTERVAL_MS": "1000"}),
        "materialize": (["materialize"], {}),
    }
    specs = {name: (args, {**common, "METRICS_PORT": str(ports[name]), **env}) for name, (args, env) in specs.items()}
    with HttpReceiver() as receiver:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.url("/alertmanager"))
        settings = StackSettings(
            state_dir=tmp_path / "monitoring", prometheus_port=free_port(), alertmanager_port=free_port(),
            prometheus_config=prometheus_config(tmp_path / "prometheus.yml", ports),
            # The shipped critical route's 30 s wait gathers the services into one page; only the update
            # interval (which paces the resolved notification) is shortened.
            alertmanager_config=shortened_alertmanager_config(tmp_path / "alertmanager.yml",
                                                              group_wait="30s", group_interval="5s"))
        monitoring = Stack(settings)
        pipeline = Pipeline(specs)
        try:
            monitoring.up(["alertmanager", "prometheus"])

            def query(expr: str) -> list[dict[str, Any]]:
                url = f"{settings.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
                return list(http_json(url)["data"]["result"])

            def connected() -> bool:
                pipeline.supervise()
                # …and the processor past its start-up (its consumer's statistics give the lag).
                return (len(query("max by (instance) (stockstream_kafka_up) == 1")) == len(SERVICES)
                        and bool(query("stockstream_process_consumer_lag_records")))

            wait_until(connected, timeout_s=240, interval_s=1,
                       message=f"every service connected to Kafka, as Prometheus sees it\n{pipeline.diagnostics()}")
            assert query(f'ALERTS{{alertname="{KAFKA_ALERT}"}}') == []

            assert private_stack.stack.down(["kafka"]) == ["kafka"]

            def firing_in_prometheus() -> bool:
                pipeline.supervise()
                alerts = query(f'ALERTS{{alertname="{KAFKA_ALERT}", alertstate="firing"}}')
                return {entry["metric"]["service"] for entry in alerts} == set(SERVICES)

            wait_until(firing_in_prometheus, timeout_s=240, interval_s=1,
                       message=f"{KAFKA_ALERT} firing for every service\n{pipeline.diagnostics()}")

            def paged() -> list[ReceivedRequest]:
                pipeline.supervise()
                return [request for request in receiver.requests("/alertmanager")
                        if request.json()["groupLabels"].get("alertname") == KAFKA_ALERT]

            wait_until(lambda: bool(paged()), timeout_s=120, interval_s=0.5, message="the page for the outage")
            page = paged()[0].json()
            assert page["status"] == "firing" and page["receiver"] == "oncall"
            assert {entry["labels"]["service"] for entry in page["alerts"]} == set(SERVICES), \
                [(n.json()["status"], [a["labels"]["service"] for a in n.json()["alerts"]]) for n in paged()]
            assert all(entry["status"] == "firing" for entry in page["alerts"])
            assert len(paged()) == 1  # while the outage lasts: one page, not one per service

            private_stack.stack.up(["kafka"])

            def resolved() -> bool:
                return any(request.json()["status"] == "resolved" for request in paged())

            try:
                wait_until(resolved, timeout_s=300, interval_s=1, message="the resolved notification")
            except AssertionError as error:
                state = {"kafka_up": query("stockstream_kafka_up"), "alerts": query("ALERTS"),
                         "notifications": [request.json()["status"] for request in paged()]}
                raise AssertionError(f"{error}\n{json.dumps(state)}\n{pipeline.diagnostics()}") from None
            notifications = [request.json() for request in paged()]
            summary = [(n["status"], sorted((a["labels"]["service"], a["status"]) for a in n["alerts"]))
                       for n in notifications]
            assert notifications[0] == page, summary
            # Afterwards only the resolution: each service's alert reported resolved (services that reconnect
            # a few seconds apart may be reported in more than one update, Alertmanager sending each resolved
            # alert once), no alert firing again, and the group's last notification is "resolved".
            later = [alert for notification in notifications[1:] for alert in notification["alerts"]]
            started = {alert["fingerprint"]: alert["startsAt"] for alert in page["alerts"]}
            assert {alert["labels"]["service"] for alert in later if alert["status"] == "resolved"} == set(SERVICES), \
                summary
            # The same alerts as paged, with the same start: none appeared or fired again.
            assert all(started.get(alert["fingerprint"]) == alert["startsAt"] for alert in later), summary
            assert notifications[-1]["status"] == "resolved", summary
        finally:
            pipeline.stop()
            monitoring.down(hard=True)
