"""The Kafka access plan (who may write/read which topic), the local broker's listeners and the
SASL password read from a file. The broker enforcing the plan: tests/integration/stack/test_stack_kafka_acl.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from processors.runtime.settings import KafkaSettings
from schemas.topics import TopicRegistry
from stockstream.kafka_access.plan import (
    COMPOSITE,
    INGEST,
    MATERIALIZE,
    NOTIFY,
    PROCESS,
    SERVE,
    SERVICE_PRINCIPALS,
    SPARK,
    Deployment,
    grants,
    may,
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
    assert writers(plan, registry.name("runs.sweep-1")) == {SPARK}
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
    # Nobody may delete, alter or reconfigure topics, nor touch the cluster: only the operator may.
    assert {operation for grant in plan for operation in grant.operations} <= {
        "READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS"}
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
