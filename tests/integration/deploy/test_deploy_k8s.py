"""The Kubernetes deployment (ops/k8s): every overlay renders, every resource is valid
Kubernetes, and every manifest agrees with the code it deploys (env vars, ports, commands,
secrets, images) and with the invariants docs/deploy.md promises (replication, PDBs, probes).
"""

from __future__ import annotations

import base64
import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stockstream.kafka_access.plan import SCRAM_PRINCIPALS
from tests.integration.deploy.deploy_support import (
    ALL_INTERFACES,
    COMMAND_SETTINGS,
    ONE_SHOT_KINDS,
    OUR_IMAGES,
    OVERLAYS,
    REDIS_USERS,
    REPO,
    RUNTIME_ENV,
    all_secret_env,
    all_settings_env,
    by_kind,
    command_env,
    help_works,
    image_name,
    is_ours,
    k8s_containers,
    one,
    pod_metadata,
    pod_spec,
    render,
    secret_behind,
    secret_env,
    secret_mounts,
    validate_settings,
    workloads,
)

# Oldest Kubernetes we support (pod-index label, sleep-free probes) and the newest schemas shipped.
K8S_VERSIONS = ("1.30.0", "1.37.0")
SERVICES = ("process", "materialize", "notify", "serve")


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def resources(overlay: str) -> tuple[dict[str, Any], ...]:
    return render(overlay)


def kafka_config(resources: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return dict(one(resources, "ConfigMap", _generated(resources, "ConfigMap", "kafka-config"))["data"])


def _generated(resources: tuple[dict[str, Any], ...], kind: str, base_name: str) -> str:
    """The rendered name of a generated ConfigMap/Secret (kustomize appends a content hash)."""
    names = [n for n in by_kind(resources, kind) if n == base_name or n.rsplit("-", 1)[0] == base_name]
    assert len(names) == 1, f"{kind} {base_name}: {names}"
    return names[0]


def stockstream_config(resources: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return dict(one(resources, "ConfigMap", _generated(resources, "ConfigMap", "stockstream-kafka"))["data"])


# ---------------------------------------------------------------------------------------------
# Kubernetes validity


def test_every_resource_is_valid_kubernetes(resources: tuple[dict[str, Any], ...]) -> None:
    """Strict OpenAPI validation (unknown fields are errors) on the oldest and newest supported versions."""
    problems = []
    for resource in resources:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{resource['kind']}/{resource['metadata']['name']} @{version}: "
                                f"{'.'.join(map(str, error.path))}: {error.message}")
    assert not problems, "\n".join(problems)
    assert len(resources) > 30


def test_validation_catches_a_broken_resource(resources: tuple[dict[str, Any], ...]) -> None:
    """Negative control: the same validator rejects a Deployment with a misspelt field."""
    broken = yaml.safe_load(yaml.safe_dump(one(resources, "Deployment", "serve")))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_all_resources_in_the_overlay_namespace(overlay: str, resources: tuple[dict[str, Any], ...]) -> None:
    namespace = {"dev": "stockstream-dev", "prod": "stockstream"}[overlay]
    assert one(resources, "Namespace", namespace)
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"].get("namespace") == namespace, resource["metadata"]["name"]


# ---------------------------------------------------------------------------------------------
# Kafka: KRaft, 3 nodes, replication 3, min ISR 1 (dev) / 2 (prod)


def test_kafka_is_a_kraft_quorum_of_three_with_volumes(overlay: str, resources: tuple[dict[str, Any], ...]) -> None:
    kafka = one(resources, "StatefulSet", "kafka")
    assert kafka["spec"]["replicas"] == 3
    assert kafka["spec"]["podManagementPolicy"] == "Parallel"
    headless = one(resources, "Service", kafka["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    container = pod_spec(kafka)["containers"][0]
    # Our broker image: the official apache/kafka of the pinned version plus the JMX exporter and
    # readiness check (ops/kafka/Containerfile); its tag is the Kafka version.
    assert image_name(container["image"]) == "stockstream-kafka"
    kafka_version = re.search(r"<kafka.version>(.+)</kafka.version>", (REPO / "ops/kafka/pom.xml").read_text())
    assert kafka_version is not None and container["image"].endswith(f":{kafka_version.group(1)}")
    assert f"ARG KAFKA_IMAGE=apache/kafka:{kafka_version.group(1)}\n" in (REPO / "ops/kafka/Containerfile").read_text()
    env = {e["name"]: e for e in container["env"]}
    assert env["KAFKA_PROCESS_ROLES"]["value"] == "broker,controller"
    assert not any("ZOOKEEPER" in name for name in env)
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]["value"].split(",")
    service = kafka["spec"]["serviceName"]
    assert voters == [f"{i}@kafka-{i}.{service}:9093" for i in range(kafka["spec"]["replicas"])]
    assert env["KAFKA_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['apps.kubernetes.io/pod-index']"
    assert env["KAFKA_ADVERTISED_LISTENERS"]["value"] == \
        f"CLIENT://$(POD_NAME).{service}:9092,INTERNAL://$(POD_NAME).{service}:9094"
    claim = kafka["spec"]["volumeClaimTemplates"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["KAFKA_LOG_DIRS"]["value"].startswith(mounts[claim["metadata"]["name"]] + "/")
    config = kafka_config(resources)
    cluster_id = config["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16, "CLUSTER_ID is a base64url UUID"
    assert config["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
    assert config["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
    assert config["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
    assert config["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    expected_isr = {"dev": "1", "prod": "2"}[overlay]
    assert config["KAFKA_MIN_INSYNC_REPLICAS"] == expected_isr
    assert config["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == expected_isr
    # Our topics are created by the services with this factor: it must be the brokers' one.
    assert stockstream_config(resources)["KAFKA_REPLICATION_FACTOR"] == "3"


def test_each_overlay_has_its_own_kafka_cluster_id() -> None:
    ids = {overlay: kafka_config(render(overlay))["CLUSTER_ID"] for overlay in OVERLAYS}
    assert len(set(ids.values())) == len(ids), ids


def test_clients_reach_kafka_redis_and_spark_through_existing_services(resources: tuple[dict[str, Any], ...]) -> None:
    services = by_kind(resources, "Service")
    # A StatefulSet pod's own name through its headless Service (kafka-0.kafka-headless).
    for statefulset in by_kind(resources, "StatefulSet").values():
        for index in range(statefulset["spec"]["replicas"]):
            services[f"{statefulset['metadata']['name']}-{index}.{statefulset['spec']['serviceName']}"] = \
                services[statefulset["spec"]["serviceName"]]

    def port_of(host_port: str) -> None:
        host, port = host_port.rsplit(":", 1)
        assert host in services, f"{host_port}: no Service {host}"
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, host_port

    for container in k8s_containers(resources):
        env = container.env
        if "KAFKA_BOOTSTRAP_SERVERS" in env:
            for address in env["KAFKA_BOOTSTRAP_SERVERS"].split(","):
                port_of(address)
        if "REDIS_URL" in env:
            port_of(env["REDIS_URL"].split("://", 1)[1].split("/", 1)[0])
        if env.get("SPARK_MASTER", "").startswith("spark://"):
            port_of(env["SPARK_MASTER"].removeprefix("spark://"))
        for arg in container.args:
            if arg.startswith("spark://"):
                port_of(arg.removeprefix("spark://"))


# ---------------------------------------------------------------------------------------------
# Workloads: one Deployment per service, scaling rules, probes, resources, shutdown


def test_one_deployment_per_service_and_ingest_source(overlay: str, resources: tuple[dict[str, Any], ...]) -> None:
    deployments = by_kind(resources, "Deployment")
    for name in ("materialize", "serve", "spark-master", "spark-worker", "prometheus", "grafana"):
        assert name in deployments
    assert one(resources, "StatefulSet", "redis")
    assert one(resources, "StatefulSet", "notify")
    assert one(resources, "StatefulSet", "process")
    ingests = {name: d for name, d in deployments.items() if name.startswith("ingest-")}
    expected = {"dev": {"ingest-simulator"},
                "prod": {"ingest-coinbase", "ingest-kraken", "ingest-binance", "ingest-alphavantage"}}[overlay]
    assert set(ingests) == expected
    for name, deployment in ingests.items():
        assert deployment["spec"]["replicas"] == 1, f"{name}: one instance per source"
        assert deployment["spec"]["strategy"]["type"] == "Recreate", f"{name}: never two during a rollout"
        source = {e["name"]: e.get("value") for e in pod_spec(deployment)["containers"][0]["env"]}["INGEST_SOURCE"]
        assert name == f"ingest-{source}"


def test_processors_never_outnumber_partitions(resources: tuple[dict[str, Any], ...]) -> None:
    partitions = int(stockstream_config(resources)["STOCKSTREAM_PARTITIONS"])
    deployment = one(resources, "Deployment", "materialize")
    assert 1 <= deployment["spec"]["replicas"] <= partitions
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0, "materialize: surge would exceed"
    # A StatefulSet never surges: it replaces one pod at a time.
    for name in ("process", "notify"):
        assert 1 <= one(resources, "StatefulSet", name)["spec"]["replicas"] <= partitions, name


def test_notify_lanes_keep_a_stable_identity(resources: tuple[dict[str, Any], ...]) -> None:
    """Static membership needs NOTIFY_INSTANCE_ID stable across restarts: the StatefulSet pod name."""
    notify = one(resources, "StatefulSet", "notify")
    env = {e["name"]: e for e in pod_spec(notify)["containers"][0]["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["NOTIFY_INSTANCE_ID"]["value"] == "$(POD_NAME)"
    assert list(env).index("POD_NAME") < list(env).index("NOTIFY_INSTANCE_ID"), "defined before use"


def test_pod_disruption_budgets_cover_kafka_and_processors(resources: tuple[dict[str, Any], ...]) -> None:
    budgets = list(by_kind(resources, "PodDisruptionBudget").values())
    for kind, name in [("StatefulSet", "kafka"), ("StatefulSet", "process"), ("Deployment", "materialize"),
                       ("StatefulSet", "notify"), ("Deployment", "serve")]:
        labels = pod_metadata(one(resources, kind, name))["labels"]
        covering = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(covering) == 1, f"{kind}/{name}: {len(covering)} budgets"
        spec = covering[0]["spec"]
        assert spec.get("maxUnavailable") == 1 or spec.get("minAvailable") == 1
    kafka_budget = next(b for b in budgets if b["metadata"]["name"] == "kafka")
    # One broker down keeps min.insync.replicas (2 of 3) in prod.
    assert kafka_budget["spec"]["maxUnavailable"] == 1


def test_every_container_has_requests_limits_and_probes(resources: tuple[dict[str, Any], ...]) -> None:
    for workload in workloads(resources):
        spec = pod_spec(workload)
        ports_of = {}
        for container in spec["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            limits = container["resources"]
            for key in ("cpu", "memory"):
                assert key in limits["requests"] and key in limits["limits"], f"{where}: {key}"
            if workload["kind"] in ONE_SHOT_KINDS:
                continue
            ports_of = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                assert probe in container, f"{where}: no {probe}"
                handler = container[probe].get("httpGet") or container[probe].get("tcpSocket")
                if handler is not None:
                    port = handler["port"]
                    assert port in ports_of or port in ports_of.values(), f"{where}: {probe} on unknown port {port}"


def test_stockstream_services_probe_health_or_metrics(resources: tuple[dict[str, Any], ...]) -> None:
    """serve: ready = /ready of the API (Redis reachable: a Kafka outage must not take the read API down),
    alive = /health of its metrics port; the others: alive = /health, ready = /ready on their metrics port
    (processors.runtime.observability.Health)."""
    for container in k8s_containers(resources):
        command = container.stockstream_command
        if command is None or container.workload["kind"] in ONE_SHOT_KINDS:
            continue
        spec = container.spec
        if command == ["serve"]:
            assert spec["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}, container.where
            assert spec["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}, container.where
        else:
            assert spec["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}, container.where
            assert spec["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}, container.where
            if "startupProbe" in spec:
                assert spec["startupProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}, container.where


def test_pods_run_unprivileged_without_service_links(resources: tuple[dict[str, Any], ...]) -> None:
    for workload in workloads(resources):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        # Service links would put KAFKA_PORT=tcp://… into Kafka's env (read as a broker property)
        # and SPARK_MASTER_PORT=tcp://… into Spark's; we use DNS names instead.
        assert spec.get("enableServiceLinks") is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name


def test_writable_paths_of_our_containers_are_volumes(resources: tuple[dict[str, Any], ...]) -> None:
    """Our containers have a read-only root: state, scratch and work dirs must be mounted volumes."""
    for container in k8s_containers(resources):
        if not is_ours(container.image):
            continue
        assert container.spec["securityContext"]["readOnlyRootFilesystem"] is True, container.where
        mounts = [m["mountPath"] for m in container.spec.get("volumeMounts", []) if not m.get("readOnly")]
        writable = ["/tmp"]
        for var in ("PROCESS_STATE_DIR", "NOTIFY_STATE_DIR", "SPARK_LOCAL_DIRS"):
            command = container.stockstream_command or []
            reads = var.startswith("SPARK") or (command and var in command_env(command[0]))
            if reads and var in container.env:
                writable.append(container.env[var])
        if "--work-dir" in container.args:
            writable.append(container.args[container.args.index("--work-dir") + 1])
        for path in writable:
            assert any(path == m or path.startswith(m + "/") for m in mounts), f"{container.where}: {path} not mounted"


def test_graceful_shutdown_fits_the_services_own_grace(resources: tuple[dict[str, Any], ...]) -> None:
    notify = one(resources, "StatefulSet", "notify")
    env = {e["name"]: e.get("value") for e in pod_spec(notify)["containers"][0]["env"]}
    assert pod_spec(notify)["terminationGracePeriodSeconds"] > float(env["NOTIFY_SHUTDOWN_GRACE_S"])
    from processors.ingest.settings import IngestSettings

    flush = IngestSettings.model_fields["flush_timeout_seconds"].default
    for name, deployment in by_kind(resources, "Deployment").items():
        if name.startswith("ingest-"):
            assert pod_spec(deployment)["terminationGracePeriodSeconds"] > flush, name
    assert pod_spec(one(resources, "StatefulSet", "kafka"))["terminationGracePeriodSeconds"] >= 60


def test_serve_is_exposed_by_service_and_ingress(resources: tuple[dict[str, Any], ...]) -> None:
    service = one(resources, "Service", "serve")
    deployment = one(resources, "Deployment", "serve")
    assert service["spec"]["selector"].items() <= pod_metadata(deployment)["labels"].items()
    container_ports = {p["name"] for p in pod_spec(deployment)["containers"][0]["ports"]}
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    for port in service_ports.values():
        assert port["targetPort"] in container_ports
    ingress = one(resources, "Ingress", "serve")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == "serve" and backend["port"]["name"] in service_ports
    # /live is Server-Sent Events: the proxy must not buffer it.
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def test_every_service_selects_pods_on_declared_ports(resources: tuple[dict[str, Any], ...]) -> None:
    pods = [(pod_metadata(w)["labels"], pod_spec(w)) for w in workloads(resources)]
    for name, service in by_kind(resources, "Service").items():
        matching = [spec for labels, spec in pods if service["spec"]["selector"].items() <= labels.items()]
        assert matching, f"Service {name} selects no pod"
        for port in service["spec"]["ports"]:
            declared = {p.get("name") for spec in matching for c in spec["containers"] for p in c.get("ports", [])}
            assert port["targetPort"] in declared, f"Service {name}: {port}"


# ---------------------------------------------------------------------------------------------
# The code's side: env vars, ports, commands, secrets, images


def test_every_env_var_is_a_setting_the_app_reads(resources: tuple[dict[str, Any], ...]) -> None:
    known = all_settings_env() | set(RUNTIME_ENV)
    for container in k8s_containers(resources):
        command = container.stockstream_command
        if command is None and not is_ours(container.image):
            continue
        unknown = set(container.env) - known - notify_secret_names(resources, container)
        assert not unknown, f"{container.where}: no setting reads {sorted(unknown)}"
        if command and command[0] in COMMAND_SETTINGS:
            # Strict for what the manifest sets (the image's ENV holds defaults for every service).
            allowed = set(command_env(command[0])) | set(RUNTIME_ENV) | notify_secret_names(resources, container)
            foreign = (container.literal_env | set(container.secret_env)) - allowed
            assert not foreign, f"{container.where}: `stockstream {command[0]}` does not read {sorted(foreign)}"


def notify_secret_names(resources: tuple[dict[str, Any], ...], container: Any) -> set[str]:
    """The env vars the mounted subscription file names for its channels' secrets."""
    if container.stockstream_command != ["notify"]:
        return set()
    from processors.notify.subscriptions import load_config

    data = subscription_file(resources)
    names: set[str] = set()
    for channel in load_config_from_text(load_config, data).channels.values():
        names.update(channel.secret_env_names())
    return names


def subscription_file(resources: tuple[dict[str, Any], ...]) -> str:
    config_map = one(resources, "ConfigMap", _generated(resources, "ConfigMap", "notify-subscriptions"))
    return str(config_map["data"]["subscriptions.yaml"])


def load_config_from_text(load_config: Any, text: str) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "subscriptions.yaml"
        path.write_text(text)
        return load_config(path)


def test_every_container_settings_validate_with_its_env(resources: tuple[dict[str, Any], ...]) -> None:
    """Each service's settings class accepts exactly the env its container gets, and the ports agree."""
    containers = [c for c in k8s_containers(resources) if (c.stockstream_command or [""])[0] in COMMAND_SETTINGS]
    assert {c.stockstream_command[0] for c in containers} >= {"ingest", *SERVICES}  # type: ignore[index]
    jobs = [{"where": c.where, "settings": COMMAND_SETTINGS[c.stockstream_command[0]], "env": c.env}  # type: ignore[index]
            for c in containers]
    results = validate_settings(jobs)
    for container in containers:
        result = results[container.where]
        assert "error" not in result, f"{container.where}: {result.get('error')}"
        values = result["values"]
        ports = {p["name"]: p["containerPort"] for p in container.spec.get("ports", [])}
        annotations = pod_metadata(container.workload).get("annotations", {})
        if container.stockstream_command == ["serve"]:
            assert values["api_host"] == ALL_INTERFACES and values["api_port"] == ports["http"]
            assert values["api_auth"] == "on", "serve beyond loopback requires API keys"
        if "metrics_port" in values and container.workload["kind"] not in ONE_SHOT_KINDS:
            # Bound to all interfaces, on the port the probes and Prometheus use.
            assert values["metrics_host"] == ALL_INTERFACES, container.where
            assert values["metrics_port"] == ports["metrics"] == int(annotations["prometheus.io/port"])


def test_settings_validation_rejects_a_bad_value(resources: tuple[dict[str, Any], ...]) -> None:
    """Negative control: the same check fails for a value the app would refuse at start."""
    container = next(c for c in k8s_containers(resources) if c.stockstream_command == ["process"])
    results = validate_settings([{"where": "x", "settings": COMMAND_SETTINGS["process"],
                                  "env": {**container.env, "METRICS_PORT": "not-a-port"}}])
    assert "error" in results["x"]


def test_notify_subscription_file_is_valid_and_its_secrets_come_from_secrets(
        resources: tuple[dict[str, Any], ...]) -> None:
    from processors.notify.subscriptions import load_config

    config = load_config_from_text(load_config, subscription_file(resources))
    container = next(c for c in k8s_containers(resources) if c.stockstream_command == ["notify"])
    mount = next(m for m in container.spec["volumeMounts"] if m["name"] == "subscriptions")
    assert container.env["NOTIFY_SUBSCRIPTIONS"] == f"{mount['mountPath']}/subscriptions.yaml"
    for name, channel in config.channels.items():
        for var in channel.secret_env_names():
            assert var in container.secret_env, f"channel {name}: {var} must come from a Secret"


def test_secrets_only_from_secrets(overlay: str, resources: tuple[dict[str, Any], ...]) -> None:
    secret_vars = all_secret_env()
    assert {"REDIS_PASSWORD", "ALPHAVANTAGE_API_KEY"} <= secret_vars
    referenced: set[tuple[str, str]] = set()
    for container in k8s_containers(resources):
        leaked = {var for var in container.literal_env if (var in secret_vars
                  or any(word in var for word in ("PASSWORD", "TOKEN", "API_KEY", "SECRET")))
                  and not var.endswith("_FILE")}
        assert not leaked, f"{container.where}: secrets given as plain values: {sorted(leaked)}"
        # A password *file* is a file of a mounted Secret.
        for var in (v for v in container.literal_env if v.endswith("_FILE") and "PASSWORD" in v):
            behind = secret_behind(pod_spec(container.workload), container.spec, container.env[var])
            assert behind is not None, f"{container.where}: {var}={container.env[var]} is no mounted Secret's file"
        referenced |= set(container.secret_env.values())
    # Secrets mounted as files, key by key (projected ones too); an optional one may be absent.
    optional: set[tuple[str, str]] = set()
    for workload in workloads(resources):
        spec = pod_spec(workload)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for files in secret_mounts(spec, container).values():
                referenced |= {tuple(ref.split("/", 1)) for ref in files.values()}  # type: ignore[misc]
        for volume in spec.get("volumes", []):
            secret = volume.get("secret")
            if secret is not None and secret.get("optional"):
                optional |= {(secret["secretName"], item["key"]) for item in secret.get("items", [])}
    # dev's generated Secrets carry kustomize's content hash: kafka-user-serve-6k28h29fk6.
    referenced = {(re.sub(r"-[a-z0-9]{10}$", "", name) if overlay == "dev" else name, key) for name, key in referenced}
    optional = {(re.sub(r"-[a-z0-9]{10}$", "", name) if overlay == "dev" else name, key) for name, key in optional}
    names = {name for name, _ in referenced}
    access = {"kafka-broker", "spark-auth", *(f"kafka-user-{p}" for p in SCRAM_PRINCIPALS),
              *(f"redis-user-{u}" for u in REDIS_USERS)}
    assert names == {"stockstream-secrets", *access}
    if overlay == "prod":
        # Created out of band: every key of stockstream-secrets is documented in secrets.env.example,
        # and the access Secrets (one per principal) are what create-access-secrets.sh makes.
        assert not by_kind(resources, "Secret")
        example = (REPO / "ops/k8s/overlays/prod/secrets.env.example").read_text()
        documented = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
        assert {key for name, key in referenced if name == "stockstream-secrets"} == documented
        script = (REPO / "ops/k8s/overlays/prod/create-access-secrets.sh").read_text()
        for name in access:
            prefix = name.rsplit("-", 1)[0] + "-" if name.startswith(("kafka-user-", "redis-user-")) else name
            assert prefix in script and name.rsplit("-", 1)[-1] in script, name
    else:
        secrets = {re.sub(r"-[a-z0-9]{10}$", "", name): secret for name, secret in by_kind(resources, "Secret").items()}
        for name, key in referenced - optional:
            assert key in secrets[name]["data"], f"dev Secret {name} lacks {key}"


def test_every_command_a_manifest_runs_exists(resources: tuple[dict[str, Any], ...]) -> None:
    checked = set()
    for container in k8s_containers(resources):
        if not is_ours(container.image):
            continue
        command = container.stockstream_command
        if command is None:
            # Our image running another program (Spark worker): it must be installed in the image.
            argv = [*(container.command or []), *container.args]
            assert argv[:2] == ["tini", "--"], container.where
            assert argv[2] == "spark-class" and image_name(container.image) == "stockstream-spark"
            assert (REPO / ".venv/bin/spark-class").exists(), "pyspark's spark-class is what the image runs"
            continue
        ok, output = help_works(tuple(command))
        assert ok, f"{container.where}: `stockstream {' '.join(command)} --help` failed:\n{output[-2000:]}"
        checked.add(tuple(command))
    assert ("process",) in checked and ("serve",) in checked


def test_images_are_pinned_and_ours_come_from_the_dockerfile(overlay: str,
                                                             resources: tuple[dict[str, Any], ...]) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for workload in workloads(resources):
        for container in pod_spec(workload)["containers"]:
            image = container["image"]
            name, _, tag = image.rsplit("/", 1)[-1].partition(":")
            assert tag and tag != "latest", f"{image} is not pinned"
            if is_ours(image):
                assert tag == version, f"{image}: deploy the version in pyproject.toml"
            else:
                assert "." in tag or tag[0].isdigit() or tag.startswith("v"), f"{image}: pin a version"
    targets = set(OUR_IMAGES.values())
    from tests.integration.deploy.deploy_support import dockerfile_report

    assert targets <= {stage["name"] for stage in dockerfile_report()["stages"]}


def test_spark_master_matches_the_pinned_pyspark(resources: tuple[dict[str, Any], ...]) -> None:
    import pyspark

    master = pod_spec(one(resources, "Deployment", "spark-master"))["containers"][0]["image"]
    assert master.startswith(f"apache/spark:{pyspark.__version__}-scala2.13-"), master
    pin = [d for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["spark"]
           if d.startswith("pyspark")]
    assert pin == [f"pyspark=={pyspark.__version__}"]


def test_secret_fields_are_known_for_every_command() -> None:
    """The secret check above relies on these being SecretStr in the settings."""
    assert "REDIS_PASSWORD" in secret_env("materialize")
    assert "ALPHAVANTAGE_API_KEY" in secret_env("ingest")


# ---------------------------------------------------------------------------------------------
# Monitoring: the same Prometheus config and rules, Grafana's provisioning and dashboards


def _local_prometheus() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "ops/prometheus/prometheus.yml").read_text()))


def test_prometheus_config_matches_the_local_one(resources: tuple[dict[str, Any], ...]) -> None:
    """Same global settings and jobs as ops/prometheus/prometheus.yml; discovery by pod annotations.

    (Debian's promtool is built without Kubernetes discovery, so this file is checked by
    structure; the Compose variant, which uses DNS discovery, goes through promtool.)
    """
    config_map = one(resources, "ConfigMap", _generated(resources, "ConfigMap", "prometheus-config"))
    cluster = yaml.safe_load(config_map["data"]["prometheus.yml"])
    local = _local_prometheus()
    assert cluster["global"] == local["global"]
    assert [j["job_name"] for j in cluster["scrape_configs"]] == [j["job_name"] for j in local["scrape_configs"]]
    assert cluster["rule_files"] == local["rule_files"] == ["rules/*.yml"]
    job = next(j for j in cluster["scrape_configs"] if j["job_name"] == "stockstream")
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"own_namespace": True}}]
    relabel = {tuple(r["source_labels"]): r for r in job["relabel_configs"]}
    address = relabel[("__meta_kubernetes_pod_ip", "__meta_kubernetes_pod_annotation_prometheus_io_port")]
    match = re.fullmatch(address["regex"], "10.1.2.3;9102")
    assert match is not None and match.expand(address["replacement"].replace("$", "\\")) == "10.1.2.3:9102"
    prometheus = pod_spec(one(resources, "Deployment", "prometheus"))
    mounts = {m["name"]: m["mountPath"] for m in prometheus["containers"][0]["volumeMounts"]}
    assert mounts["rules"] == "/etc/prometheus/rules" and "--config.file=/etc/prometheus/prometheus.yml" in \
        prometheus["containers"][0]["args"]


def test_prometheus_scrapes_every_service_pod(resources: tuple[dict[str, Any], ...]) -> None:
    for container in k8s_containers(resources):
        if container.stockstream_command is None or container.workload["kind"] in ONE_SHOT_KINDS:
            continue
        annotations = pod_metadata(container.workload).get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", container.where
        assert annotations["prometheus.io/path"] == "/metrics"
    role = one(resources, "Role", "prometheus")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]


def test_rules_and_dashboards_are_the_repository_files(resources: tuple[dict[str, Any], ...]) -> None:
    """Every rule file, Grafana provisioning file and dashboard of the repository, byte for byte."""
    for base_name, folder, suffixes in [("prometheus-rules", "ops/prometheus/rules", (".yml", ".yaml")),
                                         ("grafana-datasources", "ops/grafana/provisioning/datasources", (".yaml",)),
                                         ("grafana-dashboard-providers", "ops/grafana/provisioning/dashboards",
                                          (".yaml",)),
                                         ("grafana-dashboards", "ops/grafana/dashboards", (".json",))]:
        data = one(resources, "ConfigMap", _generated(resources, "ConfigMap", base_name)).get("data", {})
        files = {p.name: p.read_text() for p in sorted((REPO / folder).glob("*")) if p.suffix in suffixes}
        assert files, f"{folder} is empty"
        assert data == files, f"{base_name} != {folder}: list every file in ops/k8s/base/kustomization.yaml"


def test_alertmanager_runs_the_repository_file_and_prometheus_sends_to_it(resources: tuple[dict[str, Any], ...]) -> None:
    config_map = one(resources, "ConfigMap", _generated(resources, "ConfigMap", "alertmanager-config"))
    assert config_map["data"] == {"alertmanager.yml": (REPO / "ops/alertmanager/alertmanager.yml").read_text()}
    prometheus = yaml.safe_load(one(resources, "ConfigMap", _generated(resources, "ConfigMap", "prometheus-config"))
                                ["data"]["prometheus.yml"])
    service = one(resources, "Service", "alertmanager")
    target = f"alertmanager:{service['spec']['ports'][0]['port']}"
    assert prometheus["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": [target]}]}]
    spec = pod_spec(one(resources, "Deployment", "alertmanager"))
    container = spec["containers"][0]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in container["args"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    secret = next(v["secret"] for v in spec["volumes"] if v["name"] == "secrets")
    named = set(re.findall(r"/etc/alertmanager/secrets/[a-z-]+", config_map["data"]["alertmanager.yml"]))
    assert {f"{mounts['secrets']}/{item['path']}" for item in secret["items"]} == named


def test_grafana_datasource_points_at_the_prometheus_service(resources: tuple[dict[str, Any], ...]) -> None:
    config_map = one(resources, "ConfigMap", _generated(resources, "ConfigMap", "grafana-datasources"))
    source = yaml.safe_load(config_map["data"]["prometheus.yaml"])["datasources"][0]
    service = one(resources, "Service", "prometheus")
    assert source["url"] == f"http://prometheus:{service['spec']['ports'][0]['port']}"
    providers = one(resources, "ConfigMap", _generated(resources, "ConfigMap", "grafana-dashboard-providers"))
    path = yaml.safe_load(providers["data"]["stockstream.yaml"])["providers"][0]["options"]["path"]
    grafana = pod_spec(one(resources, "Deployment", "grafana"))["containers"][0]
    assert {"name": "dashboards", "mountPath": path, "readOnly": True} in grafana["volumeMounts"]
    password = next(e for e in grafana["env"] if e["name"] == "GF_SECURITY_ADMIN_PASSWORD")
    assert "secretKeyRef" in password["valueFrom"]


def test_no_two_ingest_deployments_publish_one_instrument(overlay: str, resources: tuple[dict[str, Any], ...]) -> None:
    """Each venue's feed is its own Deployment; their instruments (venue × symbols) never overlap,
    the simulator runs only where its own component is named (dev), and the composite is the only
    writer of SYMBOL@index, over symbols at least two venues feed."""
    from processors.ingest.settings import DEFAULT_SYMBOLS

    deployments = by_kind(resources, "Deployment")
    seen: dict[str, str] = {}
    for name, deployment in deployments.items():
        container = pod_spec(deployment)["containers"][0]
        if container.get("args", [None])[0] != "ingest":
            continue
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        source = env["INGEST_SOURCE"]
        venue = env.get("INGEST_FILE_VENUE") or "file" if source == "file" else source
        symbols = [s.strip() for s in (env.get("INGEST_SYMBOLS") or "").split(",") if s.strip()]
        for symbol in symbols or DEFAULT_SYMBOLS.get(source, ()):
            instrument = f"{symbol}@{venue}"
            assert instrument not in seen, f"{overlay}: {instrument} published by {seen[instrument]} and {name}"
            seen[instrument] = name
    sources = {name.removeprefix("ingest-") for name in seen.values()}
    assert ("simulator" in sources) == (overlay == "dev")
    assert sources == {"simulator"} or "simulator" not in sources, "never the simulator beside real feeds"
    if "composite" in deployments:
        env = {e["name"]: e.get("value") for e in pod_spec(deployments["composite"])["containers"][0]["env"]}
        for symbol in env["COMPOSITE_SYMBOLS"].split(","):
            assert len({i for i in seen if i.startswith(f"{symbol}@")}) >= 2, symbol
            assert f"{symbol}@index" not in seen
