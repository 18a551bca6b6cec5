"""The Kafka access plan (who may write/read which topic), the local broker's listeners and the
SASL password read from a file. The broker enforcing the plan: tests/integration/stack/test_stack_kafka_acl.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from processors.runtime.settings import KafkaSettings
from schemas.topics import TopicRegistry, run_group
from stockstream.kafka_access.plan import (
    COMPOSITE,
    INGEST,
    MATERIALIZE,
    NOTIFY,
    PROCESS,
    PRUNE,
    SERVE,
    SERVICE_PRINCIPALS,
    SPARK,
    Deployment,
    grants,
    may,
    principal_of,
)
from stockstream.stack import kafka_security
from stockstream.stack.services import StackSettings


def writers(plan, topic: str) -> set[str]:
    return {principal for principal in SERVICE_PRINCIPALS if may(plan, principal, "WRITE", "topic", topic)}


@pytest.mark.parametrize("prefix", ["", "t1."])
def test_each_topic_is_written_only_by_its_producers(prefix: str) -> None:
    registry = TopicRegistry(prefix=prefix)
    plan = grants(Deployment.default(registry))
    derived = [registry.indicators.name, registry.signals.name, registry.aggregates_daily.name,
               *(registry.candles(timeframe).name for timeframe in registry.candle_timeframes)]
    assert writers(plan, registry.ticks.name) == {INGEST, COMPOSITE}
    assert writers(plan, registry.ticks_dlq.name) == {INGEST, PROCESS}
    for topic in derived:
        assert writers(plan, topic) == {PROCESS}, topic
        assert writers(plan, f"{topic}.backfill") == {SPARK}, topic
    assert writers(plan, f"{registry.ticks_dlq.name}.backfill") == {SPARK}  # the backfill's dead letters
    assert writers(plan, registry.views_dlq.name) == {MATERIALIZE}
    assert writers(plan, registry.notifications_dlq.name) == {NOTIFY}
    assert writers(plan, registry.name("runs.sweep-1")) == {SPARK, PROCESS}  # a sweep's; a run's processor
    assert writers(plan, registry.signal_outcomes.name) == {PROCESS}
    assert writers(plan, f"{registry.signal_outcomes.name}.backfill") == {SPARK}  # the backfill's outcomes
    # Every topic of the deployment has its writer: a new topic needs its grant (or the service fails under ACLs).
    assert all(writers(plan, spec.name) for spec in registry.all()), [spec.name for spec in registry.all()]
    # serve reads Redis, and only the run list of Kafka (GET /runs): nothing else.
    assert [(grant.name, grant.operations) for grant in plan if grant.principal == SERVE] == [
        (registry.runs.name, ("READ", "DESCRIBE"))]


def test_readers_and_no_administrative_rights() -> None:
    registry = TopicRegistry()
    plan = grants(Deployment.default(registry))
    signals = registry.signals.name
    readers = {principal for principal in SERVICE_PRINCIPALS if may(plan, principal, "READ", "topic", signals)}
    assert readers == {MATERIALIZE, NOTIFY}
    # Nobody may alter or reconfigure topics, nor touch the cluster: only the operator may. Only
    # ``prune`` deletes, and only a run's topics and state (below).
    assert {operation for grant in plan for operation in grant.operations} <= {
        "READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "DELETE"}
    assert {grant.principal for grant in plan if "DELETE" in grant.operations} == {PRUNE}
    # A namespace's principals never reach another namespace's topics.
    other = TopicRegistry(prefix="other.")
    assert not any(may(plan, principal, "WRITE", "topic", other.signals.name) for principal in SERVICE_PRINCIPALS)


def test_transactional_ids_and_internal_topics_are_the_groups_own() -> None:
    deployment = Deployment.default(TopicRegistry())
    plan = grants(deployment)
    group = deployment.process_group
    assert may(plan, PROCESS, "WRITE", "transactional_id", f"{group}-0f3a")
    assert not may(plan, PROCESS, "WRITE", "transactional_id", "0f3a-random")
    assert may(plan, PROCESS, "WRITE", "topic", f"changelog__{group}--ticks--default")
    assert not may(plan, PROCESS, "WRITE", "topic", f"changelog__{deployment.composite_group}--ticks--default")


@pytest.mark.parametrize("prefix", ["", "t1."])
def test_a_runs_processor_writes_its_namespace_under_the_process_principal(prefix: str) -> None:
    """A shadow's (or a promoted run's) processor and a demoted live processor run as ``process``."""
    live = TopicRegistry(prefix=prefix)
    plan = grants(Deployment.default(live))
    for run_id in ("shadow-1", "live-3f0c9a1b2c3d4e5f"):
        run = live.for_run(run_id)
        group = run_group(prefix, run_id, "process")
        for spec in run.all():
            if spec.name == run.ticks.name:
                continue
            assert may(plan, PROCESS, "CREATE", "topic", spec.name), spec.name
        for spec in run.run_outputs():
            assert writers(plan, spec.name) == {PROCESS, SPARK}, spec.name
            assert not may(plan, PROCESS, "READ", "topic", spec.name), spec.name  # it only writes them
        assert may(plan, PROCESS, "READ", "group", group)
        assert may(plan, PROCESS, "WRITE", "transactional_id", f"{group}-0f3a")
        assert may(plan, PROCESS, "WRITE", "topic", f"changelog__{group}--ticks--default")
        assert may(plan, PROCESS, "READ", "topic", run.ticks.name)  # the live log, read only
        assert not may(plan, PROCESS, "WRITE", "topic", run.ticks.name)
    # Only the ``runs.`` names of its own deployment: no live name, no other deployment's run.
    runs_grants = [grant for grant in plan if grant.principal == PROCESS and grant.pattern == "prefixed"
                   and "runs." in grant.name]
    assert {grant.name for grant in runs_grants} == {
        f"{prefix}runs.", f"changelog__{prefix}runs.", f"repartition__{prefix}runs."}
    other = TopicRegistry(prefix="other.").for_run("shadow-1")
    assert not may(plan, PROCESS, "WRITE", "topic", other.signals.name)
    assert not may(plan, PROCESS, "READ", "group", run_group("other.", "shadow-1", "process"))
    # The other services reach no run's topics.
    for principal in (INGEST, MATERIALIZE, NOTIFY, COMPOSITE, SERVE):
        assert not may(plan, principal, "WRITE", "topic", live.for_run("shadow-1").signals.name), principal


def test_the_local_broker_listens_on_loopback_and_denies_by_default(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path, kafka_port=19680, kafka_controller_port=19681, kafka_sasl_port=19682)
    lines = dict(line.split("=", 1) for line in kafka_security.listener_properties(settings))
    assert lines["listeners"] == "PLAINTEXT://127.0.0.1:19680,SASL://127.0.0.1:19682,CONTROLLER://127.0.0.1:19681"
    assert "SASL:SASL_PLAINTEXT" in lines["listener.security.protocol.map"]
    assert lines["allow.everyone.if.no.acl.found"] == "false"
    assert lines["listener.name.sasl.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    kafka_security.require_loopback("127.0.0.1")
    kafka_security.require_loopback("localhost")
    for host in ("0.0.0.0", "10.1.2.3"):  # noqa: S104 - the address being refused
        with pytest.raises(kafka_security.UnsafeListenerError, match="not a loopback address"):
            kafka_security.require_loopback(host)


def test_sasl_password_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "process"
    secret.write_text("s3cret-from-file\n")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "process")
    monkeypatch.delenv("KAFKA_SASL_PASSWORD", raising=False)
    settings = KafkaSettings(_env_file=None)
    assert settings.client_config()["sasl.password"] == "s3cret-from-file"
    assert "s3cret" not in repr(settings)

    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "another")
    with pytest.raises(ValidationError, match="not both"):
        KafkaSettings(_env_file=None)
    monkeypatch.delenv("KAFKA_SASL_PASSWORD")
    secret.write_text("\n")
    with pytest.raises(ValidationError, match="is empty"):
        KafkaSettings(_env_file=None)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValidationError, match="cannot read"):
        KafkaSettings(_env_file=None)
    # An empty variable (how the stack's client environment unsets one) is unset.
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", "")
    assert KafkaSettings(_env_file=None).sasl_password is None


def _service_settings() -> list[type[KafkaSettings]]:
    from processors.composite.settings import CompositeSettings
    from processors.ingest.settings import IngestSettings
    from processors.materialize.settings import MaterializeSettings
    from processors.notify.settings import NotifySettings
    from processors.stream.settings import ProcessSettings
    from spark_jobs.settings import SparkJobSettings
    from stockstream.api.settings import ApiSettings

    return [IngestSettings, ProcessSettings, MaterializeSettings, NotifySettings, CompositeSettings, ApiSettings,
            SparkJobSettings]


@pytest.mark.parametrize("settings_class", _service_settings(), ids=lambda cls: cls.__name__)
def test_every_service_takes_the_stack_client_environment(settings_class, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``kafka-access env`` prints (other variables set empty) works for every service's settings."""
    secret = tmp_path / "user"
    secret.write_text("from-the-file\n")
    for name, value in {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                        "KAFKA_SASL_USERNAME": "user", "KAFKA_SASL_PASSWORD": "",
                        "KAFKA_SASL_PASSWORD_FILE": str(secret)}.items():
        monkeypatch.setenv(name, value)
    config = settings_class(_env_file=None).client_config()
    assert (config["sasl.username"], config["sasl.password"]) == ("user", "from-the-file")


@pytest.mark.parametrize("prefix", ["", "t1."])
def test_prune_deletes_only_a_runs_topics_and_state(prefix: str) -> None:
    """``stockstream runs prune`` (the scheduled job) as ``prune``: the run list, a run's names, nothing live."""
    live = TopicRegistry(prefix=prefix)
    deployment = Deployment.default(live)
    plan = grants(deployment)
    run = live.for_run("r1")
    group = run_group(prefix, "r1", "process")
    assert principal_of(["runs", "prune", "--yes"]) == PRUNE
    assert principal_of(["runs", "start"]) is None and principal_of(["process"]) == PROCESS
    for name in (*(spec.name for spec in run.run_outputs()), run.views_dlq.name, f"changelog__{group}--ticks--default"):
        assert may(plan, PRUNE, "DELETE", "topic", name) and may(plan, PRUNE, "DESCRIBE", "topic", name), name
        assert not may(plan, PRUNE, "WRITE", "topic", name) and not may(plan, PRUNE, "READ", "topic", name), name
    for spec in live.all():  # no live topic, not even the log of record
        assert not any(may(plan, PRUNE, operation, "topic", spec.name) for operation in ("DELETE", "WRITE", "READ"))
    assert not may(plan, PRUNE, "DELETE", "topic", f"changelog__{deployment.process_group}--ticks--default")
    assert not may(plan, PRUNE, "DELETE", "topic", live.runs.name)  # the run list itself
    assert may(plan, PRUNE, "READ", "topic", live.runs.name) and may(plan, PRUNE, "WRITE", "topic", live.runs.name)
    assert may(plan, PRUNE, "DESCRIBE", "group", group) and may(plan, PRUNE, "DESCRIBE", "group", deployment.process_group)
    assert not may(plan, PRUNE, "READ", "group", group)  # it never joins a group
    other = TopicRegistry(prefix="other.").for_run("r1")
    assert not may(plan, PRUNE, "DELETE", "topic", other.signals.name)
