"""``stockstream run`` (the whole pipeline on one machine) with each service as its own Kafka user.

On a private stack (its broker has the SASL/SCRAM listener and enforces ACLs), ``stockstream run``
runs ingest (the simulator, a finite count), process, materialize, notify and serve, twice:

- as ``make run`` does, with no Kafka setting of the caller's: on the stack's SASL listener with the
  stack's own password files and the default deployment's ACLs (``stack up`` sets both);
- in a deployment of the caller's own (a topic prefix, ``KAFKA_BOOTSTRAP_SERVERS`` the SASL
  listener): the operator applies its users and ACLs with ``stockstream kafka-access apply
  --credentials <folder>`` (one password file per user, as a mounted Secret holds them) and ``run
  --kafka-credentials <folder>`` gives each service its own user and file.

Each time the test proves:

- each child's environment (read from /proc) names its own user and its own password file, and no password;
- signals reach the Redis views and the API (``/symbols/{symbol}/signals``), ``/health`` is ok
  (serve reaches Kafka as ``serve``), no service is refused or restarted: ingest exits 0 when its
  count is done, and the supervisor leaves it finished (it would replay the feed forever otherwise);
- negative control: with exactly the Kafka settings ``run`` gave ingest (and serve, and
  materialize), producing on ``signals`` is refused (``TOPIC_AUTHORIZATION_FAILED``) and nothing
  forged is on the topic.

The folder holds the same passwords as the stack's own files: ``run`` also brings the local stack
up, and each ``stack up`` sets the users' passwords from the stack's files (docs/security.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from schemas.topics import TopicRegistry
from stockstream.kafka_access.admin import delete_acls
from stockstream.kafka_access.plan import Deployment, grants, may
from stockstream.stack import kafka_security
from stockstream.stack.services import StackSettings
from tests.conftest import RunningStack
from tests.support.kafka_tools import delete_topics, forged_write_error, read_topic, wait_until
from tests.support.ports import free_port
from tests.support.processes import STOCKSTREAM, ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

SERVICES = ("ingest", "process", "materialize", "notify", "serve")
SYMBOLS = ("RA-USD", "RB-USD")


def stack_environment(settings: StackSettings) -> dict[str, str]:
    """The ``STACK_*`` variables that make a ``stockstream`` process see the private stack (its ports, folder)."""
    variables = {
        "STACK_DIR": settings.state_dir, "STACK_KAFKA_LIBS": settings.kafka_libs_dir, "STACK_HOST": settings.host,
        "STACK_KAFKA_PORT": settings.kafka_port, "STACK_KAFKA_CONTROLLER_PORT": settings.kafka_controller_port,
        "STACK_KAFKA_SASL_PORT": settings.kafka_sasl_port, "STACK_REDIS_PORT": settings.redis_port,
        "STACK_PROMETHEUS_PORT": settings.prometheus_port, "STACK_KAFKA_JMX_PORT": settings.kafka_jmx_port,
        "STACK_REDIS_EXPORTER_PORT": settings.redis_exporter_port,
        "STACK_ALERTMANAGER_PORT": settings.alertmanager_port,
    }
    if settings.kafka_credentials_dir is not None:
        variables["STACK_KAFKA_CREDENTIALS_DIR"] = settings.kafka_credentials_dir
    return {name: str(value) for name, value in variables.items()}


def children_of(pid: int) -> dict[str, int]:
    """The ``stockstream <service>`` processes whose parent is ``pid``, by service (from /proc)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        words = [word.decode(errors="replace") for word in argv if word]
        if parent == pid and STOCKSTREAM in words:
            found[words[words.index(STOCKSTREAM) + 1]] = int(entry.name)
    return found


def environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


def get_json(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


def run_the_pipeline(private_stack: RunningStack, tmp_path: Path, registry: TopicRegistry, redis_prefix: str,
                     kafka: dict[str, str], args: list[str], password_dir: Path) -> None:
    """``stockstream run`` on the private stack with a small feed; checks every service's user, the
    signals in the views and the API, and that ingest's (serve's, materialize's) user cannot write signals."""
    settings = private_stack.stack.settings
    plan = Deployment.default(registry)
    api_port = free_port()
    start = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    environment = {
        **stack_environment(settings), **kafka,
        "REDIS_URL": private_stack.redis_url, "REDIS_KEY_PREFIX": redis_prefix,
        # A small seeded feed on a simulated clock, as fast as the broker takes it.
        "INGEST_SOURCE": "simulator", "INGEST_SYMBOLS": ",".join(SYMBOLS), "INGEST_SIM_COUNT": "800",
        "INGEST_SIM_RATE": "0", "INGEST_SIM_SEED": "11", "INGEST_SIM_START": start.isoformat(),
        "PROCESS_STATE_DIR": str(tmp_path / "process-state"), "NOTIFY_STATE_DIR": str(tmp_path / "notify-state"),
        # No fixed port: metrics endpoints off (serve's /health is on its API port too).
        "METRICS_PORT": "0", "API_AUTH": "auto", "LOG_LEVEL": "INFO", "COMPOSITE_SYMBOLS": "",
    }
    run = ServiceProcess(["run", "--api-port", str(api_port), *args], environment)
    try:
        given: dict[str, dict[str, str]] = {}  # each child's environment, read while it runs

        def read_children() -> bool:
            for service, pid in children_of(run.process.pid).items():
                with contextlib.suppress(OSError):  # ingest exits once its count is done (and stays finished)
                    variables = environment_of(pid)
                    if variables:  # empty for a child that has just exited
                        given.setdefault(service, variables)
            return set(given) >= set(SERVICES) or not run.alive()

        wait_until(read_children, timeout_s=300, message="`stockstream run` to start its services")
        assert run.alive(), run.output[-4000:]
        for service in SERVICES:
            child = given[service]
            assert child["KAFKA_SASL_USERNAME"] == service, (service, child.get("KAFKA_SASL_USERNAME"))
            assert child["KAFKA_SASL_PASSWORD_FILE"] == str(password_dir / service)
            assert child["KAFKA_BOOTSTRAP_SERVERS"] == f"{settings.host}:{settings.kafka_sasl_port}"
            assert child["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
            assert not child.get("KAFKA_SASL_PASSWORD")
            assert (password_dir / service).read_text().strip() not in "\0".join(child.values())

        client = redis.Redis.from_url(private_stack.redis_url)

        def signal_views() -> dict[str, int]:  # {p}signals:{SYMBOL@venue} → signals held
            return {key.decode(): int(client.zcard(key)) for key in client.scan_iter(f"{redis_prefix}signals:*")
                    if b":rule:" not in key}

        try:
            wait_until(lambda: all(any(key.startswith(f"{redis_prefix}signals:{symbol}@") and count > 0
                                       for key, count in signal_views().items()) for symbol in SYMBOLS)
                       or not run.alive(), timeout_s=600, interval_s=1.0, message="signals in the Redis views")
        except AssertionError as error:
            raise AssertionError(f"{error}; views: {signal_views()}; {len(client.keys(f'{redis_prefix}*'))} keys"
                                 f" under the prefix\n{run.output[-4000:]}") from None
        assert run.alive(), run.output[-4000:]
        api = f"http://127.0.0.1:{api_port}"
        wait_until(lambda: get_json(f"{api}/health")[0] == 200, timeout_s=120, interval_s=1.0,
                   message="serve's /health ok (Redis, and Kafka as `serve`)")
        status, listed = get_json(f"{api}/symbols")
        assert status == 200 and isinstance(listed, dict) and set(SYMBOLS) <= set(listed["symbols"]), listed
        for symbol in SYMBOLS:
            status, body = get_json(f"{api}/symbols/{symbol}/signals?limit=5")
            assert status == 200 and isinstance(body, dict) and body["signals"], (symbol, body)

        # Negative control: ingest's user (and serve's, materialize's), as run gave it, may not write signals.
        for service in ("ingest", "serve", "materialize"):
            assert not may(grants(plan), service, "WRITE", "topic", registry.signals.name)
            refused = forged_write_error(given[service], registry.signals.name)
            assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (service, refused)
        records = read_topic(private_stack.kafka_bootstrap, registry.signals.name)
        assert records and all(record.key != b"FORGED-USD@test" for record in records)

        output = run.output
        for refusal in ("AUTHORIZATION_FAILED", "Authorization failed", "Authentication failed"):
            assert refusal not in output, output[-4000:]
        wait_until(lambda: "ingest finished (exit 0); not restarted" in run.output, timeout_s=120,
                   message=f"ingest to finish its count\n{run.output[-3000:]}")
        assert "ingest" not in children_of(run.process.pid)  # not started again
        restarts = [line for line in run.output.splitlines() if " exited with " in line]
        assert restarts == [], restarts
    finally:
        run.terminate(timeout_s=120)
    assert "stopped serve" in run.output, run.output[-3000:]


def test_run_with_kafka_credentials_starts_each_service_as_its_own_user(private_stack: RunningStack,
                                                                        tmp_path: Path) -> None:
    """A deployment of the caller's own (topic prefix, Kafka address): users and ACLs by ``kafka-access apply``."""
    settings = private_stack.stack.settings
    namespace = f"arun{uuid.uuid4().hex[:8]}."
    registry = TopicRegistry(prefix=namespace)
    operator_door = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": private_stack.kafka_bootstrap,
                     "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "KAFKA_SASL_USERNAME": "", "KAFKA_SASL_PASSWORD": "",
                     "KAFKA_SASL_PASSWORD_FILE": ""}
    # The services' password files, as a mounted Secret holds them (the operator's is not among them).
    secrets = tmp_path / "kafka-secrets"
    secrets.mkdir(mode=0o700)
    for user in SERVICES:
        shutil.copy2(kafka_security.password_file(settings, user), secrets / user)
    applied = subprocess.run(  # noqa: S603
        [STOCKSTREAM, "kafka-access", "apply", "--topic-prefix", namespace, "--credentials", str(secrets)],
        env=operator_door, capture_output=True, text=True, timeout=120, check=False)
    assert applied.returncode == 0, applied.stderr
    assert f"users: {', '.join(SERVICES)}" in applied.stderr
    # The cluster: the stack's SASL listener, the namespace's topics; no user of the caller's.
    kafka = {"KAFKA_BOOTSTRAP_SERVERS": f"{settings.host}:{settings.kafka_sasl_port}",
             "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "", "KAFKA_SASL_PASSWORD": "",
             "KAFKA_SASL_PASSWORD_FILE": "", "KAFKA_SASL_MECHANISM": "", "STOCKSTREAM_TOPIC_PREFIX": namespace}
    try:
        run_the_pipeline(private_stack, tmp_path, registry, namespace, kafka, ["--kafka-credentials", str(secrets)],
                         secrets)
    finally:
        delete_acls(AdminClient({"bootstrap.servers": private_stack.kafka_bootstrap}),
                    grants(Deployment.default(registry)))
        delete_topics(private_stack.kafka_bootstrap, namespace)


def test_run_on_the_stack_starts_each_service_as_its_own_user(private_stack: RunningStack, tmp_path: Path) -> None:
    """``make run`` as it is: no Kafka setting of the caller's; the stack's users, passwords and ACLs (stack up)."""
    settings = private_stack.stack.settings
    run_the_pipeline(private_stack, tmp_path, TopicRegistry(), "ss:", {}, [],
                     kafka_security.credentials_dir(settings))


def test_run_refuses_kafka_credentials_that_cannot_work_before_starting_anything(tmp_path: Path) -> None:
    """No stack is touched: the check comes first (exit 2 with what to do)."""
    secrets = tmp_path / "kafka-secrets"
    secrets.mkdir()
    (secrets / "ingest").write_text("x\n")
    environment = {**os.environ, "STACK_DIR": str(tmp_path / "never-started"),
                   "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
    refused = subprocess.run([STOCKSTREAM, "run", "--kafka-credentials", str(secrets)],  # noqa: S603
                             env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2, refused.stderr
    assert "no password file for materialize, notify, process, serve in" in refused.stderr
    assert not (tmp_path / "never-started").exists()
