"""``stockstream run``'s service list: ingest follows INGEST_SOURCE/INGEST_SYMBOLS, the composite runs on request."""

from __future__ import annotations

from pathlib import Path

from stockstream.supervisor import default_services

ALL = {"ingest", "process", "composite", "materialize", "notify", "serve"}


def test_ingest_takes_its_source_from_the_environment_not_a_hard_coded_simulator():
    services = default_services(ALL, 8000, {"INGEST_SOURCE": "kraken", "INGEST_SYMBOLS": "BTC-USD"})
    ingest = next(spec for spec in services if spec.name == "ingest")
    assert ingest.args == ("ingest",)  # the child inherits INGEST_SOURCE / INGEST_SYMBOLS
    assert ingest.url.startswith("kraken ")
    assert default_services(ALL, 8000, {})[0].url.startswith("simulator ")


def test_the_composite_runs_only_when_composite_symbols_names_some():
    assert "composite" not in {spec.name for spec in default_services(ALL, 8000, {})}
    names = [spec.name for spec in default_services(ALL, 8000, {"COMPOSITE_SYMBOLS": "BTC-USD"})]
    assert names == ["ingest", "process", "composite", "materialize", "notify", "serve"]



def test_each_service_runs_as_its_own_kafka_user_on_a_secured_stack(tmp_path):
    from stockstream.stack import kafka_security
    from stockstream.stack.services import StackSettings
    from stockstream.supervisor import kafka_environment

    stack = StackSettings(state_dir=tmp_path, kafka_sasl_port=19696)
    # An older broker (no SASL listener in its server.properties): the services keep PLAINTEXT.
    assert kafka_environment("process", stack, {}) == {}
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "server.properties").write_text("\n".join(kafka_security.listener_properties(stack)))
    process = kafka_environment("process", stack, {})
    assert process["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19696"
    assert process["KAFKA_SASL_USERNAME"] == "process"
    assert process["KAFKA_SASL_PASSWORD_FILE"] == str(tmp_path / "kafka" / "credentials" / "process")
    assert kafka_environment("serve", stack, {})["KAFKA_SASL_USERNAME"] == "serve"
    # The caller's own cluster or deployment: left alone (the stack's ACLs would not fit).
    assert kafka_environment("process", stack, {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}) == {}
    assert kafka_environment("process", stack, {"STOCKSTREAM_TOPIC_PREFIX": "dev."}) == {}


def test_kafka_credentials_give_each_service_its_own_user_and_password_file_on_the_callers_cluster(tmp_path: Path) -> None:
    from stockstream.stack.services import StackSettings
    from stockstream.supervisor import kafka_environment

    stack = StackSettings(state_dir=tmp_path / "stack")
    folder = tmp_path / "secrets"
    caller = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9096", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
              "STOCKSTREAM_TOPIC_PREFIX": "prod.", "KAFKA_SASL_USERNAME": "operator", "KAFKA_SASL_PASSWORD": "x"}
    for service in ("ingest", "process", "materialize", "notify", "serve", "composite"):
        variables = kafka_environment(service, stack, caller, folder)
        # The caller's address, protocol and deployment stay (inherited); the user and its file are the service's own,
        # and the caller's password never reaches a child (empty = unset).
        assert variables == {"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": service,
                             "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": str(folder / service)}
    assert kafka_environment("process", stack, {**caller, "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"},
                             folder)["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256"


def test_kafka_credentials_that_cannot_work_are_refused_before_anything_starts(tmp_path: Path) -> None:
    import pytest

    from stockstream.supervisor import check_credentials

    services = default_services(ALL, 8000, {})
    folder = tmp_path / "secrets"
    with pytest.raises(ValueError, match="is not a folder"):
        check_credentials(services, folder, {})
    folder.mkdir()
    for user in ("ingest", "process", "notify", "operator"):
        (folder / user).write_text("secret\n")
    with pytest.raises(ValueError, match="no password file for materialize, serve in"):
        check_credentials(services, folder, {})
    for user in ("materialize", "serve"):
        (folder / user).write_text("secret\n")
    cluster = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9096", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    check_credentials(services, folder, cluster)
    # Not for the local stack's default (every service is its own user there already, with the stack's passwords).
    with pytest.raises(ValueError, match="is for a cluster of your own: set KAFKA_BOOTSTRAP_SERVERS"):
        check_credentials(services, folder, {})
    with pytest.raises(ValueError, match="needs KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT or SASL_SSL"):
        check_credentials(services, folder, {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"})
    # The composite's user is needed only when the composite runs.
    with pytest.raises(ValueError, match="no password file for composite"):
        check_credentials(default_services(ALL, 8000, {"COMPOSITE_SYMBOLS": "BTC-USD"}), folder, cluster)
