"""Kafka ACLs on the real broker: who may write ``signals``, and the processor under least privilege.

A private stack (its broker has the SASL/SCRAM listener, the per-service users and the default
deployment's ACLs, as ``stockstream stack up`` sets them) is driven through that listener with
each service's own credentials, read from the stack's password files:

- every principal but ``process`` is refused when it produces on ``signals`` (a forged BUY never
  reaches the notifier), ``process`` is allowed, a wrong password and an unknown user are refused
  at authentication, and nothing refused reaches the topic (read back through the operator door);
- ``notify`` may read ``signals`` but not write it; ``serve`` may read only the ``runs`` topic (``GET /runs``);
- ``stockstream kafka-access apply`` sets a namespace's users and ACLs, and the real
  ``stockstream process`` runs as ``process`` (exactly-once: transactions, changelog
  topics, its consumer group) with only its grants, and drains a feed into its outputs.
- the whole pipeline (ingest, process, materialize, notify, serve) runs with each service as its own
  user, and so does ``stockstream composite``.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.runs import RunLog
from processors.runtime.settings import KafkaSettings
from schemas.events import Tick, encode
from schemas.runs import Namespace, Run, StrategyRef
from schemas.topics import TopicRegistry
from stockstream.kafka_access.admin import create_acls, delete_acls
from stockstream.kafka_access.plan import PROCESS, SCRAM_PRINCIPALS, Deployment, grants, may
from stockstream.stack import kafka_security
from tests.chaos.deployment import Deployment as Pipeline
from tests.chaos.deployment import Feed
from tests.chaos.probes import KafkaProbe
from tests.chaos.scenario import wait_drained as wait_pipeline_drained
from tests.integration.stream.stream_support import (
    make_ticks,
    outputs_by_key,
    produce_many,
    wait_drained,
)
from tests.support.fake_receivers.http import HttpReceiver
from tests.support.kafka_tools import read_topic, wait_until
from tests.support.ports import free_port
from tests.support.processes import STOCKSTREAM, ServiceProcess

pytestmark = pytest.mark.integration


def sasl_config(private_stack, principal: str, password: str | None = None) -> dict[str, str]:
    """librdkafka settings for ``principal`` on the private stack's SASL listener (its own password file)."""
    environment = kafka_security.client_environment(private_stack.stack.settings, principal)
    secret = password if password is not None else Path(environment["KAFKA_SASL_PASSWORD_FILE"]).read_text().strip()
    return {"bootstrap.servers": environment["KAFKA_BOOTSTRAP_SERVERS"], "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": environment["KAFKA_SASL_MECHANISM"], "sasl.username": principal,
            "sasl.password": secret}


def produce_one(config: dict[str, str], topic: str, value: bytes) -> tuple[KafkaError | None, list[KafkaError]]:
    """Produce one record; returns its delivery error (None = written) and the client's errors."""
    client_errors: list[KafkaError] = []
    delivered: list[KafkaError | None] = []
    producer = Producer({**config, "message.timeout.ms": 15_000, "error_cb": client_errors.append, "log_level": 0})
    producer.produce(topic, value=value, key=b"FORGED-USD@test",
                     on_delivery=lambda error, _message: delivered.append(error))
    producer.flush(30)
    assert len(delivered) == 1
    return delivered[0], client_errors


def consume_error(config: dict[str, str], topic: str, group_prefix: str) -> KafkaError | None:
    """The first error a consumer of ``topic`` gets (None if it reads a record first)."""
    consumer = Consumer({**config, "group.id": f"{group_prefix}{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "log_level": 0})
    consumer.subscribe([topic])
    try:
        for _ in range(60):
            message = consumer.poll(0.5)
            if message is None:
                continue
            return message.error()
        raise AssertionError(f"{config['sasl.username']}: neither a record nor an error on {topic}")
    finally:
        consumer.close()


def test_only_the_processor_may_write_signals(private_stack):
    registry = TopicRegistry()
    signals = registry.signals.name
    operator = KafkaSettings(bootstrap_servers=private_stack.kafka_bootstrap)
    ensure_topics(operator, registry.all())
    plan = grants(Deployment.default(registry))

    refused = [principal for principal in SCRAM_PRINCIPALS if not may(plan, principal, "WRITE", "topic", signals)]
    assert set(refused) == set(SCRAM_PRINCIPALS) - {PROCESS, "operator"}
    for principal in refused:
        error, _ = produce_one(sasl_config(private_stack, principal), signals, f"forged by {principal}".encode())
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (principal, error)

    error, _ = produce_one(sasl_config(private_stack, PROCESS), signals, b"written by process")
    assert error is None

    for config in (sasl_config(private_stack, PROCESS, password="not-the-password"),
                   {**sasl_config(private_stack, PROCESS), "sasl.username": "mallory"}):
        error, client_errors = produce_one(config, signals, b"forged without credentials")
        assert error is not None
        assert any(item.code() == KafkaError._AUTHENTICATION for item in client_errors), client_errors

    # What the notifier would act on: only the processor's record.
    assert [record.value for record in read_topic(private_stack.kafka_bootstrap, signals)] == [b"written by process"]
    # The notifier reads signals; serve, which reads Redis and the run list only, may not.
    assert consume_error(sasl_config(private_stack, "notify"), signals, "stockstream-notify-probe-") is None
    served = consume_error(sasl_config(private_stack, "serve"), signals, "stockstream-serve-")
    assert served is not None and served.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                                    KafkaError.GROUP_AUTHORIZATION_FAILED), served


def test_the_processor_runs_exactly_once_with_only_its_grants(private_stack, tmp_path):
    namespace = f"acl{uuid.uuid4().hex[:8]}."
    group = f"{namespace}stockstream-process"
    registry = TopicRegistry(prefix=namespace)
    deployment = Deployment.default(registry)
    assert deployment.process_group == group
    # The namespace's users and ACLs, as an operator applies them (super user on the loopback door).
    environment = kafka_security.client_environment(private_stack.stack.settings, PROCESS)
    applied = subprocess.run(  # noqa: S603
        [STOCKSTREAM, "kafka-access", "apply", "--topic-prefix", namespace,
         "--credentials", str(Path(environment["KAFKA_SASL_PASSWORD_FILE"]).parent)],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": private_stack.kafka_bootstrap,
             "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert applied.returncode == 0, applied.stderr
    assert f"ACLs applied: {sum(len(grant.operations) for grant in grants(deployment))}" in applied.stderr
    assert Path(environment["KAFKA_SASL_PASSWORD_FILE"]).read_text().strip() not in applied.stdout + applied.stderr
    admin = AdminClient({"bootstrap.servers": private_stack.kafka_bootstrap})
    # The feed comes in through the operator's door; the processor creates its own topics (CREATE grant).
    ticks = make_ticks([f"A{index}-USD" for index in range(4)], 2_000)
    processor = ServiceProcess(["process"], {
        **environment, "STOCKSTREAM_TOPIC_PREFIX": namespace, "PROCESS_CONSUMER_GROUP": group,
        "PROCESS_STATE_DIR": str(tmp_path / "state"), "METRICS_PORT": str(free_port()), "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    try:
        wait_until(lambda: "now processing incoming messages" in processor.output or not processor.alive(),
                   timeout_s=180, message="the processor to start under its own principal")
        assert processor.alive(), processor.output[-3000:]
        produce_many(private_stack.kafka_bootstrap, registry.ticks.name, ticks)
        wait_drained(private_stack.kafka_bootstrap, group, registry.ticks.name, timeout_s=300)
        outputs = outputs_by_key(private_stack.kafka_bootstrap, namespace, ("indicators", "candles.1m"))
        assert sum(len(values) for values in outputs["candles.1m"].values()) > 0
        assert sum(len(values) for values in outputs["indicators"].values()) > 0
        assert "AUTHORIZATION_FAILED" not in processor.output and "Authorization failed" not in processor.output
    finally:
        processor.terminate()
        delete_acls(admin, grants(deployment))


@pytest.mark.timeout(1500)  # at least the sum of its own waits: drain 600 s, serve 120 s, GET /runs 120 s, starts
def test_the_pipeline_runs_with_each_service_as_its_own_principal(private_stack, tmp_path):
    """ingest → process → materialize → notify (webhook) and serve, each on the SASL listener as itself."""
    namespace = f"acp{uuid.uuid4().hex[:8]}."
    registry = TopicRegistry(prefix=namespace)
    with HttpReceiver() as receiver:
        extra_env = {name: kafka_security.client_environment(private_stack.stack.settings, name)
                     for name in ("ingest", "process", "materialize", "notify", "serve")}
        feed = Feed(tuple(f"P{index}-USD" for index in range(4)), 1_500, 7, 0,
                    datetime(2026, 11, 20, 23, 30, tzinfo=UTC), 1.0)
        pipeline = Pipeline(bootstrap=private_stack.kafka_bootstrap, redis_url=private_stack.redis_url,
                              namespace=namespace, workdir=tmp_path / "pipeline", feed=feed,
                              webhook_url=receiver.url("/hook"), extra_env=extra_env)
        plan = Deployment(registry, pipeline.process_group, pipeline.materialize_group, f"{namespace}notify",
                           f"{namespace}stockstream-composite")
        admin = AdminClient({"bootstrap.servers": private_stack.kafka_bootstrap})
        create_acls(admin, grants(plan))
        probe = KafkaProbe(private_stack.kafka_bootstrap)
        try:
            pipeline.start()
            wait_pipeline_drained(pipeline, probe, notify=True, timeout_s=600, check_services=lambda: _alive(pipeline))
            wait_until(pipeline.api_healthy, timeout_s=120, message="serve healthy (Redis and Kafka as `serve`)")
            # GET /runs reads the runs topic as `serve` (its one Kafka grant); a run recorded by the operator.
            started = datetime.now(UTC)
            runs = RunLog(KafkaSettings(bootstrap_servers=private_stack.kafka_bootstrap, topic_prefix=namespace))
            try:
                runs.ensure()
                runs.publish(Run(run_id="acl", kind="replay", state="done", strategy=StrategyRef(version="0" * 16),
                                 code_version="test", namespace=Namespace(topic_prefix=f"{namespace}runs.acl."),
                                 ts_event=started, ts_init=started))
            finally:
                runs.close()
            wait_until(lambda: pipeline.api("/runs")[0] == 200 and "acl" in json.dumps(pipeline.api("/runs")[1]),
                       timeout_s=120, message=f"GET /runs as `serve`: {pipeline.api('/runs')}")
            assert receiver.requests("/hook"), "no notification went out"
            assert redis.Redis.from_url(private_stack.redis_url).keys(f"{namespace}*")
            for name in ("ingest", "process", "materialize", "notify", "serve"):
                output = pipeline.output(name)
                assert "AUTHORIZATION_FAILED" not in output and "Authorization failed" not in output, (name, output[-3000:])
                assert pipeline.services[name].starts == 1, (name, output[-3000:])
        finally:
            pipeline.stop()
            probe.close()
            delete_acls(admin, grants(plan))


def _alive(pipeline: Pipeline) -> None:
    for name, running in pipeline.services.items():
        if running.starts > 1:
            raise AssertionError(f"{name} died under its principal:\n{pipeline.output(name)[-3000:]}")


def test_the_composite_runs_as_its_own_principal(private_stack, tmp_path):
    """``stockstream composite`` (exactly-once, ticks in, the index's ticks back into ticks) as ``composite``."""
    namespace = f"acc{uuid.uuid4().hex[:8]}."
    registry = TopicRegistry(prefix=namespace)
    plan = Deployment.default(registry)
    admin = AdminClient({"bootstrap.servers": private_stack.kafka_bootstrap})
    create_acls(admin, grants(plan))
    ensure_topics(KafkaSettings(bootstrap_servers=private_stack.kafka_bootstrap, topic_prefix=namespace,
                                partitions=1), registry.all())
    start = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    ticks = [Tick(symbol="BTC-USD", venue=venue, price=64_000.0 + second + index, volume=0.1,
                  ts_event=start + timedelta(seconds=second, milliseconds=index),
                  ts_init=start + timedelta(seconds=second, milliseconds=index), source=venue,
                  source_id=f"{venue}-{second}")
             for second in range(60) for index, venue in enumerate(("coinbase", "kraken", "binance"))]
    produce_many(private_stack.kafka_bootstrap, registry.ticks.name,
                 [(f"{tick.symbol}@{tick.venue}".encode(), encode(tick)) for tick in ticks],
                 timestamp_ms=int((start + timedelta(days=1)).timestamp() * 1000))
    composite = ServiceProcess(
        ["composite", "--symbols", "BTC-USD", "--stale", "10", "--from-beginning", "--metrics-port", str(free_port()),
         "--state-dir", str(tmp_path / "composite")],
        {**kafka_security.client_environment(private_stack.stack.settings, "composite"),
         "STOCKSTREAM_TOPIC_PREFIX": namespace, "STOCKSTREAM_PARTITIONS": "1"})

    def index_ticks() -> int:
        return sum(1 for record in read_topic(private_stack.kafka_bootstrap, registry.ticks.name, idle_s=0.5)
                   if record.key == b"BTC-USD@index")

    try:
        wait_until(lambda: index_ticks() > 0 or not composite.alive(), timeout_s=300,
                   message="the composite's index ticks")
        assert composite.alive(), composite.output[-3000:]
        assert "AUTHORIZATION_FAILED" not in composite.output, composite.output[-3000:]
    finally:
        composite.terminate()
        delete_acls(admin, grants(plan))
