"""The manifests' broker security, run for real without containers (issue 18; docs/security.md).

The Compose file's Kafka environment becomes server.properties the way the apache/kafka image turns
``KAFKA_*`` variables into properties (ops/podman/kafka-standin/run does the same), with free
loopback ports and the secret files in a temporary folder, and runs from the local stack's broker
jars. Then, as a deployment would: ``stockstream kafka-access apply`` creates the SCRAM users and the
ACLs as ``operator`` over the INTERNAL listener (PLAIN, its password read by Kafka's
DirectoryConfigProvider), kafka-ready.sh passes with its SASL file (and fails without it), and on the
CLIENT listener the processor's user may write ``signals`` while ingest's is refused and a wrong
password does not authenticate. The Kubernetes brokers carry the same security settings
(test_deploy_access.py compares them).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stockstream.kafka_access.plan import SCRAM_PRINCIPALS
from tests.integration.deploy.deploy_support import REPO, STOCKSTREAM, compose_services
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port

pytestmark = pytest.mark.integration
# Set by the image's own scripts or the JVM launcher, never broker properties.
NOT_PROPERTIES = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_LOG4J_OPTS"}
LOG4J = """rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
logger.server.name = kafka.server.BrokerServer
logger.server.level = INFO
"""


def property_name(variable: str) -> str:
    """apache/kafka's rule: KAFKA_ dropped, ___ -> -, __ -> _, _ -> ., lower case."""
    return (variable.removeprefix("KAFKA_").lower().replace("___", "-").replace("__", "@").replace("_", ".")
            .replace("@", "_"))


@dataclass
class Broker:
    client: str  # the CLIENT listener (SCRAM), as the services reach it
    internal: str  # the INTERNAL listener (PLAIN), as kafka-access and the readiness check reach it
    secrets: Path  # the broker's PLAIN password files (broker, operator)
    users: Path  # one password file per SCRAM user, as the kafka-access Secret mounts them
    home: Path  # /opt/kafka as the image lays it out, for kafka-ready.sh


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    from stockstream.stack.services import Kafka, StackSettings

    jars = Kafka(StackSettings())
    jars.resolve_jars()
    folder = tmp_path_factory.mktemp("compose-broker")
    service = compose_services()["kafka"]
    env = {name: str(value) for name, value in service["environment"].items()}
    ports = {"9092": free_port(), "9093": free_port(), "9094": free_port()}
    secrets, users = folder / "secrets", folder / "users"
    secrets.mkdir()
    users.mkdir()
    for user in SCRAM_PRINCIPALS:
        (users / user).write_text(f"{user}-{os.getpid()}-password")
    (secrets / "operator").write_text((users / "operator").read_text())
    (secrets / "broker").write_text(f"broker-{os.getpid()}-password")
    # The secret files are where Compose mounts them ({source, target} of the kafka service).
    targets = {secret["target"] for secret in service["secrets"]}
    assert targets == {"/etc/kafka/secrets/broker", "/etc/kafka/secrets/operator"}
    lines = []
    for name, value in sorted(env.items()):
        if not name.startswith("KAFKA_") or name in NOT_PROPERTIES:
            continue
        for port, free in ports.items():
            value = value.replace(f"kafka:{port}", f"127.0.0.1:{free}").replace(f"://:{port}", f"://127.0.0.1:{free}")
        value = value.replace("/etc/kafka/secrets", str(secrets)).replace("/var/lib/kafka/data", str(folder / "data"))
        lines.append(f"{property_name(name)}={value}")
    properties = folder / "server.properties"
    properties.write_text("\n".join(lines) + "\n")
    (folder / "log4j2.properties").write_text(LOG4J)
    java = ["java", "-cp", f"{jars.libs}/*",
            f"-Dlog4j2.configurationFile={folder / 'log4j2.properties'}"]
    subprocess.run([*java, "-Xmx256m", "kafka.tools.StorageTool", "format", "--ignore-formatted",
                    "-t", env["CLUSTER_ID"], "-c", str(properties)], check=True, capture_output=True, timeout=120)
    log = (folder / "broker.log").open("w")
    process = subprocess.Popen([*java, "-Xmx512m", "-XX:+UseSerialGC", "kafka.Kafka", str(properties)],
                               stdout=log, stderr=subprocess.STDOUT)
    home = folder / "home"
    (home / "bin").mkdir(parents=True)
    (home / "libs").symlink_to(jars.libs)
    for name in ("topics", "broker-api-versions"):
        (home / "bin" / f"kafka-{name}.sh").symlink_to(REPO / "ops/podman/kafka-standin/tool")
    try:
        def started() -> bool:
            assert process.poll() is None, (folder / "broker.log").read_text()[-3000:]
            return "Transition from STARTING to STARTED" in (folder / "broker.log").read_text()

        wait_until(started, timeout_s=120, interval_s=1, message="the broker with the Compose file's security")
        yield Broker(f"127.0.0.1:{ports['9092']}", f"127.0.0.1:{ports['9094']}", secrets, users, home)
    finally:
        process.terminate()
        process.wait(60)
        log.close()


def kafka_access_env(broker: Broker) -> dict[str, str]:
    """The kafka-access service's environment, pointed at this broker."""
    given = {name: str(value) for name, value in compose_services()["kafka-access"]["environment"].items()}
    assert given["KAFKA_SASL_USERNAME"] == "operator" and given["KAFKA_SASL_MECHANISM"] == "PLAIN"
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
            **given, "KAFKA_BOOTSTRAP_SERVERS": broker.internal,
            "KAFKA_SASL_PASSWORD_FILE": str(broker.users / "operator")}


def ready(broker: Broker, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_HOME": str(broker.home), "KAFKA_NODE_ID": "1", "READY_BOOTSTRAP": broker.internal,
           **extra}
    return subprocess.run(["sh", str(REPO / "ops/kafka/kafka-ready.sh")], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def scram(broker: Broker, user: str, password: str | None = None) -> dict[str, str]:
    return {"bootstrap.servers": broker.client, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user,
            "sasl.password": password or (broker.users / user).read_text()}


def test_kafka_access_creates_the_users_and_acls_over_the_internal_listener(broker: Broker) -> None:
    command = compose_services()["kafka-access"]["command"]
    assert command[:2] == ["kafka-access", "apply"]
    args = [arg if arg != command[command.index("--credentials") + 1] else str(broker.users) for arg in command]
    result = subprocess.run([STOCKSTREAM, *args], env=kafka_access_env(broker),
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "users: " + ", ".join(SCRAM_PRINCIPALS) in result.stderr
    for user in SCRAM_PRINCIPALS:  # no password is printed
        assert (broker.users / user).read_text() not in result.stdout + result.stderr
    again = subprocess.run([STOCKSTREAM, *args], env=kafka_access_env(broker),
                           capture_output=True, text=True, timeout=180, check=False)
    assert again.returncode == 0, again.stderr  # idempotent: every `up` runs it


def test_readiness_check_asks_with_its_sasl_file(broker: Broker) -> None:
    env = {name: str(value) for name, value in compose_services()["kafka"]["environment"].items()}
    assert env["READY_SASL_PASSWORD_FILE"] == "/etc/kafka/secrets/broker"
    checked = ready(broker, READY_SASL_PASSWORD_FILE=str(broker.secrets / "broker"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "broker 1 is unfenced" in checked.stdout
    assert ready(broker).returncode == 1  # without credentials the broker does not answer the tools


def test_only_the_processor_writes_signals_and_a_wrong_password_fails(broker: Broker) -> None:
    from confluent_kafka import KafkaException, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    subprocess.run([STOCKSTREAM, "kafka-access", "apply", "--credentials", str(broker.users)],
                   env=kafka_access_env(broker), check=True, capture_output=True, timeout=180)
    admin = AdminClient(scram(broker, "process"))
    for future in admin.create_topics([NewTopic("signals", 1, 1)], request_timeout=30).values():
        try:
            future.result()
        except KafkaException as error:
            assert "TOPIC_ALREADY_EXISTS" in str(error), error

    def produce(config: dict[str, str]) -> list[object]:
        errors: list[object] = []
        producer = Producer({**config, "message.timeout.ms": "10000"})
        producer.produce("signals", b"{}", on_delivery=lambda error, _message: errors.append(error))
        producer.flush(30)
        return errors

    assert produce(scram(broker, "process")) == [None]
    [refused] = produce(scram(broker, "ingest"))
    assert refused is not None and "TOPIC_AUTHORIZATION_FAILED" in str(refused)
    [failed] = produce(scram(broker, "process", password="not-the-password"))
    assert failed is not None
    assert json.dumps(str(failed))  # a librdkafka error, not a delivery
