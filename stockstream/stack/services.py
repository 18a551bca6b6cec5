"""The local real services: Apache Kafka (KRaft, from Maven Central jars), Redis, Prometheus,
and the exporters that let Prometheus watch Kafka (JMX exporter agent in the broker JVM) and Redis
(Alertmanager: alertmanager.py).

Each service knows how to prepare its files, build its command line and tell when it
really answers. :mod:`stockstream.stack.manager` drives them.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import Field

from processors.runtime.settings import ServiceSettings, env
from stockstream.kafka_access.admin import (
    create_acls,
    read_password,
    upsert_scram_users,
    write_missing_passwords,
)
from stockstream.kafka_access.plan import SCRAM_PRINCIPALS, Deployment, grants
from stockstream.stack import kafka_security

REPO_ROOT = Path(__file__).resolve().parents[2]


class StackSettings(ServiceSettings):
    """Where the local stack keeps its state and which loopback ports it binds."""

    state_dir: Path = Field(REPO_ROOT / ".stack", validation_alias=env("STACK_DIR"))
    kafka_libs_dir: Path = Field(REPO_ROOT / ".stack" / "kafka-libs", validation_alias=env("STACK_KAFKA_LIBS"))
    host: str = Field("127.0.0.1", validation_alias=env("STACK_HOST"))
    kafka_port: int = Field(9092, validation_alias=env("STACK_KAFKA_PORT"))
    kafka_controller_port: int = Field(9093, validation_alias=env("STACK_KAFKA_CONTROLLER_PORT"))
    kafka_sasl_port: int = Field(
        9096, validation_alias=env("STACK_KAFKA_SASL_PORT"),
        description="the SASL/SCRAM listener (per-service users, ACLs); STACK_KAFKA_PORT stays loopback PLAINTEXT",
    )
    kafka_heap: str = Field("768m", validation_alias=env("STACK_KAFKA_HEAP"))
    redis_port: int = Field(6379, validation_alias=env("STACK_REDIS_PORT"))
    prometheus_port: int = Field(9090, validation_alias=env("STACK_PROMETHEUS_PORT"))
    prometheus_retention_size: str = Field("2GB", validation_alias=env("STACK_PROMETHEUS_RETENTION_SIZE"))
    kafka_jmx_port: int = Field(9404, validation_alias=env("STACK_KAFKA_JMX_PORT"))
    kafka_credentials_dir: Path | None = Field(
        None, validation_alias=env("STACK_KAFKA_CREDENTIALS_DIR"),
        description="the Kafka users' password files; default <STACK_DIR>/kafka/credentials",
    )
    redis_exporter_port: int = Field(9121, validation_alias=env("STACK_REDIS_EXPORTER_PORT"))
    prometheus_config: Path = Field(REPO_ROOT / "ops/prometheus/prometheus.yml",
                                    validation_alias=env("STACK_PROMETHEUS_CONFIG"))
    # 9093 is the Kafka controller's and 9094 Alertmanager's usual cluster port: 9095.
    alertmanager_port: int = Field(9095, validation_alias=env("STACK_ALERTMANAGER_PORT"))
    alertmanager_config: Path = Field(REPO_ROOT / "ops/alertmanager/alertmanager.yml",
                                      validation_alias=env("STACK_ALERTMANAGER_CONFIG"))
    start_timeout_s: float = Field(90.0, validation_alias=env("STACK_START_TIMEOUT"))

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.host}:{self.redis_port}/0"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.host}:{self.alertmanager_port}"


class MissingToolError(RuntimeError):
    """A binary the stack needs is not installed; the message says how to install it."""


class Service(Protocol):
    name: str

    def port(self) -> int: ...
    def prepare(self) -> None: ...
    def command(self) -> list[str]: ...
    def ready(self) -> bool: ...


def _require(binary: str, install_hint: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise MissingToolError(f"`{binary}` not found: {install_hint}")
    return path


@dataclass
class Kafka:
    """Kafka broker+controller in one JVM (KRaft combined mode), single node."""

    settings: StackSettings
    name: str = "kafka"

    @property
    def home(self) -> Path:
        return self.settings.state_dir / "kafka"

    @property
    def libs(self) -> Path:
        return self.settings.kafka_libs_dir

    @property
    def agent_dir(self) -> Path:
        """The Prometheus JMX exporter agent, kept apart from the broker's class path."""
        return self.libs.parent / f"{self.libs.name}-agent"

    def agent_jar(self) -> Path:
        jars = sorted(self.agent_dir.glob("jmx_prometheus_javaagent-*.jar"))
        if not jars:
            raise MissingToolError(f"no JMX exporter agent in {self.agent_dir}: run `make kafka-jars`")
        return jars[-1]

    def port(self) -> int:
        return self.settings.kafka_port

    def resolve_jars(self) -> None:
        """Copy the broker jars and the JMX exporter agent from Maven Central (via ~/.m2).

        Done again only when ops/kafka/pom.xml changed (the marker holds its hash); otherwise free.
        """
        pom = REPO_ROOT / "ops/kafka/pom.xml"
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()
        marker = self.libs / ".complete"
        if marker.exists() and marker.read_text().strip() == digest and any(self.agent_dir.glob("*.jar")):
            return
        mvn = _require("mvn", "install Maven (apt-get install maven)")
        for folder, selection in ((self.libs, "-DexcludeArtifactIds=jmx_prometheus_javaagent"),
                                  (self.agent_dir, "-DincludeArtifactIds=jmx_prometheus_javaagent")):
            folder.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(  # noqa: S603
                [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
                 f"-DoutputDirectory={folder}", "-DincludeScope=runtime", selection],
                capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise MissingToolError(
                    "could not resolve the Kafka jars from Maven Central:\n" + result.stdout[-2000:]
                )
        marker.write_text(digest + "\n")

    def prepare(self) -> None:
        _require("java", "install a Java 17 runtime (apt-get install openjdk-17-jre-headless)")
        self.resolve_jars()
        data = self.home / "data"
        self.home.mkdir(parents=True, exist_ok=True)
        kafka_security.require_loopback(self.settings.host)
        write_missing_passwords(kafka_security.credentials_dir(self.settings), SCRAM_PRINCIPALS)
        host, cport = self.settings.host, self.settings.kafka_controller_port
        (self.home / "server.properties").write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{host}:{cport}",
                *kafka_security.listener_properties(self.settings),
                f"log.dirs={data}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=10",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "log.retention.hours=-1",
                "log.retention.check.interval.ms=300000",
                "",
            ])
        )
        (self.home / "log4j2.properties").write_text(
            "\n".join([
                "status = warn",
                "appender.console.type = Console",
                "appender.console.name = STDOUT",
                "appender.console.layout.type = PatternLayout",
                "appender.console.layout.pattern = [%d] %p %m (%c)%n",
                "rootLogger.level = warn",
                "rootLogger.appenderRef.stdout.ref = STDOUT",
                "logger.server.name = kafka.server.KafkaRaftServer",
                "logger.server.level = info",
                "logger.broker.name = kafka.server.BrokerServer",
                "logger.broker.level = info",
                "",
            ])
        )
        if not (data / "meta.properties").exists():
            result = subprocess.run(  # noqa: S603
                [*self._java(), "kafka.tools.StorageTool", "format", "--ignore-formatted",
                 "-t", uuid.uuid4().hex[:22], "-c", str(self.home / "server.properties")],
                capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise RuntimeError("kafka storage format failed:\n" + (result.stdout + result.stderr)[-2000:])

    def _java(self) -> list[str]:
        return [
            _require("java", "install Java 17"),
            "-Xms256m", f"-Xmx{self.settings.kafka_heap}", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp", f"{self.libs}/*",
        ]

    def command(self) -> list[str]:
        # The JMX exporter agent serves the broker's metrics (under-replicated partitions, ISR
        # shrinks, offline partitions …) on its own loopback port, with the rules every deployment uses.
        agent = (f"-javaagent:{self.agent_jar()}={self.settings.host}:{self.settings.kafka_jmx_port}"
                 f":{REPO_ROOT / 'ops/kafka/jmx-exporter.yml'}")
        java = self._java()
        return [java[0], agent, *java[1:], "kafka.Kafka", str(self.home / "server.properties")]

    def ready(self) -> bool:
        from confluent_kafka.admin import AdminClient

        try:
            client = AdminClient(
                {"bootstrap.servers": self.settings.kafka_bootstrap, "socket.timeout.ms": 2000, "log_level": 0}
            )
            metadata = client.list_topics(timeout=2)
            return bool(metadata.brokers)
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False

    def after_ready(self) -> None:
        """Create the SCRAM users (from the credential files) and the default deployment's ACLs.

        Called by ``Stack.up`` once the broker answers, also when it was already running (idempotent);
        a failure is a ``KafkaAccessError`` naming the user or the ACL. Nothing to do for a broker
        started by an older release (no SASL listener until its restart).
        """
        from confluent_kafka.admin import AdminClient

        if not kafka_security.is_secured(self.settings):
            return
        credentials = kafka_security.credentials_dir(self.settings)
        # A user added by a newer release (``prune``) gets its password here too, without a broker restart.
        write_missing_passwords(credentials, SCRAM_PRINCIPALS)
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 0})
        upsert_scram_users(admin, {user: read_password(credentials, user) for user in SCRAM_PRINCIPALS})
        create_acls(admin, grants(Deployment.default()))


@dataclass
class Redis:
    """redis-server with append-only persistence under the state folder."""

    settings: StackSettings
    name: str = "redis"

    def port(self) -> int:
        return self.settings.redis_port

    def prepare(self) -> None:
        _require("redis-server", "install Redis (apt-get install redis-server)")
        (self.settings.state_dir / "redis").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            _require("redis-server", "install Redis (apt-get install redis-server)"),
            "--bind", self.settings.host, "--port", str(self.settings.redis_port),
            "--dir", str(self.settings.state_dir / "redis"),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
        ]

    def ready(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.settings.redis_url, socket_timeout=1).ping())
        except redis.RedisError:
            return False


@dataclass
class RedisExporter:
    """Debian's prometheus-redis-exporter: Redis memory, clients, keys, persistence as metrics."""

    settings: StackSettings
    name: str = "redis-exporter"

    def port(self) -> int:
        return self.settings.redis_exporter_port

    def prepare(self) -> None:
        _require("prometheus-redis-exporter", "install it (apt-get install prometheus-redis-exporter)")

    def command(self) -> list[str]:
        return [
            _require("prometheus-redis-exporter", "install it (apt-get install prometheus-redis-exporter)"),
            f"-redis.addr=redis://{self.settings.host}:{self.settings.redis_port}",
            f"-web.listen-address={self.settings.host}:{self.settings.redis_exporter_port}",
        ]

    def ready(self) -> bool:
        """Answers, and reaches Redis (redis_up 1)."""
        try:
            url = f"http://{self.settings.host}:{self.settings.redis_exporter_port}/metrics"
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310
                return any(line.strip() == "redis_up 1" for line in answer.read().decode().splitlines())
        except OSError:
            return False


@dataclass
class Prometheus:
    """Prometheus scraping every stockstream service, with our alert rules."""

    settings: StackSettings
    name: str = "prometheus"

    def port(self) -> int:
        return self.settings.prometheus_port

    @property
    def config_file(self) -> Path:
        return self.settings.state_dir / "prometheus.yml"

    def prepare(self) -> None:
        _require("prometheus", "install Prometheus (apt-get install prometheus)")
        (self.settings.state_dir / "prometheus").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(render_prometheus_config(self.settings))

    def command(self) -> list[str]:
        return [
            _require("prometheus", "install Prometheus (apt-get install prometheus)"),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.settings.state_dir / 'prometheus'}",
            f"--web.listen-address={self.settings.host}:{self.settings.prometheus_port}",
            "--storage.tsdb.retention.time=15d",
            # Whichever comes first: a busy pipeline must not fill the disk within the 15 days.
            f"--storage.tsdb.retention.size={self.settings.prometheus_retention_size}",
        ]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.settings.prometheus_url}/-/ready", timeout=1) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except OSError:
            return False


def render_prometheus_config(settings: StackSettings) -> str:
    """ops/prometheus/prometheus.yml (STACK_PROMETHEUS_CONFIG) for this stack: its own ports for Prometheus,
    the exporters and its Alertmanager.

    The repository file names the default ports (what ``make run`` uses); a stack on other ports
    (STACK_*_PORT: a private test stack) scrapes its own exporters, never the shared stack's, and sends
    its alerts to its own Alertmanager. Rule files are made absolute, since the rendered copy lives in
    the stack's state folder.
    """
    import yaml

    source = settings.prometheus_config.resolve()
    config = yaml.safe_load(source.read_text())
    config["rule_files"] = [str(source.parent / pattern) for pattern in config.get("rule_files", [])]
    own = {"prometheus": settings.prometheus_port, "kafka": settings.kafka_jmx_port,
           "redis": settings.redis_exporter_port}
    for job in config["scrape_configs"]:
        if job["job_name"] in own:
            job["static_configs"] = [{"targets": [f"{settings.host}:{own[job['job_name']]}"]}]
    config["alerting"] = {"alertmanagers": [
        {"static_configs": [{"targets": [f"{settings.host}:{settings.alertmanager_port}"]}]}]}
    return f"# rendered by `stockstream stack up` from {source}\n" + yaml.safe_dump(config, sort_keys=False)


def all_services(settings: StackSettings) -> list[Service]:
    return [Kafka(settings), Redis(settings), RedisExporter(settings), Prometheus(settings)]
