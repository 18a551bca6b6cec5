"""What the deploy tests share: the pinned tools, rendered manifests, and what the app reads.

No cluster and no Docker engine here, so the deployment is checked by the tools that would
read it: ``kustomize`` renders the overlays, ``dockerfilecheck`` (BuildKit's own front end)
lints the Dockerfile and its build context, ``composecheck`` (compose-go, the Compose spec's
reference loader) validates the Compose file. The three are Go programs pinned in
``ops/tools/*/go.mod`` and built into ``.stack/tools`` by ``make deploy-tools``; if a binary is
missing or older than its sources it is built here from the Go module cache.

The other half is the application's side of the contract: which environment variables each
command reads (the ``validation_alias`` of every settings field), which fields are secrets,
and which commands exist.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import pkgutil
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, SecretStr

REPO = Path(__file__).resolve().parents[3]
TOOLS_DIR = REPO / ".stack" / "tools"
OVERLAYS = ("dev", "prod")
# In a container a service must listen on every interface, or probes and Prometheus cannot reach it.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - asserted, not bound
STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))

# Our images and the Dockerfile target each is built from.
OUR_IMAGES = {"stockstream": "runtime", "stockstream-spark": "spark"}
# Images we build from another file than the Dockerfile (third-party software, our additions).
BUILT_HERE = {"stockstream-kafka": "ops/kafka/Containerfile"}

# Which settings class each command reads (strict per-container env check).
COMMAND_SETTINGS = {
    "ingest": "processors.ingest.settings:IngestSettings",
    "process": "processors.stream.settings:ProcessSettings",
    "composite": "processors.composite.settings:CompositeSettings",
    "materialize": "processors.materialize.settings:MaterializeSettings",
    "notify": "processors.notify.settings:NotifySettings",
    "serve": "stockstream.api.settings:ApiSettings",
    "backfill": "spark_jobs.settings:SparkJobSettings",
    "replay": "spark_jobs.settings:SparkJobSettings",
    "backtest": "spark_jobs.settings:SparkJobSettings",
    "kafka-access": "processors.runtime.settings:KafkaSettings",
}

# Variables read by the runtime rather than by a settings class, each with who reads it.
RUNTIME_ENV = {
    "PATH": "the shell",
    "PYTHONUNBUFFERED": "CPython",
    "PYTHONDONTWRITEBYTECODE": "CPython",
    "NUMBA_CACHE_DIR": "numba (where cache=True kernels are cached: site-packages is read-only)",
    "JAVA_HOME": "Spark's launch scripts",
    "SPARK_HOME": "Spark's launch scripts",
    "PYSPARK_PYTHON": "PySpark (executors' interpreter)",
    "PYSPARK_DRIVER_PYTHON": "PySpark (driver's interpreter)",
    "SPARK_LOCAL_HOSTNAME": "Spark (the address a driver/worker advertises)",
    "SPARK_LOCAL_DIRS": "Spark (scratch space)",
    "SPARK_DAEMON_MEMORY": "Spark's launch scripts (heap of the master/worker daemon JVM)",
    "POD_IP": "the manifest itself ($(POD_IP) references)",
    "POD_NAME": "the manifest itself ($(POD_NAME) references)",
    "SPARK_CONF_DIR": "Spark's launch scripts (spark-defaults.conf: spark.authenticate and its secret)",
    "PIP_DISABLE_PIP_VERSION_CHECK": "pip (build stage)",
    "PIP_NO_INPUT": "pip (build stage)",
}


# ---------------------------------------------------------------------------------------------
# Pinned Go tools


TOOL_SOURCES = {
    "kustomize": ("ops/tools/kustomize", "sigs.k8s.io/kustomize/kustomize/v5"),
    "composecheck": ("ops/tools/composecheck", "."),
    "dockerfilecheck": ("ops/tools/dockerfilecheck", "."),
}


def tool(name: str) -> str:
    """Path of a pinned tool, built (offline, from the module cache) when missing or stale."""
    module_dir, package = TOOL_SOURCES[name]
    binary = TOOLS_DIR / name
    sources = [p for p in (REPO / module_dir).iterdir() if p.suffix in {".go", ".mod", ".sum"}]
    newest = max(p.stat().st_mtime for p in sources)
    if not binary.exists() or binary.stat().st_mtime < newest:
        TOOLS_DIR.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false", "GOPROXY": os.environ.get("GOPROXY", "off")}
        result = subprocess.run(  # noqa: S603
            ["go", "build", "-o", str(binary), package], cwd=REPO / module_dir,
            capture_output=True, text=True, timeout=600, env=env, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building {name} failed (run `make deploy-tools` once with network):\n"
                               f"{result.stderr[-3000:]}")
    return str(binary)


def run_tool(name: str, *args: str, env: dict[str, str] | None = None,
             cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [tool(name), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env=env if env is not None else dict(os.environ), check=False,
    )


# ---------------------------------------------------------------------------------------------
# Rendered manifests


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    """Every resource of ``ops/k8s/overlays/<overlay>``, rendered by the pinned kustomize."""
    result = run_tool("kustomize", "build", "--load-restrictor", "LoadRestrictionsNone",
                      f"ops/k8s/overlays/{overlay}")
    if result.returncode != 0:
        raise AssertionError(f"kustomize build {overlay} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def by_kind(resources: Iterable[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def one(resources: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = by_kind(resources, kind)
    assert name in found, f"no {kind} named {name}; have {sorted(found)}"
    return found[name]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "CronJob":
        return dict(workload["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(workload["spec"]["template"]["spec"])


def pod_metadata(workload: dict[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "CronJob":
        return dict(workload["spec"]["jobTemplate"]["spec"]["template"]["metadata"])
    return dict(workload["spec"]["template"]["metadata"])


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "CronJob", "Job", "DaemonSet")
# The Redis ACL users of ops/redis/redis-start.sh, each with a Secret redis-user-<user>.
REDIS_USERS = ("admin", "materialize", "serve", "notify", "monitor")
# Workloads that run to completion: no probes, no metrics port (the backfill, the kafka-access Job).
ONE_SHOT_KINDS = ("CronJob", "Job")


def secret_mounts(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Mount path -> {file name in the mount: "<secret>/<key>"} for every Secret a container mounts
    (plain ``secret`` volumes and ``projected`` ones made of Secrets)."""
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    result: dict[str, dict[str, str]] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})  # a StatefulSet's claim is no pod volume
        sources = ([{"secret": {"name": volume["secret"]["secretName"], "items": volume["secret"].get("items", [])}}]
                   if "secret" in volume else volume.get("projected", {}).get("sources", []))
        files = {}
        for source in sources:
            secret = source.get("secret")
            if secret is None:
                continue
            for item in secret.get("items", []):
                files[item["path"]] = f"{secret['name']}/{item['key']}"
        if files:
            result[mount["mountPath"]] = files
    return result


def secret_behind(spec: dict[str, Any], container: dict[str, Any], path: str) -> str | None:
    """``"<secret>/<key>"`` of the file ``path`` if a Secret mounted in ``container`` provides it."""
    for mount_path, files in secret_mounts(spec, container).items():
        if path.startswith(mount_path.rstrip("/") + "/"):
            return files.get(path[len(mount_path.rstrip("/")) + 1:])
    return None


def workloads(resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] in WORKLOAD_KINDS]


def image_name(image: str) -> str:
    """``registry.example.com/stockstream/stockstream-spark:0.1.0`` -> ``stockstream-spark``."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def is_ours(image: str) -> bool:
    return image_name(image) in OUR_IMAGES


@dataclass
class Container:
    """One container with the environment it really gets (image ENV, envFrom, env)."""

    where: str
    image: str
    command: list[str] | None
    args: list[str]
    env: dict[str, str]
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)  # var -> (secret, key)
    literal_env: set[str] = field(default_factory=set)  # vars given as plain values
    spec: dict[str, Any] = field(default_factory=dict)
    workload: dict[str, Any] = field(default_factory=dict)

    @property
    def stockstream_command(self) -> list[str] | None:
        """The ``stockstream`` subcommand path this container runs (None if it runs something else)."""
        if not is_ours(self.image):
            return None
        argv = [*(self.command or []), *self.args]
        if self.command is not None:
            if argv[:2] == ["tini", "--"]:
                argv = argv[2:]
            if not argv or argv[0] != "stockstream":
                return None
            argv = argv[1:]
        path = list(itertools.takewhile(lambda arg: not arg.startswith("-"), argv))
        return path or None


_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def k8s_containers(resources: tuple[dict[str, Any], ...]) -> list[Container]:
    """Every container of every workload, with its effective environment (ConfigMaps resolved)."""
    config_maps = by_kind(resources, "ConfigMap")
    image_env = dockerfile_env()
    result = []
    for workload in workloads(resources):
        spec = pod_spec(workload)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
            env: dict[str, str] = {}
            if is_ours(container["image"]):
                env.update(image_env[OUR_IMAGES[image_name(container["image"])]])
            secret_env: dict[str, tuple[str, str]] = {}
            literal: set[str] = set()
            for source in container.get("envFrom", []):
                assert "configMapRef" in source, f"{where}: envFrom only from ConfigMaps (secrets by key)"
                data = config_maps[source["configMapRef"]["name"]].get("data", {})
                env.update({source.get("prefix", "") + k: v for k, v in data.items()})
                literal.update(data)
            for item in container.get("env", []):
                if "value" in item:
                    value = _REFERENCE.sub(lambda m, known=env: known.get(m.group(1), "10.0.0.1"), str(item["value"]))
                    env[item["name"]] = value
                    literal.add(item["name"])
                elif "secretKeyRef" in item.get("valueFrom", {}):
                    ref = item["valueFrom"]["secretKeyRef"]
                    secret_env[item["name"]] = (ref["name"], ref["key"])
                    env[item["name"]] = "placeholder-secret-value"
                elif "configMapKeyRef" in item.get("valueFrom", {}):
                    ref = item["valueFrom"]["configMapKeyRef"]
                    env[item["name"]] = config_maps[ref["name"]]["data"][ref["key"]]
                    literal.add(item["name"])
                else:
                    env[item["name"]] = "10.0.0.1"  # fieldRef: pod IP, name, index
            result.append(Container(where, container["image"], container.get("command"),
                                    [str(a) for a in container.get("args", [])], env, secret_env,
                                    literal, container, workload))
    return result


# ---------------------------------------------------------------------------------------------
# Dockerfile and Compose, as their tools see them


@cache
def dockerfile_report() -> dict[str, Any]:
    result = run_tool("dockerfilecheck", "-context", str(REPO), str(REPO / "Dockerfile"))
    assert result.returncode in (0, 1), result.stderr
    return dict(json.loads(result.stdout))


def stage_chain(target: str) -> list[dict[str, Any]]:
    """The stages a target is built on, base first (``runtime`` -> [base, runtime])."""
    stages = {s["name"]: s for s in dockerfile_report()["stages"]}
    chain = []
    name: str | None = target
    while name in stages:
        chain.insert(0, stages[name])
        name = stages[name]["base"]
    return chain


@cache
def dockerfile_env() -> dict[str, dict[str, str]]:
    """The ENV of each final target (runtime, spark), through its base stages."""
    result = {}
    for target in set(OUR_IMAGES.values()):
        env: dict[str, str] = {}
        for stage in stage_chain(target):
            for command in stage["commands"]:
                if command["name"] == "env":
                    env.update(pair.split("=", 1) for pair in command["args"])
        result[target] = env
    return result


def compose_project(*, profiles: tuple[str, ...] = ("*",), env: dict[str, str] | None = None,
                    file: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``composecheck`` on the Compose file with the given profiles and interpolation env."""
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root"), **(env or {})}
    args = [a for p in profiles for a in ("-profile", p)]
    return run_tool("composecheck", *args, str(file or REPO / "ops/compose/compose.yaml"), env=clean)


COMPOSE_SECRETS = {"GRAFANA_ADMIN_PASSWORD": "sentinel-grafana",
                   "ALPHAVANTAGE_API_KEY": "sentinel-alphavantage-key",
                   "STOCKSTREAM_API_SESSION_SECRET": "sentinel-session-secret"}


@cache
def compose_services() -> dict[str, dict[str, Any]]:
    result = compose_project(env=COMPOSE_SECRETS)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout)["services"])


def compose_containers() -> list[Container]:
    image_env = dockerfile_env()
    result = []
    for name, service in compose_services().items():
        image = service.get("image", "")
        env: dict[str, str] = {}
        if is_ours(image):
            env.update(image_env[OUR_IMAGES[image_name(image)]])
        given = {k: ("" if v is None else str(v)) for k, v in (service.get("environment") or {}).items()}
        env.update(given)
        entrypoint = service.get("entrypoint")
        result.append(Container(f"compose/{name}", image, entrypoint, [str(a) for a in service.get("command") or []],
                                env, {}, set(given), service, {"kind": "compose", "metadata": {"name": name}}))
    return result


# ---------------------------------------------------------------------------------------------
# The application's side


def _import_all(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
        try:
            importlib.import_module(info.name)
        except ImportError:
            continue  # an optional extra not installed; its settings are imported elsewhere


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _aliases(model: type) -> dict[str, str]:
    """env var -> field name, for every field of a settings class."""
    result = {}
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if isinstance(alias, str) else []
        for choice in choices:
            if isinstance(choice, str):
                result[choice] = name
    return result


@cache
def all_settings_env() -> frozenset[str]:
    """Every env var any ServiceSettings subclass reads (all service modules imported)."""
    from processors.runtime.settings import ServiceSettings

    for package in ("processors", "spark_jobs", "stockstream"):
        _import_all(package)
    names: set[str] = set()
    for cls in _subclasses(ServiceSettings):
        names.update(_aliases(cls))
    return frozenset(names)


def settings_class(command: str) -> type:
    module, name = COMMAND_SETTINGS[command].split(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def command_env(command: str) -> dict[str, str]:
    return _aliases(settings_class(command))


def secret_env(command: str) -> set[str]:
    """Env vars of the command's settings whose field is a secret (SecretStr)."""
    cls = settings_class(command)
    aliases = _aliases(cls)
    secret_fields = {name for name, info in cls.model_fields.items() if "SecretStr" in repr(info.annotation)}
    return {var for var, name in aliases.items() if name in secret_fields}


def all_secret_env() -> set[str]:
    found: set[str] = set()
    for command in COMMAND_SETTINGS:
        try:
            found |= secret_env(command)
        except ImportError:
            continue
    return found


VALIDATE_SCRIPT = r"""
import json, sys, importlib, tempfile, os
from pathlib import Path
from pydantic import ValidationError
jobs = json.load(sys.stdin)
out = []
for job in jobs:
    module, name = job["settings"].split(":")
    cls = getattr(importlib.import_module(module), name)
    os.environ.clear()
    os.environ.update(job["env"])
    try:
        settings = cls(_env_file=None)
    except ValidationError as error:
        out.append({"where": job["where"], "error": str(error)})
        continue
    out.append({"where": job["where"], "values": json.loads(settings.model_dump_json())})
print(json.dumps(out))
"""


def validate_settings(jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Build each job's settings class from exactly its env, in a clean interpreter.

    A ``*_PASSWORD_FILE`` names a file of a mounted Secret that exists only in the pod: it is pointed
    at a placeholder file here (the tests of the mounts check the path). Returns where ->
    {"values": dumped settings} or {"error": message}.
    """
    with tempfile.TemporaryDirectory() as folder:
        placeholder = Path(folder) / "password"
        placeholder.write_text("placeholder-secret-value")
        jobs = [{**job, "env": {name: str(placeholder) if name.endswith("_PASSWORD_FILE") and value else value
                                for name, value in job["env"].items()}} for job in jobs]
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-c", VALIDATE_SCRIPT], input=json.dumps(jobs), capture_output=True, text=True,
            timeout=120, cwd=Path("/"), env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)},
            check=False,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    return {item["where"]: item for item in json.loads(result.stdout)}


@cache
def help_works(command: tuple[str, ...]) -> tuple[bool, str]:
    """Whether ``stockstream <command> --help`` exits 0 (and its output)."""
    result = subprocess.run(  # noqa: S603
        [STOCKSTREAM, *command, "--help"], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    return result.returncode == 0, result.stdout + result.stderr


def is_secret_value(value: Any) -> bool:
    return isinstance(value, SecretStr)
