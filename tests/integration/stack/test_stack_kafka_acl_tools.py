"""The tools people run beside the services, each as its service's Kafka user on the SASL listener.

``stockstream views rebuild`` runs as ``materialize`` and ``stockstream notify --renotify`` as
``notify`` (``PRINCIPAL_OF_COMMAND``), each with only the grants the plan gives a namespace of its
own (``grants(Deployment)``, set and removed by the test through the operator's door): each does its
work, and each is refused writing a topic it may not. ``backtest`` and ``sweep`` (as ``spark``) are
in tests/integration/spark/test_spark_kafka_principal.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import redis
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from processors.materialize.rebuild import snapshot
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import DeadLetter, encode
from schemas.topics import TopicRegistry
from stockstream.kafka_access.plan import (
    MATERIALIZE,
    NOTIFY,
    PRINCIPAL_OF_COMMAND,
    SERVE,
    Deployment,
    grants,
    may,
)
from stockstream.stack import kafka_security
from tests.integration.views.conftest import drop_prefix
from tests.integration.views.streams import make_stream, produce_stream
from tests.support.fake_receivers.http import HttpReceiver, status
from tests.support.kafka_acls import own_acls
from tests.support.kafka_tools import delete_topics, forged_write_error, produce, read_topic
from tests.support.processes import STOCKSTREAM, running
from tests.unit.notify.factories import make_signal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def as_principal(sasl_stack, principal: str, namespace: str, **extra: str) -> dict[str, str]:
    """The environment of a ``stockstream`` command run as ``principal`` in ``namespace``."""
    return {**os.environ, **kafka_security.client_environment(sasl_stack.stack.settings, principal),
            "STOCKSTREAM_TOPIC_PREFIX": namespace, "LOG_LEVEL": "INFO", **extra}


def run(environment: dict[str, str], *args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STOCKSTREAM, *args], env=environment, capture_output=True, text=True,  # noqa: S603
                          timeout=timeout_s, check=False)


def write_error(sasl_stack, principal: str, topic: str) -> KafkaError | None:
    """The delivery error of one record ``principal`` produces on ``topic`` (None = written)."""
    environment = kafka_security.client_environment(sasl_stack.stack.settings, principal)
    return forged_write_error({**environment, "KAFKA_SASL_USERNAME": principal}, topic)


def assert_refused(sasl_stack, principal: str, plan: Deployment, topic: str) -> None:
    assert not may(grants(plan), principal, "WRITE", "topic", topic)
    error = write_error(sasl_stack, principal, topic)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (principal, topic, error)


@contextmanager
def namespace_grants(sasl_stack, plan: Deployment) -> Iterator[None]:
    """The namespace's topics and ACLs (as an operator applies them), removed afterwards (:func:`own_acls`)."""
    admin = AdminClient({"bootstrap.servers": sasl_stack.kafka_bootstrap})
    with own_acls(admin, grants(plan)):
        ensure_topics(KafkaSettings(bootstrap_servers=sasl_stack.kafka_bootstrap, topic_prefix=plan.topics.prefix),
                      plan.topics.all())
        try:
            yield
        finally:
            delete_topics(sasl_stack.kafka_bootstrap, plan.topics.prefix)


def test_views_rebuild_runs_as_materialize(sasl_stack, namespace):
    assert PRINCIPAL_OF_COMMAND["views"] == MATERIALIZE
    registry = TopicRegistry(prefix=namespace)
    plan = Deployment.default(registry)
    client = redis.Redis.from_url(sasl_stack.redis_url)
    rebuilt, reference = f"{namespace}principal.", f"{namespace}operator."
    with namespace_grants(sasl_stack, plan):
        stream = make_stream(count=120, seed=31)
        stream.extend(make_stream("ETH-USD", count=60, price=3000.0, seed=32))
        produce_stream(sasl_stack.kafka_bootstrap, registry, stream)  # through the operator's door
        try:
            done = run(as_principal(sasl_stack, MATERIALIZE, namespace, REDIS_URL=sasl_stack.redis_url),
                       "views", "rebuild", "--redis-prefix", rebuilt)
            assert done.returncode == 0, done.stderr[-3000:]
            assert "AUTHORIZATION_FAILED" not in done.stderr
            # The same rebuild as the operator (PLAINTEXT, super user) gives the same views, key for key.
            operator = run({**os.environ, "KAFKA_BOOTSTRAP_SERVERS": sasl_stack.kafka_bootstrap,
                            "STOCKSTREAM_TOPIC_PREFIX": namespace, "REDIS_URL": sasl_stack.redis_url},
                           "views", "rebuild", "--redis-prefix", reference)
            assert operator.returncode == 0, operator.stderr[-3000:]
            views = snapshot(client, rebuilt)
            assert len(views) > 10
            assert views == snapshot(client, reference)
        finally:
            drop_prefix(client, rebuilt)
            drop_prefix(client, reference)
        # A user without the materializer's grants is refused, never an empty "successful" rebuild.
        refused = run(as_principal(sasl_stack, SERVE, namespace, REDIS_URL=sasl_stack.redis_url),
                      "views", "rebuild", "--redis-prefix", rebuilt)
        assert refused.returncode == 1 and "Kafka refused reading" in refused.stderr, refused.stderr[-3000:]
        assert snapshot(client, rebuilt) == {}
        # Its user writes only views.dlq: not the signals the notifier acts on, not the log of record.
        for topic in (registry.signals.name, registry.ticks.name, registry.ticks_dlq.name):
            assert_refused(sasl_stack, MATERIALIZE, plan, topic)


def test_notify_renotify_runs_as_notify(sasl_stack, namespace, tmp_path):
    assert PRINCIPAL_OF_COMMAND["notify"] == NOTIFY
    registry = TopicRegistry(prefix=namespace)
    group = f"{namespace}notify"
    plan = Deployment(registry, f"{namespace}stockstream-process", f"{namespace}stockstream-materialize", group,
                      f"{namespace}stockstream-composite")
    now = datetime.now(UTC)
    signals = [make_signal(symbol="BTC-USD", side=side, ts_event=now - timedelta(hours=2, seconds=index))
               for index, side in enumerate(("BUY", "SELL", "BUY"))]
    with namespace_grants(sasl_stack, plan), HttpReceiver() as web:
        web.default("/broken", status(400, {"error": "gone"}))
        subscriptions = tmp_path / "subscriptions.toml"
        subscriptions.write_text(f"""
[channels.hook]
type = "webhook"
allow_private_network = true
url = "{web.url('/hook')}"
[channels.broken]
type = "webhook"
allow_private_network = true
url = "{web.url('/broken')}"
[[subscriptions]]
channel = "hook"
cooldown = 0
[[subscriptions]]
channel = "broken"
cooldown = 0
""")
        produce(sasl_stack.kafka_bootstrap, registry.signals.name,
                [(signal.symbol, encode(signal)) for signal in signals])
        with running(["notify", "--renotify"], as_principal(
                sasl_stack, NOTIFY, namespace, NOTIFY_CONSUMER_GROUP=group, NOTIFY_STATE_DIR=str(tmp_path / "state"),
                NOTIFY_SUBSCRIPTIONS=str(subscriptions), NOTIFY_SHUTDOWN_GRACE_S="10", METRICS_PORT="0",
                REDIS_URL=sasl_stack.redis_url)) as renotify:
            code = renotify.wait(300)  # a renotify run exits by itself once it has caught up with the log
        output = renotify.output
        assert code == 0, output[-4000:]
        assert "AUTHORIZATION_FAILED" not in output and "Authorization failed" not in output, output[-4000:]
        # Old signals (re-announced despite their age) on the working channel; the refusing one's dead letters
        # went to notifications.dlq, which notify writes as itself.
        assert sorted(request.json()["signal_id"] for request in web.requests("/hook")) == sorted(
            signal.signal_id for signal in signals)
        letters = [DeadLetter.model_validate_json(record.value)
                   for record in read_topic(sasl_stack.kafka_bootstrap, registry.notifications_dlq.name)]
        assert sorted(letter.reason for letter in letters) == ["http_400"] * 3
        # Its user may not write the signals it acts on, nor the log of record.
        for topic in (registry.signals.name, registry.ticks.name):
            assert_refused(sasl_stack, NOTIFY, plan, topic)
