"""What a first ``kubectl apply`` (or ``docker compose up``) would have hit, held by tests.

Each test names the defect it holds (issue 21): Kafka readiness and rolling restarts, Redis probes
and user, Spark memory and /tmp, the processor's identity, exporters and retention. Rendered
manifests and the Compose file are checked here (no cluster, no engine); the readiness script and
the Redis probe run for real against local servers. The images themselves are built and run by
tests/integration/deploy/test_deploy_containers.py (``make test-deploy``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.deploy.deploy_support import (
    OVERLAYS,
    REPO,
    compose_services,
    one,
    pod_metadata,
    pod_spec,
    render,
)
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port

READY_SCRIPT = "/opt/stockstream-kafka/kafka-ready.sh"
UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
         "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def size(text: str | int) -> int:
    """``1536m``, ``2Gi``, ``768mb``, ``8GB``, bytes -> bytes (Spark, Kubernetes, Redis, Prometheus units)."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", text.strip())
    assert match, text
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def resources(overlay: str) -> tuple[dict[str, Any], ...]:
    return render(overlay)


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod_spec(workload)["containers"] if c["name"] == name)


def env_of(spec: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in spec.get("env", [])}


# ---------------------------------------------------------------------------------------------
# Kafka: a rolling restart waits for the restarted broker to be unfenced and in sync


def test_kafka_readiness_is_unfenced_and_in_sync_not_an_open_port(resources: tuple[dict[str, Any], ...]) -> None:
    kafka = one(resources, "StatefulSet", "kafka")
    broker = container(kafka, "kafka")
    probe = broker["readinessProbe"]
    assert probe["exec"]["command"] == ["sh", READY_SCRIPT]
    # The tool JVMs of the check need seconds on a busy node: the timeout must allow for them.
    assert probe["timeoutSeconds"] >= 20 and probe["periodSeconds"] >= probe["timeoutSeconds"] // 2
    assert kafka["spec"]["minReadySeconds"] >= 30
    assert "KAFKA_NODE_ID" in {e["name"] for e in broker["env"]}  # the script's own id
    assert kafka["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert broker["image"].split("/")[-1].startswith("stockstream-kafka:")


def test_the_broker_image_carries_the_check_and_the_exporter() -> None:
    containerfile = (REPO / "ops/kafka/Containerfile").read_text()
    assert "COPY jmx-exporter.yml kafka-ready.sh /opt/stockstream-kafka/" in containerfile
    assert re.search(r"ENV KAFKA_OPTS=\"-javaagent:/opt/stockstream-kafka/jmx_prometheus_javaagent\.jar=9404:"
                     r"/opt/stockstream-kafka/jmx-exporter\.yml\"", containerfile)
    pom = (REPO / "ops/kafka/pom.xml").read_text()
    assert "<artifactId>jmx_prometheus_javaagent</artifactId>" in pom


def test_prod_brokers_never_share_a_node(resources: tuple[dict[str, Any], ...], overlay: str) -> None:
    spec = pod_spec(one(resources, "StatefulSet", "kafka"))
    anti = spec["affinity"]["podAntiAffinity"]
    if overlay == "prod":
        [term] = anti["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "kafka"}
        assert "preferredDuringSchedulingIgnoredDuringExecution" not in anti
        [spread] = spec["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["maxSkew"] == 1
    else:  # a dev cluster may have a single node
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti


@pytest.fixture(scope="module")
def kafka_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/opt/kafka as the broker image lays it out: the stack's jars and the official tool names."""
    from stockstream.stack.services import Kafka, StackSettings

    broker = Kafka(StackSettings())
    broker.resolve_jars()
    home = tmp_path_factory.mktemp("kafka-home")
    (home / "libs").symlink_to(broker.libs)
    (home / "bin").mkdir()
    for name in ("topics", "broker-api-versions"):
        (home / "bin" / f"kafka-{name}.sh").symlink_to(REPO / "ops/podman/kafka-standin/tool")
    return home


def ready_check(home: Path, bootstrap: str, node: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_HOME": str(home), "KAFKA_READY_BOOTSTRAP": bootstrap, "KAFKA_NODE_ID": node,
           # As in the broker container: the agent's flags must not reach the tools' JVMs.
           "KAFKA_OPTS": "-javaagent:/nonexistent.jar"}
    return subprocess.run(["sh", str(REPO / "ops/kafka/kafka-ready.sh")], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_readiness_check_passes_on_a_running_broker_and_fails_for_another_id(stack, kafka_home: Path) -> None:
    ready = ready_check(kafka_home, stack.kafka_bootstrap, "1")
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "broker 1 is unfenced and in every in-sync replica set" in ready.stdout
    absent = ready_check(kafka_home, stack.kafka_bootstrap, "7")
    assert absent.returncode == 1 and "broker 7 is not in its own metadata yet" in absent.stdout


def test_readiness_check_fails_while_this_broker_is_outside_an_isr(stack, tmp_path: Path, kafka_home: Path) -> None:
    """Partitions lagging on this broker make it unready; those missing another broker do not.

    kafka-topics is replaced by its recorded output for a 3-broker cluster (the local stack has one
    broker); the membership check still asks the real broker.
    """
    home = tmp_path / "kafka"
    (home / "bin").mkdir(parents=True)
    (home / "libs").symlink_to(kafka_home / "libs")
    (home / "bin" / "kafka-broker-api-versions.sh").symlink_to(kafka_home / "bin" / "kafka-broker-api-versions.sh")
    described = ("\tTopic: ticks\tTopicId: 2xq\tPartition: 0\tLeader: 2\tReplicas: 2,1,3\tIsr: 2,3\tElr: \t"
                 "LastKnownElr: \n"
                 "\tTopic: ticks\tTopicId: 2xq\tPartition: 1\tLeader: 3\tReplicas: 3,2,4\tIsr: 3,2\tElr: \t"
                 "LastKnownElr: \n")
    tool = home / "bin" / "kafka-topics.sh"
    tool.write_text(f"#!/bin/sh\nprintf '%s' '{described}'\n")
    tool.chmod(0o755)
    lagging = ready_check(home, stack.kafka_bootstrap, "1")
    assert lagging.returncode == 1 and "broker 1 is behind on 1 partition(s)" in lagging.stdout, lagging
    tool.write_text("#!/bin/sh\nprintf '%s' '\tTopic: ticks\tPartition: 1\tLeader: 3\tReplicas: 3,1,4\tIsr: 3,1\n'\n")
    other = ready_check(home, stack.kafka_bootstrap, "1")
    assert other.returncode == 0, other.stdout + other.stderr  # broker 4 lags, not this one


# ---------------------------------------------------------------------------------------------
# Redis: probes that fail on an error answer; not root in Compose; maxmemory under the limit


def test_every_redis_probe_fails_on_an_error_answer(resources: tuple[dict[str, Any], ...]) -> None:
    redis = container(one(resources, "StatefulSet", "redis"), "redis")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert redis[probe]["exec"]["command"] == ["redis-cli", "--user", "monitor", "-e", "ping"], probe
    # Compose: the same, its password read from the monitor user's secret file into REDISCLI_AUTH.
    assert compose_services()["redis"]["healthcheck"]["test"] == [
        "CMD", "sh", "-c", "REDISCLI_AUTH=$(cat /etc/redis/users/monitor) exec redis-cli --user monitor -e ping"]


def test_redis_cli_e_is_what_tells_an_error_answer_apart(tmp_path: Path) -> None:
    """Against a real redis-server with a password: plain ping exits 0 on NOAUTH, ``-e`` exits 1."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server not found (make setup installs it)"
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "s3cret",
                               "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = ["redis-cli", "-p", str(port)]
        clean = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}

        def cli(*args: str, env: dict[str, str] = clean) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*base, *args], env=env, capture_output=True, text=True, timeout=30, check=False)

        wait_until(lambda: "NOAUTH" in cli("ping").stdout, timeout_s=120, message="redis-server to answer")
        plain, strict = cli("ping"), cli("-e", "ping")
        assert plain.returncode == 0 and "NOAUTH" in plain.stdout  # the old probe: "healthy"
        assert strict.returncode == 1
        assert cli("-e", "ping", env={**clean, "REDISCLI_AUTH": "s3cret"}).returncode == 0
    finally:
        server.terminate()
        server.wait(30)


def test_compose_redis_runs_as_the_redis_user() -> None:
    redis = compose_services()["redis"]
    # The start script (ACL users, then redis-server) skips the image entry point's user switch: set user.
    assert redis["command"][:2] == ["sh", "/etc/redis/start/redis-start.sh"]
    uid, _, gid = str(redis.get("user", "")).partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0


def test_redis_maxmemory_leaves_room_under_the_limit(resources: tuple[dict[str, Any], ...]) -> None:
    redis = container(one(resources, "StatefulSet", "redis"), "redis")
    args = redis["args"]
    maxmemory = size(args[args.index("--maxmemory") + 1])
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    # AOF rewrites fork: copy-on-write pages need room above the data set.
    assert maxmemory <= 0.8 * size(redis["resources"]["limits"]["memory"])


# ---------------------------------------------------------------------------------------------
# Spark: every JVM and Python worker of a worker container fits its memory limit; /tmp executable

PYTHON_WORKER = 512 * 1024**2  # one Python worker with pandas and pyarrow loaded, per core
JVM_NON_HEAP = 256 * 1024**2


def executor_overhead(executor: int, configured: str | None) -> int:
    return size(configured) if configured else max(384 * 1024**2, executor // 10)


def check_worker_budget(where: str, limit: int, args: list[str], worker_env: dict[str, str],
                        job_env: dict[str, str]) -> None:
    """Worker JVM heap + non-heap + executors (heap + overhead) <= limit; the overhead holds the
    Python workers; the job's executors fit what the worker grants."""
    cores = int(args[args.index("--cores") + 1])
    granted = size(args[args.index("--memory") + 1])
    daemon = size(worker_env.get("SPARK_DAEMON_MEMORY", "1g"))
    executor = size(job_env.get("SPARK_EXECUTOR_MEMORY", "1g"))
    overhead = executor_overhead(executor, job_env.get("SPARK_EXECUTOR_MEMORY_OVERHEAD"))
    assert executor <= granted, f"{where}: an executor of {executor} never fits the worker's --memory {granted}"
    executors = granted // executor
    total = daemon + JVM_NON_HEAP + executors * (executor + overhead)
    assert total <= limit, f"{where}: {total / 2**30:.2f} GiB of JVMs and Python workers in a {limit / 2**30:.2f} GiB limit"
    assert overhead >= 256 * 1024**2 + cores * PYTHON_WORKER // executors, \
        f"{where}: the executor overhead cannot hold {cores} Python worker(s) with pandas and pyarrow"


def test_spark_worker_memory_fits_its_limit(resources: tuple[dict[str, Any], ...]) -> None:
    worker = container(one(resources, "Deployment", "spark-worker"), "worker")
    job = pod_spec(one(resources, "CronJob", "backfill"))["containers"][0]
    check_worker_budget("spark-worker", size(worker["resources"]["limits"]["memory"]), worker["args"],
                        env_of(worker), env_of(job))
    # The driver (client mode, in the Job's pod): its heap, non-heap and the Python driver.
    driver = size(env_of(job)["SPARK_DRIVER_MEMORY"])
    assert driver + JVM_NON_HEAP + PYTHON_WORKER <= size(job["resources"]["limits"]["memory"])


def test_compose_spark_memory_fits_and_tmp_allows_native_libraries() -> None:
    services = compose_services()
    worker, backfill = services["spark-worker"], services["backfill"]
    check_worker_budget("compose spark-worker", size(worker["mem_limit"]), worker["command"],
                        {k: str(v) for k, v in worker["environment"].items()},
                        {k: str(v) for k, v in backfill["environment"].items()})
    for name in ("spark-worker", "backfill"):
        [mount] = services[name]["tmpfs"]
        path, _, options = mount.partition(":")
        assert path == "/tmp" and "exec" in options.split(",") and "noexec" not in options.split(","), name
        assert services[name]["environment"]["SPARK_LOCAL_DIRS"] == "/tmp"


# ---------------------------------------------------------------------------------------------
# process: a StatefulSet whose pod name is its Kafka identity


def test_process_is_a_statefulset_identified_by_its_pod_name(resources: tuple[dict[str, Any], ...]) -> None:
    process = one(resources, "StatefulSet", "process")
    assert not [r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == "process"]
    env = {e["name"]: e for e in container(process, "process")["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["PROCESS_INSTANCE_ID"]["value"] == "$(POD_NAME)"
    assert list(env).index("POD_NAME") < list(env).index("PROCESS_INSTANCE_ID"), "defined before use"
    headless = one(resources, "Service", process["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert process["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    from processors.stream.settings import ProcessSettings

    settings = ProcessSettings(instance_id=f"{process['metadata']['name']}-11")
    assert settings.transactional_id == f"{settings.group_id}-process-11"


# ---------------------------------------------------------------------------------------------
# Monitoring: Kafka and Redis scraped everywhere; Prometheus bounded by size


def test_kafka_and_redis_are_scraped_in_every_deployment(resources: tuple[dict[str, Any], ...]) -> None:
    local = yaml.safe_load((REPO / "ops/prometheus/prometheus.yml").read_text())
    compose = yaml.safe_load((REPO / "ops/compose/prometheus.yml").read_text())
    cluster = yaml.safe_load((REPO / "ops/k8s/base/monitoring/prometheus.yml").read_text())
    for config in (local, compose, cluster):
        assert {"kafka", "redis"} <= {job["job_name"] for job in config["scrape_configs"]}
    jobs = {job["job_name"]: job for job in cluster["scrape_configs"]}
    for name in ("stockstream", "kafka", "redis"):
        keep = jobs[name]["relabel_configs"][0]
        assert keep == {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "regex": name,
                        "action": "keep"}
    for kind, name, port in (("StatefulSet", "kafka", 9404), ("StatefulSet", "redis", 9121)):
        workload = one(resources, kind, name)
        annotations = pod_metadata(workload)["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == str(port)
        ports = {p["containerPort"] for c in pod_spec(workload)["containers"] for p in c.get("ports", [])}
        assert port in ports, name
    exporter = container(one(resources, "StatefulSet", "redis"), "redis-exporter")
    assert env_of(exporter)["REDIS_ADDR"] == "redis://localhost:6379"
    # As the monitor user, its password read from that user's Secret file (no env value, no argument).
    assert env_of(exporter)["REDIS_USER"] == "monitor"
    assert exporter["command"] == ["sh", "-c", "REDIS_PASSWORD=$$(cat /etc/redis/users/monitor) exec /redis_exporter"]
    mount = next(m for m in exporter["volumeMounts"] if m["mountPath"] == "/etc/redis/users")
    volume = next(v for v in pod_spec(one(resources, "StatefulSet", "redis"))["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"].startswith("redis-user-monitor")
    services = compose_services()
    assert services["redis-exporter"]["environment"]["REDIS_ADDR"] == "redis://redis:6379"
    assert "kafka-ready.sh" in " ".join(services["kafka"]["healthcheck"]["test"])


def test_prometheus_retention_by_size_fits_its_volume(resources: tuple[dict[str, Any], ...]) -> None:
    prometheus = pod_spec(one(resources, "Deployment", "prometheus"))["containers"][0]
    [retention] = [a for a in prometheus["args"] if a.startswith("--storage.tsdb.retention.size=")]
    claim = one(resources, "PersistentVolumeClaim", "prometheus-data")
    volume = size(claim["spec"]["resources"]["requests"]["storage"])
    assert size(retention.split("=", 1)[1]) <= 0.85 * volume
    assert any(a.startswith("--storage.tsdb.retention.time=") for a in prometheus["args"])
    assert any(a.startswith("--storage.tsdb.retention.size=") for a in compose_services()["prometheus"]["command"])


def test_local_stack_prometheus_is_bounded_and_scrapes_its_own_exporters(tmp_path: Path) -> None:
    from stockstream.stack.services import Prometheus, StackSettings, render_prometheus_config

    settings = StackSettings(state_dir=tmp_path, prometheus_port=19999, kafka_jmx_port=19998,
                             redis_exporter_port=19997)
    assert "--storage.tsdb.retention.size=2GB" in Prometheus(settings).command()
    config = yaml.safe_load(render_prometheus_config(settings))
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets["kafka"] == ["127.0.0.1:19998"] and targets["redis"] == ["127.0.0.1:19997"]
    assert targets["prometheus"] == ["127.0.0.1:19999"]
    assert all(Path(pattern).is_absolute() for pattern in config["rule_files"])
