"""Runs under Kafka ACLs: a shadow run's processor and a demoted live processor, each as ``process``.

On a broker with the SASL/SCRAM listener and ``allow.everyone.if.no.acl.found=false``, a namespace
gets exactly the grants of the plan (``grants(Deployment)``, set and removed by the test through the
operator's door), then, on the SASL listener as the Kafka user ``process``:

- the processor of a shadow run (``STOCKSTREAM_RUN=<id> stockstream process``, as a supervisor runs a
  deployed or promoted run, docs/runs.md) writes its indicators and candles to ``runs.<id>.*`` through
  its own group ``runs.<id>.process`` (transactions, the state's changelog) and no live topic;
- ``stockstream process`` of the live group, which the ``live`` record names as the previous run
  (a demoted live processor after ``strategy promote``), writes ``runs.live-<version>.*`` and no live topic.

And ``stockstream runs prune`` (the daily CronJob of ops/k8s) as its own user ``prune`` deletes an
expired run's topic, changelog, view key and record, and nothing live; the broker refuses it a live topic.

Negative control: ``materialize`` may not write a run's signals. The grants themselves are
unit-tested in tests/unit/test_kafka_access.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.runs import RunLog
from processors.runtime.settings import KafkaSettings
from schemas.runs import LiveState, Namespace, Run, Serving, StrategyRef
from schemas.topics import TopicRegistry, TopicSpec, run_group
from stockstream.handover import live_record
from stockstream.kafka_access.plan import MATERIALIZE, PROCESS, PRUNE, Deployment
from stockstream.stack import kafka_security
from tests.integration.stack.test_stack_kafka_acl_tools import assert_refused, namespace_grants
from tests.integration.stream.stream_support import make_ticks, produce_many
from tests.support.kafka_tools import read_topic, wait_until
from tests.support.ports import free_port
from tests.support.processes import STOCKSTREAM, ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REFUSALS = ("AUTHORIZATION_FAILED", "Authorization failed", "Authentication failed")


def as_process(sasl_stack, namespace: str, state_dir: Path) -> dict[str, str]:
    return {**kafka_security.client_environment(sasl_stack.stack.settings, PROCESS),
            "STOCKSTREAM_TOPIC_PREFIX": namespace, "PROCESS_STATE_DIR": str(state_dir),
            "REDIS_URL": sasl_stack.redis_url, "METRICS_PORT": str(free_port()), "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1"}


def records(sasl_stack, topic: str) -> int:
    """Committed records on ``topic`` (0 while it does not exist yet)."""
    admin = AdminClient({"bootstrap.servers": sasl_stack.kafka_bootstrap})
    if topic not in admin.list_topics(timeout=10).topics:
        return 0
    try:
        return len(read_topic(sasl_stack.kafka_bootstrap, topic, idle_s=0.5))
    except KafkaException:  # created a moment ago: no leader yet
        return 0


def drop_changelogs(sasl_stack, prefix: str) -> None:
    """The run's state topics (``changelog__<prefix>…``): the namespace's cleanup misses them."""
    admin = AdminClient({"bootstrap.servers": sasl_stack.kafka_bootstrap})
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(f"changelog__{prefix}")]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.exception()


def test_a_shadow_runs_processor_writes_its_namespace_as_process(sasl_stack, namespace, tmp_path):
    """The processor of a shadow run as a supervisor runs it (``STOCKSTREAM_RUN``, docs/runs.md), as ``process``."""
    registry = TopicRegistry(prefix=namespace)
    plan = Deployment.default(registry)
    run = registry.for_run("shadow")
    group = run_group(namespace, "shadow", "process")
    with namespace_grants(sasl_stack, plan):
        produce_many(sasl_stack.kafka_bootstrap, registry.ticks.name, make_ticks(["S1-USD", "S2-USD"], 600))
        processor = ServiceProcess(["process"], {**as_process(sasl_stack, namespace, tmp_path / "state"),
                                                 "STOCKSTREAM_RUN": "shadow"})
        try:
            wait_until(lambda: records(sasl_stack, run.indicators.name) > 0 or not processor.alive(),
                       timeout_s=300, interval_s=1.0, message="the shadow's indicators in its namespace")
            assert processor.alive(), processor.output[-4000:]
            assert records(sasl_stack, run.candles("1m").name) > 0
            # Its own group (exactly-once: transactions, the state's changelog), nothing live.
            for spec in registry.run_outputs():
                assert records(sasl_stack, spec.name) == 0, spec.name
            admin = AdminClient({"bootstrap.servers": sasl_stack.kafka_bootstrap})
            assert any(name.startswith(f"changelog__{group}--") for name in admin.list_topics(timeout=10).topics)
        finally:
            processor.terminate(timeout_s=120)
        output = processor.output
        assert not [refusal for refusal in REFUSALS if refusal in output], output[-4000:]
        # Another service's user may not forge the shadow's signals (which `strategy promote` makes live).
        assert_refused(sasl_stack, MATERIALIZE, plan, run.signals.name)
    drop_changelogs(sasl_stack, namespace)


def test_a_demoted_live_processor_writes_its_namespace_as_process(sasl_stack, namespace, tmp_path):
    registry = TopicRegistry(prefix=namespace)
    plan = Deployment.default(registry)
    demoted = "live-3f0c9a1b2c3d4e5f"
    now = datetime.now(UTC)
    strategy = StrategyRef(version="0" * 16)
    # After a promote: run "next" serves live, the live processor's group is the previous run.
    state = LiveState(current=Serving(run_id="next", group=run_group(namespace, "next", "process"),
                                      strategy=strategy, switch={0: 0}, epoch=1, since=now),
                      previous=Serving(run_id=demoted, group=plan.process_group, strategy=strategy, since=now))
    with namespace_grants(sasl_stack, plan):
        log = RunLog(KafkaSettings(bootstrap_servers=sasl_stack.kafka_bootstrap, topic_prefix=namespace))
        try:
            log.ensure()
            log.publish(live_record(state, "test", namespace))
        finally:
            log.close()
        produce_many(sasl_stack.kafka_bootstrap, registry.ticks.name, make_ticks(["D1-USD", "D2-USD"], 600))
        processor = ServiceProcess(["process"], as_process(sasl_stack, namespace, tmp_path / "state"))
        own = registry.for_run(demoted)
        try:
            wait_until(lambda: records(sasl_stack, own.indicators.name) > 0 or not processor.alive(),
                       timeout_s=300, interval_s=1.0, message="the demoted processor's indicators in its namespace")
            assert processor.alive(), processor.output[-4000:]
            assert records(sasl_stack, own.candles("1m").name) > 0
            for spec in registry.run_outputs():
                assert records(sasl_stack, spec.name) == 0, spec.name  # "next" serves live: nothing from here
        finally:
            processor.terminate(timeout_s=120)
        output = processor.output
        assert not [refusal for refusal in REFUSALS if refusal in output], output[-4000:]
        assert_refused(sasl_stack, MATERIALIZE, plan, own.signals.name)
    drop_changelogs(sasl_stack, namespace)


def test_runs_prune_as_prune_deletes_an_expired_runs_namespace_and_nothing_live(sasl_stack, namespace):
    """The scheduled ``runs prune`` (ops/k8s/base/runs/runs-prune.yaml) as its own user ``prune``."""
    registry = TopicRegistry(prefix=namespace)
    plan = Deployment.default(registry)
    views = f"{namespace}v:"
    operator = KafkaSettings(bootstrap_servers=sasl_stack.kafka_bootstrap, topic_prefix=namespace)
    past = datetime.now(UTC) - timedelta(hours=2)
    group = run_group(namespace, "old", "process")
    owned = [f"{namespace}runs.old.signals", f"changelog__{group}--{namespace}ticks--pipeline"]
    client = redis.Redis.from_url(sasl_stack.redis_url)
    with namespace_grants(sasl_stack, plan):
        log = RunLog(operator)
        try:
            log.ensure()
            log.publish(Run(run_id="old", kind="replay", state="done", strategy=StrategyRef(version="0" * 16),
                            code_version="test", namespace=Namespace(topic_prefix=f"{namespace}runs.old."),
                            group=group, expires_at=past + timedelta(minutes=1), ts_event=past, ts_init=past))
        finally:
            log.close()
        ensure_topics(operator, [TopicSpec(name, "symbol", Run, 1) for name in owned])
        client.set(f"{views}run:old:instruments", "x")
        client.set(f"{views}latest:BTC-USD@test", "live")
        try:
            done = subprocess.run(  # noqa: S603
                [STOCKSTREAM, "runs", "prune", "--yes", "--json"], capture_output=True, text=True, timeout=300,
                check=False, env={**os.environ, **kafka_security.client_environment(sasl_stack.stack.settings, PRUNE),
                                  "STOCKSTREAM_TOPIC_PREFIX": namespace, "REDIS_URL": sasl_stack.redis_url,
                                  "REDIS_KEY_PREFIX": views})
            assert done.returncode == 0, done.stderr[-3000:]
            assert [json.loads(line)["run_id"] for line in done.stdout.splitlines()] == ["old"], done.stdout
            topics = AdminClient({"bootstrap.servers": sasl_stack.kafka_bootstrap}).list_topics(timeout=10).topics
            assert not set(owned) & set(topics), "the run's topic and its state's changelog are deleted"
            assert {spec.name for spec in registry.all()} <= set(topics), "every live topic is there"
            log = RunLog(operator)
            try:
                assert log.read().get("old") is None
            finally:
                log.close()
            assert client.get(f"{views}run:old:instruments") is None and client.get(f"{views}latest:BTC-USD@test")
            # Its user deletes nothing else: a live topic, refused by the broker.
            environment = kafka_security.client_environment(sasl_stack.stack.settings, PRUNE)
            admin = AdminClient({"bootstrap.servers": environment["KAFKA_BOOTSTRAP_SERVERS"],
                                 "security.protocol": "SASL_PLAINTEXT",
                                 "sasl.mechanism": environment["KAFKA_SASL_MECHANISM"], "sasl.username": PRUNE,
                                 "sasl.password": Path(environment["KAFKA_SASL_PASSWORD_FILE"]).read_text().strip()})
            refused = admin.delete_topics([registry.signals.name], operation_timeout=30)[registry.signals.name]
            with pytest.raises(KafkaException) as error:
                refused.result()
            assert error.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        finally:
            for key in client.scan_iter(match=f"{views}*"):
                client.delete(key)
            client.close()
    drop_changelogs(sasl_stack, namespace)
