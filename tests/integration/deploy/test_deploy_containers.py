"""The images built and run for real, with podman (``make test-deploy``; not in ``make test``).

No Docker engine and no registry here: the Dockerfile's base image is built from Debian packages
(ops/podman/build-base.sh) and passed as PYTHON_IMAGE, as the public image is elsewhere. Kafka and
Redis run from stand-ins of their official images built from the same jars and Debian packages
(ops/podman/kafka-standin, ops/podman/redis-standin); our broker image (ops/kafka/Containerfile:
JMX exporter agent, readiness check) is built on the stand-in.

* both images build; the service image answers ``stockstream --version`` as an unprivileged user;
* a pipeline in containers on a podman network of its own (Kafka, Redis, ingest of the sample file,
  process, materialize, serve, each container as the Compose file runs it: read-only root, tmpfs
  /tmp, no capabilities) answers every API question exactly as the same file run on the local stack;
* the broker's readiness check passes in the broker container, and its JMX exporter answers;
* the Spark image backfills that log in a container (read-only root, /tmp as Compose mounts it)
  into Parquet equal to a backfill of the same log on the local stack;
* ``podman play kube`` of the dev overlay's Kafka StatefulSet, as far as podman goes (see the test).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import stockstream
from tests.integration.stream.stream_support import cleanup
from tests.support.kafka_tools import wait_until
from tests.support.podman import REPO, Pod, base_image, build, missing_tools, pod, podman
from tests.support.ports import free_port
from tests.support.processes import STOCKSTREAM, ServiceProcess

pytestmark = [pytest.mark.containers, pytest.mark.integration, pytest.mark.timeout(3600)]

SAMPLE = REPO / "tests" / "data" / "ticks_sample.csv"
COMPOSE = yaml.safe_load((REPO / "ops" / "compose" / "compose.yaml").read_text())
# The Compose file's Kafka settings for our services, and the container options of x-stockstream.
# The local run talks to the stack's loopback PLAINTEXT listener, so it takes them without the SASL ones.
SERVICE_ENV = {key: str(value) for key, value in COMPOSE["x-kafka-env"].items() if not str(value).startswith("${")}
LOCAL_ENV = {key: value for key, value in SERVICE_ENV.items()
             if key not in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_PASSWORD_FILE")}
SERVICE_OPTIONS = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
# The Compose secrets' files (make-secrets.sh makes them for a real deployment), one per user.
KAFKA_USERS = ("ingest", "process", "materialize", "notify", "composite", "serve", "spark", "prune", "operator")
REDIS_USERS = ("admin", "materialize", "serve", "notify", "monitor", "prune")
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")
READY = "/opt/stockstream-kafka/kafka-ready.sh"


@dataclass(frozen=True)
class Images:
    base: str
    service: str
    spark: str
    kafka: str
    redis: str


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    missing = missing_tools()
    assert not missing, f"missing {missing}: run ops/setup/deploy-deps.sh (make test-deploy does)"
    base = base_image()
    service = build("localhost/stockstream:test", REPO, build_args={"PYTHON_IMAGE": base})
    spark = build("localhost/stockstream-spark:test", REPO, target="spark", build_args={"PYTHON_IMAGE": base})
    # The apache/kafka stand-in: the broker jars of the local stack in the official image's layout.
    from stockstream.stack.services import Kafka, StackSettings

    broker = Kafka(StackSettings())
    broker.resolve_jars()
    context = tmp_path_factory.mktemp("kafka-standin")
    shutil.copytree(broker.libs, context / "libs", ignore=shutil.ignore_patterns(".complete"))
    for name in ("Containerfile", "run", "tool"):
        shutil.copy2(REPO / "ops" / "podman" / "kafka-standin" / name, context / name)
    standin = build("localhost/kafka-standin:4.1.1", context, build_args={"BASE_IMAGE": base})
    kafka = build("localhost/stockstream-kafka:test", REPO / "ops" / "kafka", file=REPO / "ops" / "kafka" / "Containerfile",
                  build_args={"KAFKA_IMAGE": standin, "BUILD_IMAGE": base})
    redis = build("localhost/redis-standin:test", REPO / "ops" / "podman" / "redis-standin",
                  build_args={"BASE_IMAGE": base})
    return Images(base, service, spark, kafka, redis)


def test_service_image_answers_version_as_an_unprivileged_user(images: Images) -> None:
    version = podman("run", "--rm", *SERVICE_OPTIONS, images.service, "--version")
    assert version.stdout.strip() == f"stockstream {stockstream.__version__}"
    user = podman("run", "--rm", "--entrypoint", "id", images.service, "-u")
    assert user.stdout.strip() == "10001"
    commands = podman("run", "--rm", *SERVICE_OPTIONS, images.service, "--help").stdout
    for command in ("ingest", "process", "materialize", "notify", "serve"):
        assert command in commands


def test_spark_image_has_pyspark_java_and_the_kafka_source(images: Images) -> None:
    script = ("import pathlib, pyspark, subprocess; print(pyspark.__version__);"
              "print(len(list(pathlib.Path('/opt/spark-jars').glob('spark-sql-kafka*.jar'))));"
              "subprocess.run(['java', '-version'], check=True)")
    result = podman("run", "--rm", "--entrypoint", "python", images.spark, "-c", script)
    lines = result.stdout.split()
    assert lines[0] == "4.2.0" and lines[1] == "1", result.stdout
    assert "openjdk version \"17" in result.stderr


# ---------------------------------------------------------------------------------------------
# The same file through the pipeline twice: on the local stack, and in containers


def api_answers(base_url: str, token: str | None = None) -> dict[str, Any]:
    """Every view the API serves for the sample's symbols (the questions a dashboard asks); ``token``: an API
    key, sent as a Bearer token (serve requires one beyond loopback, as in a container)."""
    paths = ["/symbols"]
    for symbol in SYMBOLS:
        paths += [f"/symbols/{symbol}/latest", f"/symbols/{symbol}/recommendation",
                  f"/symbols/{symbol}/signals?limit=200", f"/symbols/{symbol}/daily"]
        paths += [f"/symbols/{symbol}/candles?timeframe={tf}&limit=1000" for tf in ("1m", "5m", "1h")]
        paths += [f"/symbols/{symbol}/indicators?timeframe={tf}&limit=1000" for tf in ("tick", "1m", "5m", "1h")]
    answers = {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for path in paths:
        try:
            request = urllib.request.Request(base_url + path, headers=headers)  # noqa: S310
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                answers[path] = json.loads(answer.read())
        except urllib.error.HTTPError as error:
            answers[path] = {"status": error.code}
    return answers


def first_difference(ours: Any, theirs: Any, where: str = "") -> str:
    """Where two JSON answers first differ, and the two values there (containers first, then local)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs)):
            if ours.get(key) != theirs.get(key):
                return first_difference(ours.get(key), theirs.get(key), f"{where}.{key}")
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for index, (left, right) in enumerate(zip(ours, theirs, strict=True)):
            if left != right:
                return first_difference(left, right, f"{where}[{index}]")
    return f"{where or '(top)'}: containers {str(ours)[:300]!r} vs local {str(theirs)[:300]!r}"


VOLATILE = {"ts_init", "as_of", "served_at", "now", "age_s", "generated_at"}


def comparable(value: Any, namespace: str) -> Any:
    """An answer without what differs between two runs of the same log: wall-clock fields, topic prefix."""
    if isinstance(value, dict):
        return {key: comparable(item, namespace) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [comparable(item, namespace) for item in value]
    if isinstance(value, str) and namespace:
        return value.replace(namespace, "")
    return value


def settled(url: str, previous: list[dict[str, Any]], namespace: str, token: str | None = None) -> bool:
    """True once the API answers the same twice in a row with every symbol's views filled."""
    try:
        answers = comparable(api_answers(url, token), namespace)
    except OSError:  # not listening yet
        return False
    complete = all(answers.get(f"/symbols/{s}/daily") not in (None, {"status": 404}) for s in SYMBOLS)
    same = bool(previous) and previous[-1] == answers
    previous.append(answers)
    return complete and same


@pytest.fixture(scope="module")
def local_run(stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The sample file on the local stack: API answers and a backfill to Parquet."""
    tmp = tmp_path_factory.mktemp("local-run")
    namespace = f"tdep{uuid.uuid4().hex[:8]}."
    port = free_port()
    env = {**os.environ, **LOCAL_ENV, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "STOCKSTREAM_TOPIC_PREFIX": namespace, "REDIS_URL": stack.redis_url, "REDIS_KEY_PREFIX": namespace,
           "METRICS_PORT": "0"}
    services: list[ServiceProcess] = []
    try:
        ingest = subprocess.run([STOCKSTREAM, "ingest", "--source", "file", "--path", str(SAMPLE)], env=env,
                                capture_output=True, text=True, timeout=600, check=False)
        assert ingest.returncode == 0, ingest.stderr[-3000:]
        services.append(ServiceProcess(["process"], {**env, "PROCESS_STATE_DIR": str(tmp / "state")}))
        services.append(ServiceProcess(["materialize"], env))
        # The image's working folder holds an (empty) backfill folder, the default HISTORY_PATH: give the
        # local serve one too, so both answer "more may be in the history" alike.
        (tmp / "history").mkdir()
        services.append(ServiceProcess(["serve", "--port", str(port)],
                                       {**env, "API_PORT": str(port), "HISTORY_PATH": str(tmp / "history")}))
        history: list[dict[str, Any]] = []
        wait_until(lambda: settled(f"http://127.0.0.1:{port}", history, namespace), timeout_s=900, interval_s=5,
                   message="the local pipeline's views to settle")
        backfill = subprocess.run(
            [STOCKSTREAM, "backfill", "--output", str(tmp / "backfill"), "--master", "local[2]", "--json"],
            env={**env, "SPARK_DRIVER_MEMORY": "1g"}, capture_output=True, text=True, timeout=1800, check=False)
        assert backfill.returncode == 0, backfill.stderr[-4000:]
        yield {"answers": history[-1], "backfill": tmp / "backfill", "namespace": namespace}
    finally:
        for service in services:
            service.terminate(60)
        cleanup(stack.kafka_bootstrap, namespace)


@dataclass
class ContainerRun:
    pod: Pod
    api_url: str
    kafka_metrics: str
    token: str  # a read key of the containers' API (serve binds 0.0.0.0 there: authentication is on)
    spark_password: str  # the Kafka user `spark`'s password (the backfill runs as it)


def unescaped(value: object) -> str:
    """A Compose value as the container gets it ($$ is Compose's escape for a literal $)."""
    return str(value).replace("$$", "$")


def compose_secret_files(folder: Path) -> dict[str, Path]:
    """A password file per Compose secret (kafka-<user>, redis-<user>), readable by the containers' users."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    files = {}
    for name in ("kafka-broker", *(f"kafka-{u}" for u in KAFKA_USERS), *(f"redis-{u}" for u in REDIS_USERS)):
        files[name] = folder / name
        files[name].write_text(f"{name}-{uuid.uuid4().hex[:12]}")
        files[name].chmod(0o644)
    return files


def secret_options(service: str, files: dict[str, Path]) -> list[str]:
    """``-v`` options mounting a Compose service's secrets where Compose mounts them."""
    options = []
    for secret in COMPOSE["services"][service].get("secrets", []):
        source, target = (secret, secret) if isinstance(secret, str) else (secret["source"], secret["target"])
        target = target if target.startswith("/") else f"/run/secrets/{target}"
        options += ["-v", f"{files[source]}:{target}:ro"]
    return options


@pytest.fixture(scope="module")
def container_run(images: Images, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerRun]:
    """Kafka, Redis and our services in containers on a network of their own; the API on loopback.

    As Compose runs them: the broker with SASL only, the kafka-access step creating the users and
    ACLs, each service as its own Kafka and Redis user with its secret files, Redis with its ACL users.
    """
    kafka_env = {key: unescaped(value) for key, value in COMPOSE["services"]["kafka"]["environment"].items()}
    redis_service = COMPOSE["services"]["redis"]
    files = compose_secret_files(tmp_path_factory.mktemp("compose-secrets") / "secrets")
    start_script = f"{REPO / 'ops/redis/redis-start.sh'}:/etc/redis/start/redis-start.sh:ro"

    def as_service(name: str) -> dict[str, str]:
        given = {key: unescaped(value) for key, value in COMPOSE["services"][name]["environment"].items()
                 if key.startswith(("KAFKA_SASL_USERNAME", "REDIS_USERNAME"))}
        return {**SERVICE_ENV, "REDIS_URL": "redis://redis:6379/0", "REDIS_PASSWORD_FILE": "/run/secrets/redis-password",
                **given}

    with pod() as run:
        api_port, metrics_port = free_port(), free_port()
        # The broker as Compose runs it (its environment, its secrets), the JMX exporter's port on loopback.
        run.run("kafka", images.kafka, env={**kafka_env, "KAFKA_HEAP_OPTS": "-Xms256m -Xmx512m"},
                options=["-p", f"127.0.0.1:{metrics_port}:9404", *secret_options("kafka", files)])
        # Compose's own command: the start script writes the ACL users, then runs redis-server.
        run.run("redis", images.redis, *[unescaped(part) for part in redis_service["command"]],
                env={key: unescaped(value) for key, value in redis_service["environment"].items()},
                options=["-v", start_script, *secret_options("redis", files)])

        def kafka_ready() -> bool:
            assert run.running("kafka"), run.logs("kafka")
            return run.exec("kafka", "sh", "/opt/stockstream-kafka/kafka-ready.sh").returncode == 0

        wait_until(kafka_ready, timeout_s=300, interval_s=3, message="the broker's readiness check")
        access = COMPOSE["services"]["kafka-access"]
        applied = run.run("kafka-access", images.service, *access["command"],
                          env={key: unescaped(value) for key, value in access["environment"].items()},
                          options=[*SERVICE_OPTIONS, *secret_options("kafka-access", files)], detach=False, check=False)
        assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr[-3000:]
        ingest_env = {**SERVICE_ENV, "KAFKA_SASL_USERNAME": "ingest"}
        ingest_secret = ["-v", f"{files['kafka-ingest']}:/run/secrets/kafka-password:ro"]
        sample = f"{SAMPLE.parent}:/data:ro"
        ingest = run.run("ingest", images.service, "ingest", "--source", "file", "--path", f"/data/{SAMPLE.name}",
                         # The file source keeps its position (INGEST_FILE_POSITION_DIR) on a volume.
                         env=ingest_env, options=[*SERVICE_OPTIONS, *ingest_secret, "-v", sample,
                                                  "-v", "/var/lib/stockstream/state"], detach=False,
                         check=False)
        assert ingest.returncode == 0, ingest.stdout[-2000:] + ingest.stderr[-3000:]
        # The image binds 0.0.0.0 inside the container (METRICS_HOST, API_HOST); only serve is published.
        run.run("process", images.service, "process", env=as_service("process"),
                # Compose's named volume: a fresh one takes the image folder's owner (uid 10001).
                options=[*SERVICE_OPTIONS, *secret_options("process", files), "-v", "/var/lib/stockstream/state"])
        run.run("materialize", images.service, "materialize", env=as_service("materialize"),
                options=[*SERVICE_OPTIONS, *secret_options("materialize", files)])
        run.run("serve", images.service, "serve", env={**as_service("serve"), "API_PORT": "8000"},
                options=[*SERVICE_OPTIONS, *secret_options("serve", files), "-p", f"127.0.0.1:{api_port}:8000"])
        operator_env = {"REDIS_URL": "redis://redis:6379/0", "REDIS_USERNAME": "admin",
                        "REDIS_PASSWORD_FILE": "/run/secrets/redis-password"}
        operator_secret = ["-v", f"{files['redis-admin']}:/run/secrets/redis-password:ro"]
        # serve binds 0.0.0.0 in its container, so it requires a key (API_AUTH=auto): one made as an
        # operator would, with the image's own `stockstream apikey create` against the pod's Redis.
        made = run.run("apikey", images.service, "apikey", "create", "--name", "container-test", "--json",
                       env=operator_env, options=[*SERVICE_OPTIONS, *operator_secret], detach=False, check=False)
        assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-3000:]
        token = json.loads(made.stdout.strip().splitlines()[-1])["token"]
        try:
            yield ContainerRun(run, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{metrics_port}/metrics",
                               token, files["kafka-spark"].read_text())
        except BaseException:
            print(run.diagnostics())
            raise


def test_pipeline_in_containers_answers_as_the_local_stack(local_run, container_run: ContainerRun) -> None:
    history: list[dict[str, Any]] = []

    def done() -> bool:
        for service in ("process", "materialize", "serve"):
            assert container_run.pod.running(service), container_run.pod.logs(service)
        return settled(container_run.api_url, history, "", container_run.token)

    wait_until(done, timeout_s=900, interval_s=5, message="the containers' views to settle")
    local = local_run["answers"]
    assert set(history[-1]) == set(local)
    differing = [path for path in local if history[-1][path] != local[path]]
    assert not differing, (f"{len(differing)} answers differ, e.g. {differing[:3]}; {differing[0]}: "
                           f"{first_difference(history[-1][differing[0]], local[differing[0]])}" if differing else "")
    assert len(local["/symbols"]["symbols"]) == len(SYMBOLS)
    assert any(local[f"/symbols/{s}/signals?limit=200"]["signals"] for s in SYMBOLS), "the sample yields signals"


def test_broker_readiness_check_and_jmx_exporter_answer_in_the_container(container_run: ContainerRun) -> None:
    ready = container_run.pod.exec("kafka", "sh", "/opt/stockstream-kafka/kafka-ready.sh")
    assert ready.returncode == 0 and "unfenced and in every in-sync replica set" in ready.stdout, ready
    with urllib.request.urlopen(container_run.kafka_metrics, timeout=10) as answer:  # noqa: S310
        metrics = answer.read().decode()
    samples = [line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#")]
    values = {series: float(value) for series, value in samples}
    assert values["kafka_server_kafkaserver_brokerstate"] == 3.0
    assert values["kafka_server_replicamanager_underreplicatedpartitions"] == 0.0
    assert values["kafka_controller_kafkacontroller_offlinepartitionscount"] == 0.0
    assert values["kafka_server_replicamanager_partitioncount"] > 0


def test_redis_health_check_fails_on_an_error_answer(container_run: ContainerRun) -> None:
    """The Compose health check (`redis-cli --user monitor -e ping`, its password from the monitor
    user's file) passes; without a user it fails, where a plain `redis-cli ping` (the old probe)
    exits 0 on the NOAUTH error."""
    check = [unescaped(part) for part in COMPOSE["services"]["redis"]["healthcheck"]["test"][1:]]
    assert container_run.pod.exec("redis", *check).returncode == 0
    unauthenticated = ["env", "-u", "REDISCLI_AUTH"]
    assert container_run.pod.exec("redis", *unauthenticated, "redis-cli", "-e", "ping").returncode == 1
    plain = container_run.pod.exec("redis", *unauthenticated, "redis-cli", "ping")
    assert plain.returncode == 0 and "NOAUTH" in plain.stdout


def parquet_rows(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Each dataset of a backfill's Parquet output as sorted rows, without the wall-clock ts_init."""
    import pyarrow.dataset as ds

    tables = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        table = ds.dataset(folder, partitioning="hive").to_table()
        columns = sorted(name for name in table.schema.names if name != "ts_init")
        rows = table.select(columns).to_pylist()
        tables[folder.name] = sorted(tuple(str(row[c]) for c in columns) for row in rows)
    return tables


def test_spark_image_backfills_the_log_as_the_local_stack(images: Images, local_run, container_run: ContainerRun,
                                                          tmp_path: Path) -> None:
    """A backfill in the Spark image, run as Compose runs the backfill service (read-only root, /tmp
    a tmpfs with its options): Spark's native libraries load, the Parquet equals the local one."""
    backfill = COMPOSE["services"]["backfill"]
    [tmp_mount] = backfill["tmpfs"]
    output = tmp_path / "backfill"
    output.mkdir()
    env = {**SERVICE_ENV, "KAFKA_SASL_USERNAME": "spark", "SPARK_MASTER": "local[2]", "SPARK_DRIVER_MEMORY": "1g",
           "SPARK_LOCAL_DIRS": "/tmp"}
    password = tmp_path / "spark-password"
    password.write_text(container_run.spark_password)
    password.chmod(0o644)
    result = container_run.pod.run(
        "backfill", images.spark, "backfill", "--output", "/out", "--json", env=env, detach=False, check=False,
        timeout_s=2400, options=["--read-only", "--tmpfs", tmp_mount, "-v", f"{output}:/out:U",
                                 "-v", f"{password}:/run/secrets/kafka-password:ro",
                                 "--memory", backfill["mem_limit"]])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    container, local = parquet_rows(output), parquet_rows(local_run["backfill"])
    assert set(container) == set(local) >= {"indicators", "candles", "signals", "daily"}
    for dataset in local:
        assert container[dataset] == local[dataset], dataset
    assert len(local["indicators"]) > 2800


def test_a_noexec_tmp_breaks_spark_native_libraries(images: Images, container_run: ContainerRun,
                                                    tmp_path: Path) -> None:
    """Control for the test above: with /tmp mounted noexec (Docker's default for a tmpfs; podman 4.3
    here does not add it, so it is asked for), snappy-java cannot load the native library it unpacks
    there, which is why Compose mounts the Spark services' /tmp with exec."""
    script = ("from pyspark.sql import SparkSession;"
              "s = SparkSession.builder.master('local[1]').getOrCreate();"
              "s.range(10).write.parquet('/tmp/out', compression='snappy'); print('written')")
    noexec = podman("run", "--rm", "--read-only", "--tmpfs", "/tmp:noexec", "--entrypoint", "python", images.spark,
                    "-c", script, check=False, timeout_s=600)
    assert noexec.returncode != 0 and "snappy" in (noexec.stdout + noexec.stderr).lower()
    allowed = podman("run", "--rm", "--read-only", "--tmpfs", COMPOSE["services"]["spark-worker"]["tmpfs"][0],
                     "--entrypoint", "python", images.spark, "-c", script, check=False, timeout_s=600)
    assert allowed.returncode == 0 and "written" in allowed.stdout, allowed.stderr[-3000:]


# ---------------------------------------------------------------------------------------------
# podman play kube of the dev overlay's Kafka StatefulSet: how far podman 4.3 goes


def kafka_manifests() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The rendered dev overlay's Kafka StatefulSet, its headless Service and its ConfigMap."""
    from tests.integration.deploy.deploy_support import render

    resources = render("dev")
    statefulset = next(r for r in resources if r["kind"] == "StatefulSet" and r["metadata"]["name"] == "kafka")
    service = next(r for r in resources if r["kind"] == "Service"
                   and r["metadata"]["name"] == statefulset["spec"]["serviceName"])
    config = next(r for r in resources if r["kind"] == "ConfigMap" and r["metadata"]["name"].startswith("kafka-config"))
    return statefulset, service, config


def statefulset_pod(statefulset: dict[str, Any], index: int, credentials: Path) -> list[dict[str, Any]]:
    """What the StatefulSet controller creates for one ordinal: the pod (name, pod-index label,
    hostname, subdomain) and its volume claim. Nothing else of the template is changed but the
    brokers' password files: podman plays no Secret, so that volume is the host folder ``credentials``."""
    template = json.loads(json.dumps(statefulset["spec"]["template"]))
    name = f"{statefulset['metadata']['name']}-{index}"
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    claim_name = f"{claim['metadata']['name']}-{name}"
    spec = {**template["spec"], "hostname": name, "subdomain": statefulset["spec"]["serviceName"],
            "volumes": [{"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}},
                        {"name": "credentials", "hostPath": {"path": str(credentials), "type": "Directory"}}]}
    labels = {**template["metadata"]["labels"], "apps.kubernetes.io/pod-index": str(index),
              "statefulset.kubernetes.io/pod-name": name}
    return [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim_name},
             "spec": claim["spec"]},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}]


def write_yaml(path: Path, documents: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def test_play_kube_of_the_kafka_statefulset(images: Images, tmp_path: Path) -> None:
    """Where podman 4.3.1's ``play kube`` stops with the dev overlay's Kafka, and what runs after.

    1. The StatefulSet and its Service as rendered: refused (podman plays Pods, Deployments and
       PVCs only; a ConfigMap only through --configmap).
    2. The pod the StatefulSet controller would create (kafka-0, nothing else changed), not started:
       the ConfigMap and the pod-index fieldRef reach the environment, the volume claim becomes a
       volume, the user is the template's; but ``$(POD_NAME)`` in the advertised listener stays
       literal (podman does not expand dependent variables), every containerPort is published on
       the host's same port on all interfaces (it would clash with the local stack and expose Kafka),
       the tcpSocket liveness probe on a named port becomes a broken health check, and the
       exec readiness probe is dropped.
    3. All three pods, with only what podman lacks supplied: $(POD_NAME) expanded as the kubelet
       would, no host ports or probes, and the headless Service's names (kafka-N.kafka-headless) as
       host aliases on static addresses. The KRaft quorum forms; the readiness check (in the image)
       passes on every broker; a broker stopped does not make the others unready; restarted after
       writes it missed, it is reported ready only once unfenced and back in every ISR.
    """
    statefulset, service, config = kafka_manifests()
    image = statefulset["spec"]["template"]["spec"]["containers"][0]["image"]  # stockstream-kafka:4.1.1
    podman("tag", images.kafka, f"localhost/{image}")  # the test image, under the overlay's name
    config_file = write_yaml(tmp_path / "configmap.yaml", [config])
    # The broker's PLAIN passwords (the kafka-broker and kafka-user-operator Secrets' files).
    credentials = tmp_path / "kafka-secrets"
    credentials.mkdir(mode=0o755)
    for user in ("broker", "operator"):
        (credentials / user).write_text(f"{user}-{uuid.uuid4().hex[:12]}")
        (credentials / user).chmod(0o644)

    # 1. As rendered.
    refused = podman("play", "kube", "--start=false", str(write_yaml(tmp_path / "kafka.yaml", [statefulset, service])),
                     check=False)
    assert refused.returncode != 0 and "does not contain any supported kube kind" in refused.stderr, refused
    with_config = podman("play", "kube", "--start=false", str(write_yaml(tmp_path / "all.yaml", [config, statefulset])),
                         check=False)
    assert "ConfigMaps in podman are not a standalone object" in with_config.stderr, with_config

    # 2. One pod of the StatefulSet, not started.
    pod_file = write_yaml(tmp_path / "kafka-0.yaml", statefulset_pod(statefulset, 0, credentials))
    try:
        podman("play", "kube", "--start=false", "--configmap", str(config_file), str(pod_file))
        env = dict(item.split("=", 1) for item in json.loads(
            podman("inspect", "kafka-0-kafka", "--format", "{{json .Config.Env}}").stdout))
        assert env["KAFKA_NODE_ID"] == "0" and env["POD_NAME"] == "kafka-0"
        assert env["CLUSTER_ID"] == config["data"]["CLUSTER_ID"]
        assert env["KAFKA_ADVERTISED_LISTENERS"] == \
            "CLIENT://$(POD_NAME).kafka-headless:9092,INTERNAL://$(POD_NAME).kafka-headless:9094"  # not expanded
        bindings = json.loads(podman("pod", "inspect", "kafka-0", "--format", "{{json .InfraConfig.PortBindings}}").stdout)
        assert bindings["9092/tcp"] == [{"HostIp": "", "HostPort": "9092"}]  # all interfaces, the host's 9092
        health = json.loads(podman("inspect", "kafka-0-kafka", "--format", "{{json .Config.Healthcheck}}").stdout)
        assert health["Test"][:3] == ["CMD-SHELL", "nc", "-z"], health  # from the tcpSocket liveness probe
        assert podman("inspect", "kafka-0-kafka", "--format", "{{.Config.User}}").stdout.strip() == "1000:1000"
    finally:
        podman("play", "kube", "--down", str(pod_file), check=False)
        podman("volume", "rm", "-f", "data-kafka-0", check=False)

    # 3. Three pods on a network of their own, with what podman lacks supplied.
    network = f"kube{uuid.uuid4().hex[:8]}"
    podman("network", "create", network)
    subnet = json.loads(podman("network", "inspect", network).stdout)[0]["subnets"][0]["subnet"]
    prefix = subnet.rsplit(".", 1)[0]
    replicas = statefulset["spec"]["replicas"]
    addresses = {f"kafka-{i}": f"{prefix}.{10 + i}" for i in range(replicas)}
    files = []
    try:
        for index, (name, address) in enumerate(addresses.items()):
            documents = statefulset_pod(statefulset, index, credentials)
            spec = documents[1]["spec"]
            spec["hostAliases"] = [{"ip": ip, "hostnames": [f"{other}.{service['metadata']['name']}"]}
                                   for other, ip in addresses.items()]
            for container in spec["containers"]:
                for key in ("ports", "livenessProbe", "readinessProbe"):
                    container.pop(key, None)
                for variable in container["env"]:
                    if "value" in variable:
                        variable["value"] = variable["value"].replace("$(POD_NAME)", name)
                # The dev heap, smaller: three brokers share this machine with the tests.
                container["env"].append({"name": "KAFKA_HEAP_OPTS", "value": "-Xms256m -Xmx384m"})
            files.append(write_yaml(tmp_path / f"{name}-run.yaml", documents))
            podman("play", "kube", "--configmap", str(config_file), "--network", network, "--ip", address,
                   str(files[-1]))

        def ready(index: int) -> subprocess.CompletedProcess[str]:
            return podman("exec", f"kafka-{index}-kafka", "sh", READY, check=False, timeout_s=300)

        def all_ready() -> bool:
            for index in range(replicas):
                assert "Up" in podman("ps", "-a", "--filter", f"name=kafka-{index}-kafka", "--format",
                                      "{{.Status}}").stdout, podman("logs", "--tail", "40", f"kafka-{index}-kafka").stderr
            return all(ready(index).returncode == 0 for index in range(replicas))

        wait_until(all_ready, timeout_s=600, interval_s=5, message="the three brokers to be ready")
        # The tools as the broker user on the INTERNAL listener (SASL/PLAIN), from a properties file.
        login = ("printf '%s\\n' security.protocol=SASL_PLAINTEXT sasl.mechanism=PLAIN \"sasl.jaas.config="
                 "org.apache.kafka.common.security.plain.PlainLoginModule required username=\\\"broker\\\" "
                 "password=\\\"$(cat /etc/kafka/secrets/broker)\\\";\" > /tmp/admin.properties; ")
        tools = login + "unset KAFKA_OPTS; export KAFKA_HEAP_OPTS=-Xmx192m; /opt/kafka/bin/"
        admin = "--bootstrap-server localhost:9094 --command-config /tmp/admin.properties"
        podman("exec", "kafka-0-kafka", "sh", "-c", tools + f"kafka-topics.sh {admin} --create"
               " --topic rolling --partitions 6 --replication-factor 3 --config min.insync.replicas=2", timeout_s=300)
        produce = (tools + "kafka-producer-perf-test.sh --topic rolling --num-records 100000 --record-size 200"
                   " --throughput -1 --producer.config /tmp/admin.properties"
                   " --producer-props bootstrap.servers=localhost:9094 acks=all")
        podman("exec", "kafka-0-kafka", "sh", "-c", produce, timeout_s=600)
        podman("stop", "-t", "120", "kafka-2-kafka", timeout_s=300)
        assert ready(0).returncode == 0 and ready(1).returncode == 0  # another broker down: still ready
        podman("exec", "kafka-0-kafka", "sh", "-c", produce, timeout_s=600)  # writes broker 2 misses
        podman("start", "kafka-2-kafka")
        answers: list[tuple[int, str]] = []

        def back_in_sync() -> bool:
            check = ready(2)
            answers.append((check.returncode, check.stdout.strip()))
            if check.returncode != 0:
                return False
            described = podman("exec", "kafka-0-kafka", "sh", "-c", tools + f"kafka-topics.sh {admin}"
                               " --describe --topic rolling", timeout_s=300).stdout
            isrs = re.findall(r"Isr: ([0-9,]+)", described)
            assert len(isrs) == 6 and all("2" in isr.split(",") for isr in isrs), described
            return True

        wait_until(back_in_sync, timeout_s=600, interval_s=3, message="broker 2 to be ready again")
        # Not ready while starting (not yet in its metadata, fenced, or behind), then ready.
        assert answers[0][0] == 1 and answers[-1][0] == 0, answers
    finally:
        for file in files:
            podman("play", "kube", "--down", str(file), check=False)
        for name in addresses:
            podman("volume", "rm", "-f", f"data-{name}", check=False)
        podman("network", "rm", "-f", network, check=False)
