"""ops/compose/compose.yaml, validated by compose-go (the Compose specification's reference
loader, what `docker compose config` runs) and checked against the code like the manifests.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.deploy.deploy_support import (
    ALL_INTERFACES,
    BUILT_HERE,
    COMMAND_SETTINGS,
    COMPOSE_SECRETS,
    OUR_IMAGES,
    REPO,
    RUNTIME_ENV,
    all_secret_env,
    all_settings_env,
    command_env,
    compose_containers,
    compose_project,
    compose_services,
    help_works,
    image_name,
    is_ours,
    render,
    validate_settings,
)

# No feed by default: every ingest service (one per venue) is in a profile named for what it feeds from.
CORE = {"kafka", "kafka-access", "redis", "redis-exporter", "process", "materialize", "notify", "serve", "prometheus",
        "alertmanager", "grafana"}
PROFILES = ("simulator", "exchanges", "alphavantage")


def test_compose_file_is_valid_for_every_profile() -> None:
    everything = compose_services()
    assert CORE <= set(everything)
    default = compose_project(profiles=(), env=COMPOSE_SECRETS)
    assert default.returncode == 0, default.stderr
    import json

    assert set(json.loads(default.stdout)["services"]) == CORE, "profiles keep extras out of a plain `up`"


def test_the_loader_rejects_what_docker_compose_would(tmp_path: Path) -> None:
    """Negative controls: a key outside the spec, and a required secret left unset."""
    broken = yaml.safe_load((REPO / "ops/compose/compose.yaml").read_text())
    broken["services"]["serve"]["restart_policy"] = "always"
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = compose_project(env=COMPOSE_SECRETS, file=path)
    assert result.returncode == 1 and "restart_policy" in result.stderr
    unset = compose_project(env={k: v for k, v in COMPOSE_SECRETS.items() if k != "GRAFANA_ADMIN_PASSWORD"})
    assert unset.returncode == 1 and "GRAFANA_ADMIN_PASSWORD" in unset.stderr


def test_every_env_var_is_a_setting_the_service_reads() -> None:
    known = all_settings_env() | set(RUNTIME_ENV)
    checked = 0
    for container in compose_containers():
        command = container.stockstream_command
        if not is_ours(container.image):
            continue
        unknown = container.literal_env - known
        assert not unknown, f"{container.where}: no setting reads {sorted(unknown)}"
        if command and command[0] in COMMAND_SETTINGS:
            foreign = container.literal_env - set(command_env(command[0])) - set(RUNTIME_ENV)
            assert not foreign, f"{container.where}: `stockstream {command[0]}` does not read {sorted(foreign)}"
            checked += 1
    assert checked >= 9


def test_settings_validate_and_ports_match() -> None:
    containers = [c for c in compose_containers() if (c.stockstream_command or [""])[0] in COMMAND_SETTINGS]
    jobs = [{"where": c.where, "settings": COMMAND_SETTINGS[c.stockstream_command[0]], "env": c.env}  # type: ignore[index]
            for c in containers]
    results = validate_settings(jobs)
    prometheus = yaml.safe_load((REPO / "ops/compose/prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "stockstream")
    scraped = {name: sd["port"] for sd in job["dns_sd_configs"] for name in sd["names"]}
    for container in containers:
        result = results[container.where]
        assert "error" not in result, f"{container.where}: {result.get('error')}"
        values = result["values"]
        name = container.where.removeprefix("compose/")
        health = " ".join(container.spec["healthcheck"]["test"]) if "healthcheck" in container.spec else ""
        if container.stockstream_command == ["serve"]:
            assert values["api_host"] == ALL_INTERFACES and values["api_auth"] == "on"
            published = container.spec["ports"][0]
            assert int(published["target"]) == values["api_port"]
        if "metrics_port" in values and name != "backfill":
            assert values["metrics_host"] == ALL_INTERFACES
            assert scraped[name] == values["metrics_port"], name
            assert f":{values['metrics_port']}/health" in health, name


def test_secrets_come_from_the_environment_not_the_file() -> None:
    """With sentinel values in the interpolation env, every secret the services get is a sentinel, or a
    password *file* that is one of the service's own Compose secrets."""
    secret_vars = all_secret_env() | {"REDISCLI_AUTH", "GF_SECURITY_ADMIN_PASSWORD"}
    sentinels = set(COMPOSE_SECRETS.values())
    seen = set()
    for name, service in compose_services().items():
        targets = {secret_target(secret) for secret in service.get("secrets", [])}
        for var, value in (service.get("environment") or {}).items():
            if var.endswith("_FILE"):
                if "PASSWORD" in var:
                    assert value in targets, f"{name}: {var}={value} is not one of its secrets {sorted(targets)}"
                    seen.add(var)
                continue
            if var in secret_vars or any(word in var for word in ("PASSWORD", "TOKEN", "API_KEY", "SECRET")):
                assert value in sentinels, f"{name}: {var} is not taken from the environment"
                seen.add(var)
    assert {"KAFKA_SASL_PASSWORD_FILE", "REDIS_PASSWORD_FILE", "ALPHAVANTAGE_API_KEY",
            "GF_SECURITY_ADMIN_PASSWORD"} <= seen
    # Only the services that use a secret get it.
    services = compose_services()
    assert "ALPHAVANTAGE_API_KEY" not in services["ingest-simulator"]["environment"]
    assert "REDIS_PASSWORD_FILE" not in services["process"]["environment"]


def secret_target(secret: dict[str, Any]) -> str:
    """Where a Compose secret appears in the container (a bare target is under /run/secrets)."""
    target = secret.get("target") or secret["source"]
    return target if target.startswith("/") else f"/run/secrets/{target}"


def test_commands_exist_and_images_are_built_from_the_dockerfile() -> None:
    for container in compose_containers():
        service = container.spec
        if not is_ours(container.image):
            tag = container.image.partition(":")[2]
            assert tag and tag != "latest", f"{container.where}: pin {container.image}"
            continue
        target = OUR_IMAGES[image_name(container.image)]
        build = service.get("build")
        if build is not None:
            assert build["target"] == target and Path(build["context"]) == REPO
        command = container.stockstream_command
        if command is None:
            assert container.command == ["tini", "--", "spark-class", "org.apache.spark.deploy.worker.Worker"]
            continue
        ok, output = help_works(tuple(command))
        assert ok, f"{container.where}: `stockstream {' '.join(command)} --help` failed:\n{output[-1500:]}"


def test_compose_and_kubernetes_run_the_same_third_party_images() -> None:
    def external(images: set[str]) -> dict[str, str]:
        return {image_name(i): i for i in images if not is_ours(i) and image_name(i) not in BUILT_HERE}

    compose = external({c.image for c in compose_containers()})
    cluster = external({c["image"] for r in render("prod") if r["kind"] in ("Deployment", "StatefulSet")
                        for c in r["spec"]["template"]["spec"]["containers"]})
    assert compose == cluster
    # The images we build from our own files: Compose builds them from the same file.
    services = compose_services()
    for name, file in BUILT_HERE.items():
        [service] = [s for s in services.values() if image_name(s.get("image", "")) == name]
        assert Path(service["build"]["context"]) / service["build"]["dockerfile"] == REPO / file


def test_prometheus_config_passes_promtool_and_matches_the_local_one(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "ops/compose/prometheus.yml").read_text())
    local = yaml.safe_load((REPO / "ops/prometheus/prometheus.yml").read_text())
    assert config["global"] == local["global"] and config["rule_files"] == local["rule_files"]
    assert [j["job_name"] for j in config["scrape_configs"]] == [j["job_name"] for j in local["scrape_configs"]]
    # Laid out as the container sees it: the config next to the rules folder it names.
    (tmp_path / "prometheus.yml").write_text((REPO / "ops/compose/prometheus.yml").read_text())
    (tmp_path / "rules").symlink_to(REPO / "ops/prometheus/rules")
    result = subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    mounts = {v["target"]: v["source"] for v in compose_services()["prometheus"]["volumes"]}
    assert Path(mounts["/etc/prometheus/rules"]) == REPO / "ops/prometheus/rules"
    assert Path(mounts["/etc/prometheus/prometheus.yml"]) == REPO / "ops/compose/prometheus.yml"


def test_alertmanager_gets_the_repository_file_and_its_secrets_as_files() -> None:
    """Prometheus sends to the compose Alertmanager, which runs ops/alertmanager/alertmanager.yml with
    every secret file that file names, each filled from the environment, and listens on loopback only."""
    prometheus = yaml.safe_load((REPO / "ops/compose/prometheus.yml").read_text())
    assert prometheus["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]
    service = compose_services()["alertmanager"]
    mounts = {v["target"]: v["source"] for v in service["volumes"]}
    assert Path(mounts["/etc/alertmanager/alertmanager.yml"]) == REPO / "ops/alertmanager/alertmanager.yml"
    config = (REPO / "ops/alertmanager/alertmanager.yml").read_text()
    named = set(re.findall(r"/etc/alertmanager/secrets/[a-z-]+", config))
    assert named and {secret["target"] for secret in service["secrets"]} == named
    project = json.loads(compose_project(env=COMPOSE_SECRETS).stdout)
    for secret in service["secrets"]:
        assert "environment" in project["secrets"][secret["source"]], secret
    assert [(p["host_ip"], p["target"]) for p in service["ports"]] == [("127.0.0.1", 9093)]


def test_grafana_gets_the_repository_provisioning_and_dashboards() -> None:
    mounts = {v["target"]: Path(v["source"]) for v in compose_services()["grafana"]["volumes"]}
    provider = yaml.safe_load((REPO / "ops/grafana/provisioning/dashboards/stockstream.yaml").read_text())
    assert mounts[provider["providers"][0]["options"]["path"]] == REPO / "ops/grafana/dashboards"
    assert mounts["/etc/grafana/provisioning/datasources"] == REPO / "ops/grafana/provisioning/datasources"
    assert mounts["/etc/grafana/provisioning/dashboards"] == REPO / "ops/grafana/provisioning/dashboards"
    source = yaml.safe_load((REPO / "ops/grafana/provisioning/datasources/prometheus.yaml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert "9090:9090" in {f"{p['published']}:{p['target']}" for p in compose_services()["prometheus"]["ports"]}


def _instruments(environment: dict[str, Any]) -> set[str]:
    """The instruments one ingest service publishes (its venue × its symbols), as its settings read them."""
    from processors.ingest.settings import DEFAULT_SYMBOLS

    source = environment.get("INGEST_SOURCE", "simulator")
    venue = environment.get("INGEST_FILE_VENUE", "file") if source == "file" else source
    symbols = [s.strip() for s in str(environment.get("INGEST_SYMBOLS") or "").split(",") if s.strip()]
    return {f"{symbol}@{venue}" for symbol in symbols or DEFAULT_SYMBOLS.get(source, ())}


@pytest.mark.parametrize("profiles", [combo for size in range(len(PROFILES) + 1)
                                      for combo in itertools.combinations(PROFILES, size)], ids=repr)
def test_no_two_ingest_services_publish_one_instrument_and_the_simulator_only_by_name(profiles) -> None:
    result = compose_project(profiles=profiles, env=COMPOSE_SECRETS)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    ingests = {name: service for name, service in services.items() if (service.get("command") or [None])[0] == "ingest"}
    seen: dict[str, str] = {}
    for name, service in ingests.items():
        assert name == f"ingest-{service['environment']['INGEST_SOURCE']}", "one service per venue, named for it"
        for instrument in _instruments(service["environment"]):
            assert instrument not in seen, f"{instrument} published by both {seen[instrument]} and {name}"
            seen[instrument] = name
    assert ("ingest-simulator" in ingests) == ("simulator" in profiles)
    if "exchanges" in profiles:
        # The composite reads several venues of its symbols, and is the only writer of SYMBOL@index.
        symbols = services["composite"]["environment"]["COMPOSITE_SYMBOLS"].split(",")
        for symbol in symbols:
            assert len({i for i in seen if i.startswith(f"{symbol}@")}) >= 2, symbol
            assert f"{symbol}@index" not in seen
