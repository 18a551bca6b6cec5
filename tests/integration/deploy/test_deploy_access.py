"""Who may read, who may write, in the manifests (issue 18; docs/security.md).

Static, on the rendered overlays and the Compose file: every workload talks to Kafka as its own
principal with only its own Secret's password file, no broker listener is without authentication,
the kafka-access step holds every user, Spark runs with ``spark.authenticate``, each Redis client is
its own ACL user, and no password is an argument, a command or an environment value.

Real, without containers: ``ops/redis/redis-start.sh`` against redis-server (serve's user can run
read commands only, the default user nothing), and the Compose broker's own environment turned into
server.properties as the image does, run from the local stack's jars: ``stockstream kafka-access
apply`` creates the users over the INTERNAL listener, kafka-ready.sh passes with its SASL file, the
processor's user may write ``signals`` and ingest's may not.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockstream.kafka_access.plan import SCRAM_PRINCIPALS
from stockstream.kafka_access.plan import principal_of as plan_principal_of
from tests.integration.deploy.deploy_support import (
    OVERLAYS,
    REDIS_USERS,
    REPO,
    by_kind,
    compose_containers,
    compose_services,
    k8s_containers,
    one,
    pod_spec,
    render,
    secret_behind,
    secret_mounts,
    workloads,
)
from tests.support.ports import free_port
from tests.support.redis_tools import wait_for_redis

pytestmark = pytest.mark.integration
SASL = {"SASL_PLAINTEXT", "SASL_SSL"}
# Which Redis user each Redis client (its subcommand words; in Compose the service of that name, words
# joined by "-") runs as.
REDIS_USER_OF_COMMAND = {"materialize": "materialize", "serve": "serve", "notify": "notify", "runs prune": "prune"}


@pytest.fixture(params=OVERLAYS)
def resources(request: pytest.FixtureRequest) -> tuple[dict[str, Any], ...]:
    return render(str(request.param))


def unhashed(reference: str | None) -> str | None:
    """``kafka-user-serve-6k28h29fk6/password`` (dev's generated Secret) -> ``kafka-user-serve/password``."""
    return None if reference is None else re.sub(r"-[a-z0-9]{10}/", "/", reference)


def principal_of(command: list[str]) -> str:
    if command[0] == "kafka-access":
        return "operator"
    principal = plan_principal_of(command)
    assert principal is not None, f"no Kafka principal for `stockstream {' '.join(command)}` (PRINCIPAL_OF_COMMAND)"
    return principal


# ---------------------------------------------------------------------------------------------
# Kafka: one principal per workload, no open listener


def test_every_workload_is_its_own_kafka_user_with_only_its_password_file(resources) -> None:
    seen = set()
    for container in k8s_containers(resources):
        command = container.stockstream_command
        if command is None:
            continue  # the Spark worker: its executors get the driver's credentials with the job
        principal = principal_of(command)
        seen.add(principal)
        env = container.env
        assert env["KAFKA_SASL_USERNAME"] == principal, container.where
        assert env["KAFKA_SECURITY_PROTOCOL"] in SASL, container.where
        assert env["KAFKA_SASL_MECHANISM"] == ("PLAIN" if principal == "operator" else "SCRAM-SHA-512")
        assert "KAFKA_SASL_PASSWORD" not in env, container.where
        spec = pod_spec(container.workload)
        behind = unhashed(secret_behind(spec, container.spec, env["KAFKA_SASL_PASSWORD_FILE"]))
        assert behind == f"kafka-user-{principal}/password", f"{container.where}: {behind}"
        users = {unhashed(ref) for files in secret_mounts(spec, container.spec).values() for ref in files.values()
                 if ref.startswith("kafka-")}
        if principal == "operator":
            # kafka-access creates every user: it holds every password, one file per principal.
            assert users == {f"kafka-user-{p}/password" for p in SCRAM_PRINCIPALS}
            folder = container.args[container.args.index("--credentials") + 1]
            for user in SCRAM_PRINCIPALS:
                assert unhashed(secret_behind(spec, container.spec, f"{folder}/{user}")) == \
                    f"kafka-user-{user}/password"
        else:
            assert users == {f"kafka-user-{principal}/password"}, f"{container.where}: {users}"
    assert seen >= {"ingest", "process", "materialize", "notify", "serve", "spark", "prune", "operator"}


def test_every_compose_service_is_its_own_kafka_user() -> None:
    seen = set()
    for container in compose_containers():
        command = container.stockstream_command
        if command is None:
            continue
        principal = principal_of(command)
        seen.add(principal)
        env, secrets = container.env, container.spec.get("secrets", [])
        assert env["KAFKA_SASL_USERNAME"] == principal and env["KAFKA_SECURITY_PROTOCOL"] in SASL, container.where
        assert "KAFKA_SASL_PASSWORD" not in env
        kafka = {s["source"] for s in secrets if s["source"].startswith("kafka-")}
        if principal == "operator":
            assert kafka == {f"kafka-{p}" for p in SCRAM_PRINCIPALS}
            folder = container.args[container.args.index("--credentials") + 1]
            assert {s["target"] for s in secrets} == {f"{folder}/{p}" for p in SCRAM_PRINCIPALS}
            assert env["KAFKA_SASL_PASSWORD_FILE"] == f"{folder}/operator"
        else:
            assert kafka == {f"kafka-{principal}"}, container.where
            [secret] = [s for s in secrets if s["source"] == f"kafka-{principal}"]
            assert env["KAFKA_SASL_PASSWORD_FILE"] == f"/run/secrets/{secret['target']}"
    assert seen >= {"ingest", "process", "materialize", "notify", "serve", "spark", "composite", "prune", "operator"}
    # The services start only once the users and ACLs exist.
    services = compose_services()
    for name in ("process", "materialize", "notify", "serve", "composite", "ingest-simulator"):
        assert services[name]["depends_on"]["kafka-access"]["condition"] == "service_completed_successfully"


def broker_settings(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith("KAFKA_") and name not in
            ("KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_NODE_ID",
             "KAFKA_LOG_DIRS", "KAFKA_HEAP_OPTS") and "REPLICATION" not in name and "ISR" not in name
            and "INSYNC" not in name and "PARTITIONS" not in name and "REBALANCE" not in name
            and "UNCLEAN" not in name and "AUTO_CREATE" not in name}


def test_no_broker_listener_is_without_authentication(resources) -> None:
    [kafka] = [c for c in k8s_containers(resources) if c.where == "StatefulSet/kafka/kafka"]
    compose = next(c for c in compose_containers() if c.where == "compose/kafka")
    for env in (kafka.env, compose.env):
        protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(protocols.values()) <= SASL, protocols
        listeners = {item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")}
        assert listeners == set(protocols)
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        assert set(env["KAFKA_SUPER_USERS"].split(";")) == {"User:broker", "User:operator"}
        assert env["KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
        # The PLAIN passwords are files read by Kafka's config provider, not values.
        for name in ("KAFKA_LISTENER_NAME_INTERNAL_PLAIN_SASL_JAAS_CONFIG",
                     "KAFKA_LISTENER_NAME_CONTROLLER_PLAIN_SASL_JAAS_CONFIG"):
            passwords = re.findall(r'(?:password|user_\w+)="([^"]*)"', env[name])
            assert passwords and all(p.startswith("${dir:/etc/kafka/secrets:") for p in passwords), env[name]
    # Both deployments configure the broker's security alike.
    assert broker_settings(kafka.env) == broker_settings(compose.env)
    spec = pod_spec(one(resources, "StatefulSet", "kafka"))
    files = {name: unhashed(ref) for name, ref in secret_mounts(spec, spec["containers"][0])["/etc/kafka/secrets"].items()}
    assert files == {"broker": "kafka-broker/password", "operator": "kafka-user-operator/password"}


# ---------------------------------------------------------------------------------------------
# Spark, Redis clients, and no password anywhere a process list or a manifest shows


def test_spark_authenticates_everywhere_it_runs(resources) -> None:
    for name in ("spark-master", "spark-worker"):
        spec = pod_spec(one(resources, "Deployment", name))
        container = spec["containers"][0]
        args = [str(a) for a in container["args"]]
        path = args[args.index("--properties-file") + 1]
        assert unhashed(secret_behind(spec, container, path)) == "spark-auth/spark-defaults.conf", name
    backfill = next(c for c in k8s_containers(resources) if c.stockstream_command == ["backfill"])
    behind = secret_behind(pod_spec(backfill.workload), backfill.spec, backfill.env["SPARK_CONF_DIR"] + "/spark-defaults.conf")
    assert unhashed(behind) == "spark-auth/spark-defaults.conf"
    for secret in by_kind(resources, "Secret").values():  # dev: the generated throw-away one
        if secret["metadata"]["name"].startswith("spark-auth"):
            conf = base64.b64decode(secret["data"]["spark-defaults.conf"]).decode()
            assert "spark.authenticate true" in conf.splitlines()
            assert re.search(r"^spark\.authenticate\.secret \S{16,}$", conf, re.M)
    services = compose_services()
    for name in ("spark-master", "spark-worker"):
        command = services[name]["command"]
        assert command[command.index("--properties-file") + 1] == "/run/secrets/spark-auth"
        assert [s["source"] for s in services[name]["secrets"]] == ["spark-auth"]
    backfill_service = services["backfill"]
    target = backfill_service["environment"]["SPARK_CONF_DIR"] + "/spark-defaults.conf"
    assert {"source": "spark-auth", "target": target} in backfill_service["secrets"]


def test_each_redis_client_is_its_own_acl_user(resources) -> None:
    for container in k8s_containers(resources):
        command = container.stockstream_command
        if command is None or "REDIS_URL" not in container.env:
            continue
        user = REDIS_USER_OF_COMMAND.get(" ".join(command[:2])) or REDIS_USER_OF_COMMAND[command[0]]
        assert container.env["REDIS_USERNAME"] == user, container.where
        behind = secret_behind(pod_spec(container.workload), container.spec, container.env["REDIS_PASSWORD_FILE"])
        assert unhashed(behind) == f"redis-user-{user}/password", container.where
    spec = pod_spec(one(resources, "StatefulSet", "redis"))
    redis = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in redis["env"]}
    files = {name: unhashed(ref) for name, ref in secret_mounts(spec, redis)[env["REDIS_USERS_DIR"]].items()}
    assert files == {user: f"redis-user-{user}/password" for user in REDIS_USERS}
    assert redis["command"] == ["sh", "/etc/redis/start/redis-start.sh"]
    [start] = [c for n, c in by_kind(resources, "ConfigMap").items() if n.startswith("redis-start")]
    assert start["data"]["redis-start.sh"] == (REPO / "ops/redis/redis-start.sh").read_text()
    services = compose_services()
    for command, user in REDIS_USER_OF_COMMAND.items():
        name = command.replace(" ", "-")
        assert services[name]["environment"]["REDIS_USERNAME"] == user
        assert {"source": f"redis-{user}", "target": "redis-password"} in services[name]["secrets"]
    assert {s["target"] for s in services["redis"]["secrets"]} == {f"/etc/redis/users/{u}" for u in REDIS_USERS}


SECRET_FLAGS = ("--requirepass", "--masterauth", "--pass", "-a", "--password")


def test_no_password_is_an_argument_a_command_or_an_environment_value(resources) -> None:
    secrets = by_kind(resources, "Secret")
    values = {base64.b64decode(v).decode() for s in secrets.values() for v in s.get("data", {}).values()}
    values |= {line.split()[-1] for v in values for line in v.splitlines() if line.startswith("spark.authenticate.secret")}
    config_maps = by_kind(resources, "ConfigMap")
    for container in k8s_containers(resources):
        shown = [*(container.command or []), *container.args,
                 *(str(container.env[name]) for name in container.literal_env)]
        for item in container.spec.get("env", []):
            if "value" in item:
                shown.append(str(item["value"]))
        assert not [flag for flag in SECRET_FLAGS if flag in shown], container.where
        for value in values:
            assert not [s for s in shown if value in s], f"{container.where} shows a Secret's value"
        # A variable that holds a password comes from a Secret, or names a file.
        for name in container.literal_env:
            if "PASSWORD" in name or "SECRET" in name:
                assert name.endswith("_FILE"), f"{container.where}: {name} given as a value"
    for config_map in config_maps.values():
        for text in config_map.get("data", {}).values():
            assert not [value for value in values if len(value) > 8 and value in text], config_map["metadata"]["name"]
    for name, service in compose_services().items():
        shown = [*(service.get("entrypoint") or []), *(service.get("command") or []),
                 *(service.get("healthcheck", {}).get("test") or [])]
        assert not [flag for flag in SECRET_FLAGS if flag in shown], name
        for variable in service.get("environment") or {}:
            if ("PASSWORD" in variable or "SECRET" in variable) and not variable.endswith("_FILE"):
                # Only third-party settings from .env remain as values (Grafana's admin, the session key).
                assert variable in {"GF_SECURITY_ADMIN_PASSWORD", "API_SESSION_SECRET"}, (name, variable)


# ---------------------------------------------------------------------------------------------
# Redis users, for real


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    """redis-server started by ops/redis/redis-start.sh, as Compose and Kubernetes start it."""
    import redis

    if shutil.which("redis-server") is None:
        pytest.fail("redis-server not found (make setup installs it)")
    folder = tmp_path_factory.mktemp("redis-users")
    passwords = {user: f"{user}-pw-{os.getpid()}" for user in REDIS_USERS}
    (folder / "users").mkdir()
    for user, password in passwords.items():
        # A trailing newline (a Secret written from a file) must not matter.
        (folder / "users" / user).write_text(password + ("\n" if user == "serve" else ""))
    port = free_port()
    env = {**os.environ, "REDIS_USERS_DIR": str(folder / "users"), "REDIS_ACL_FILE": str(folder / "acl" / "users.acl")}
    server = subprocess.Popen(["sh", str(REPO / "ops/redis/redis-start.sh"), "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(folder)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        admin = redis.Redis(port=port, username="admin", password=passwords["admin"])
        wait_for_redis(admin, timeout_s=120, message="redis-server started by redis-start.sh")
        acl = (folder / "acl" / "users.acl").read_text()
        assert not [p for p in passwords.values() if p in acl], "only hashes in the ACL file"
        assert oct((folder / "acl" / "users.acl").stat().st_mode)[-3:] == "600"
        admin.close()
        yield port, passwords
    finally:
        server.terminate()
        server.wait(30)


def test_serve_may_only_read_and_the_default_user_nothing(acl_redis) -> None:
    import redis

    port, passwords = acl_redis
    admin = redis.Redis(port=port, username="admin", password=passwords["admin"])
    admin.hset("ss:latest:BTC-USD@coinbase", "tick", "{}")
    admin.hset("ssauth:key:0123456789abcdef", "name", "ops")
    serve = redis.Redis(port=port, username="serve", password=passwords["serve"])
    assert serve.hget("ss:latest:BTC-USD@coinbase", "tick") == b"{}"
    assert serve.hgetall("ssauth:key:0123456789abcdef") == {b"name": b"ops"}
    assert serve.exists("ss:latest:BTC-USD@coinbase") == 1  # GET /runs: which runs have views
    assert serve.ping()
    for write in (("SET", "ss:x", "1"), ("DEL", "ss:latest:BTC-USD@coinbase"), ("HSET", "ssauth:key:1", "a", "b"),
                  ("FLUSHALL",), ("CONFIG", "SET", "maxmemory", "1"), ("PUBLISH", "ss:live:updates", "x"),
                  ("CLIENT", "KILL", "ID", "1"), ("EVAL", "return 1", "0"), ("KEYS", "*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            serve.execute_command(*write)
    # Every command serve's user may run at all reads: none is in @write, @admin or @dangerous.
    allowed = []
    for info in admin.execute_command("COMMAND").values():
        commands = [(info["name"], info["arity"], info["acl_categories"])]
        commands += [(sub[0].decode(), sub[1], [c.decode() for c in sub[6]]) for sub in info["subcommands"]]
        for name, arity, categories in commands:
            words = name.split("|")
            args = ["ss:k"] * max(abs(arity) - len(words), 0 if arity > 0 else 1)
            try:
                verdict = admin.execute_command("ACL", "DRYRUN", "serve", *words, *args)
            except redis.exceptions.ResponseError:
                continue  # its arguments cannot be faked this simply (DRYRUN checks the arity)
            if verdict == b"OK":
                allowed.append(name)
                assert not {"@write", "@admin", "@dangerous"} & set(categories), (name, categories)
    assert {"hget", "hgetall", "hmget", "smembers", "sismember", "zrange", "zrevrange", "zrevrangebyscore",
            "ping"} <= set(allowed)
    # The live relay's channels, and no other.
    assert admin.execute_command("ACL", "DRYRUN", "serve", "SUBSCRIBE", "ss:live:updates", "ss:live:notifications") == b"OK"
    assert admin.execute_command("ACL", "DRYRUN", "serve", "SUBSCRIBE", "other") != b"OK"
    anonymous = redis.Redis(port=port)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    for client in (admin, serve, anonymous):
        client.close()


def test_materialize_writes_views_but_not_keys_and_notify_only_publishes(acl_redis) -> None:
    import redis

    port, passwords = acl_redis
    materialize = redis.Redis(port=port, username="materialize", password=passwords["materialize"])
    assert materialize.set("ss:probe", "1")
    assert materialize.eval("return redis.call('set', KEYS[1], 'v')", 1, "ss:scripted") == b"OK"
    with pytest.raises(redis.exceptions.NoPermissionError):
        materialize.hset("ssauth:key:1", "hash", "forged")  # API keys: the operator's alone
    with pytest.raises(redis.exceptions.NoPermissionError):
        materialize.flushall()
    notify = redis.Redis(port=port, username="notify", password=passwords["notify"])
    assert notify.publish("ss:live:notifications", "x") == 0
    for forbidden in (("PUBLISH", "ss:live:updates", "x"), ("GET", "ss:probe"), ("SET", "ss:x", "1")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            notify.execute_command(*forbidden)
    monitor = redis.Redis(port=port, username="monitor", password=passwords["monitor"])
    assert monitor.ping() and "maxmemory" in monitor.info("memory")
    with pytest.raises(redis.exceptions.NoPermissionError):
        monitor.get("ss:probe")
    for client in (materialize, notify, monitor):
        client.close()


def test_prune_finds_and_deletes_only_runs_view_keys(acl_redis) -> None:
    """``stockstream runs prune`` as the Redis user ``prune``: SCAN and DEL on ``<prefix>run:*``, nothing else."""
    import redis

    port, passwords = acl_redis
    admin = redis.Redis(port=port, username="admin", password=passwords["admin"])
    admin.set("ss:run:old:instruments", "x")
    admin.hset("ss:latest:BTC-USD@coinbase", "tick", "{}")
    prune = redis.Redis(port=port, username="prune", password=passwords["prune"])
    assert b"ss:run:old:instruments" in set(prune.scan_iter(match="ss:run:old:*", count=1000))
    assert prune.delete("ss:run:old:instruments") == 1
    for forbidden in (("DEL", "ss:latest:BTC-USD@coinbase"), ("GET", "ss:run:old:x"), ("SET", "ss:run:old:x", "1"),
                      ("DEL", "ssauth:key:1"), ("FLUSHALL",), ("KEYS", "*"), ("PUBLISH", "ss:live:updates", "x")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            prune.execute_command(*forbidden)
    assert admin.hget("ss:latest:BTC-USD@coinbase", "tick") == b"{}"
    for client in (admin, prune):
        client.close()


# ---------------------------------------------------------------------------------------------
# The scripts that make the passwords


def test_make_secrets_draws_every_compose_secret_file_once(tmp_path) -> None:
    script = tmp_path / "make-secrets.sh"
    shutil.copy2(REPO / "ops/compose/make-secrets.sh", script)
    subprocess.run(["sh", str(script)], check=True, capture_output=True, timeout=60)
    folder = tmp_path / "secrets"
    assert oct(folder.stat().st_mode)[-3:] == "700"
    wanted = {Path(s["file"]).name for s in compose_project_secrets().values() if "file" in s}
    made = {path.name: path.read_text() for path in folder.iterdir()}
    assert set(made) == wanted
    passwords = [text for name, text in made.items() if name != "spark-defaults.conf"]
    assert len(set(passwords)) == len(passwords) and all(len(p) >= 32 for p in passwords)
    conf = made["spark-defaults.conf"].splitlines()
    assert conf[0] == "spark.authenticate true" and re.fullmatch(r"spark\.authenticate\.secret \S{32,}", conf[1])
    subprocess.run(["sh", str(script)], check=True, capture_output=True, timeout=60)
    assert {path.name: path.read_text() for path in folder.iterdir()} == made  # kept, not drawn again


def compose_project_secrets() -> dict[str, Any]:
    import json

    from tests.integration.deploy.deploy_support import COMPOSE_SECRETS, compose_project

    return dict(json.loads(compose_project(env=COMPOSE_SECRETS).stdout)["secrets"])


def test_create_access_secrets_makes_what_prod_mounts_and_hands_kubectl_only_files(tmp_path) -> None:
    """With a stand-in ``kubectl`` that records its arguments and the files it is given."""
    bin_dir, log = tmp_path / "bin", tmp_path / "kubectl.log"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$*" in *" get secret "*) exit 1 ;; esac\n'  # nothing exists yet
        'for arg in "$@"; do case "$arg" in --from-file=*) file="${arg#*=}"; '
        f'printf "%s %s\\n" "${{arg%%=*}}" "$(cat "${{file#*=}}")" >> {log}.files ;; esac; done\n')
    (bin_dir / "kubectl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["sh", str(REPO / "ops/k8s/overlays/prod/create-access-secrets.sh"), "stockstream"], env=env,
                   check=True, capture_output=True, timeout=60)
    created = {line.split()[5] for line in log.read_text().splitlines() if " create secret generic " in line}
    referenced = set()
    for workload in workloads(render("prod")):
        spec = pod_spec(workload)
        for container in spec["containers"]:
            for files in secret_mounts(spec, container).values():
                referenced |= {ref.split("/", 1)[0] for ref in files.values()}
    assert created == referenced - {"stockstream-secrets"}
    arguments = log.read_text()
    assert arguments.count("--from-file=") == len(created)
    handed = (tmp_path / "kubectl.log.files").read_text().split()
    secrets = [word for word in handed if len(word) >= 32]  # the drawn passwords, the Spark secret among them
    assert len(set(secrets)) == len(created)
    assert not [secret for secret in secrets if secret in arguments]  # the passwords only ever were files
