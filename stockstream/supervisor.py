"""``stockstream run``: the local stack plus every pipeline service, in one terminal.

Starts the stack, then each service as a child process (its output prefixed with its
name), restarts a service that dies (with backoff), and on Ctrl-C / SIGTERM stops the
services (SIGTERM, then SIGKILL after a grace period) and the stack services it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from rich.text import Text

from processors.runtime.masking import mask_url
from stockstream.console import console as make_console
from stockstream.kafka_access.plan import PRINCIPAL_OF_COMMAND
from stockstream.stack import kafka_security
from stockstream.stack.manager import Stack

STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))
COLORS = ["cyan", "magenta", "green", "yellow", "blue", "bright_red"]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    args: tuple[str, ...]
    url: str = ""


@dataclass
class Child:
    spec: ServiceSpec
    color: str
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    threads: list[threading.Thread] = field(default_factory=list)


def default_services(available: set[str], api_port: int,
                     environ: Mapping[str, str] | None = None) -> list[ServiceSpec]:
    """The pipeline, in start order; services whose command does not exist yet are left out.

    Ingest reads its source and symbols from the environment the children inherit
    (``INGEST_SOURCE``, default the simulator, and ``INGEST_SYMBOLS``); the composite index runs
    only when ``COMPOSITE_SYMBOLS`` names symbols.
    """
    environ = os.environ if environ is None else environ
    source = environ.get("INGEST_SOURCE") or "simulator"
    wanted = [
        ServiceSpec("ingest", ("ingest",), f"{source} metrics http://127.0.0.1:9101/metrics"),
        ServiceSpec("process", ("process",), "metrics http://127.0.0.1:9102/metrics"),
        ServiceSpec("materialize", ("materialize",), "metrics http://127.0.0.1:9103/metrics"),
        ServiceSpec("notify", ("notify",), "metrics http://127.0.0.1:9104/metrics"),
        # Bound to loopback, so API keys are off by default (API_AUTH=auto); API_AUTH=on requires them here too.
        ServiceSpec("serve", ("serve", "--port", str(api_port)),
                    f"dashboard http://127.0.0.1:{api_port}/  API docs http://127.0.0.1:{api_port}/docs  "
                    "metrics http://127.0.0.1:9105/metrics"),
    ]
    if (environ.get("COMPOSITE_SYMBOLS") or "").strip():
        wanted.insert(2, ServiceSpec("composite", ("composite",), "metrics http://127.0.0.1:9106/metrics"))
    return [spec for spec in wanted if spec.args[0] in available]


# Settings that point a service at another cluster or deployment than the local stack's default one:
# with any of them set, the services keep the caller's Kafka settings (the stack's ACLs would not fit).
_OWN_KAFKA_SETTINGS = ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_USERNAME",
                       "STOCKSTREAM_TOPIC_PREFIX", "PROCESS_CONSUMER_GROUP", "MATERIALIZE_CONSUMER_GROUP",
                       "NOTIFY_CONSUMER_GROUP", "COMPOSITE_CONSUMER_GROUP")
_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


def principal_of(service: str) -> str:
    """The Kafka user a ``stockstream run`` child runs as (``PRINCIPAL_OF_COMMAND``)."""
    return PRINCIPAL_OF_COMMAND[service]


def check_credentials(services: list[ServiceSpec], credentials: Path, environ: Mapping[str, str]) -> None:
    """Refuse ``--kafka-credentials`` that cannot work, before anything starts (``ValueError``, says what to do).

    The folder must hold a password file for the user of every service started, and the caller must
    name the cluster (``KAFKA_BOOTSTRAP_SERVERS`` with a SASL protocol). Not the local stack's default:
    there every service already runs as its own user, and each ``stack up`` (``run`` does one) sets the
    users' passwords back to the stack's own files (``STACK_KAFKA_CREDENTIALS_DIR``).
    """
    if not credentials.is_dir():
        raise ValueError(f"--kafka-credentials: {credentials} is not a folder (one password file per user)")
    missing = sorted({principal_of(spec.args[0]) for spec in services} -
                     {path.name for path in credentials.iterdir() if path.is_file()})
    if missing:
        raise ValueError(f"--kafka-credentials: no password file for {', '.join(missing)} in {credentials}"
                         " (one file per user, named after it, as `kafka-access apply --credentials` reads)")
    if not (environ.get("KAFKA_BOOTSTRAP_SERVERS") or "").strip():
        raise ValueError("--kafka-credentials is for a cluster of your own: set KAFKA_BOOTSTRAP_SERVERS (and"
                         " KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT or SASL_SSL); on the local stack every service"
                         " already runs as its own user (passwords in STACK_KAFKA_CREDENTIALS_DIR)")
    protocol = (environ.get("KAFKA_SECURITY_PROTOCOL") or "").strip()
    if protocol not in _SASL_PROTOCOLS:
        raise ValueError("--kafka-credentials needs KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT or SASL_SSL"
                         f" (it is {protocol or 'unset, PLAINTEXT'})")


def kafka_environment(service: str, stack: kafka_security.StackSettings, environ: Mapping[str, str],
                      credentials: Path | None = None) -> dict[str, str]:
    """The Kafka variables ``stockstream run`` gives ``service``: its own user on the stack's SASL listener.

    Empty (the child inherits the caller's settings, PLAINTEXT by default) for a broker without the
    SASL listener, or when the caller set any of ``_OWN_KAFKA_SETTINGS``.

    With ``credentials`` (``run --kafka-credentials``, checked by :func:`check_credentials`): the
    service's own user and its password file in that folder, on the caller's cluster (address,
    protocol, topic prefix and groups are inherited; mechanism SCRAM-SHA-512 unless set). The
    caller's own user and password never reach a child.
    """
    if credentials is not None:
        principal = principal_of(service)
        mechanism = (environ.get("KAFKA_SASL_MECHANISM") or "").strip() or kafka_security.MECHANISM
        return {"KAFKA_SASL_MECHANISM": mechanism, "KAFKA_SASL_USERNAME": principal, "KAFKA_SASL_PASSWORD": "",
                "KAFKA_SASL_PASSWORD_FILE": str(credentials / principal)}
    if not kafka_security.is_secured(stack) or any((environ.get(name) or "").strip() for name in _OWN_KAFKA_SETTINGS):
        return {}
    return kafka_security.client_environment(stack, service)


class Supervisor:
    def __init__(self, services: list[ServiceSpec], stack: Stack, keep_stack: bool,
                 kafka_credentials: Path | None = None) -> None:
        self.children = [Child(spec, COLORS[i % len(COLORS)]) for i, spec in enumerate(services)]
        self.stack = stack
        self.keep_stack = keep_stack
        self.kafka_credentials = kafka_credentials
        self.kafka_env: dict[str, dict[str, str]] = {}  # per service, fixed once the stack is up
        self.stopping = threading.Event()
        self.started_stack: list[str] = []
        self.console = make_console()

    def _pump(self, child: Child, stream: IO[bytes]) -> None:
        prefix = Text(f"{child.spec.name:>11} │ ", style=child.color)
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.console.print(prefix + Text(line), soft_wrap=True)
        stream.close()

    def _start(self, child: Child) -> None:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [STOCKSTREAM, *child.spec.args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.kafka_env.get(child.spec.name, {})},
        )
        child.process = process
        child.started_at = time.monotonic()
        pump = threading.Thread(target=self._pump, args=(child, cast(IO[bytes], process.stdout)), daemon=True)
        pump.start()
        child.threads = [pump]

    def run(self) -> int:
        self.console.print("[bold]starting the local stack…[/]")
        before = {entry.name for entry in self.stack.status() if entry.answering}
        self.stack.up(on_ready=lambda name, s: self.console.print(f"  ✓ {name} ready in {s:.1f}s"))
        self.started_stack = [name for name in self.stack.services if name not in before]
        self.kafka_env = {child.spec.name: kafka_environment(child.spec.args[0], self.stack.settings, os.environ,
                                                             self.kafka_credentials)
                          for child in self.children}
        for child in self.children:
            self._start(child)
        self._banner()
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        try:
            while not self.stopping.is_set():
                for child in self.children:
                    code = child.process.poll() if child.process is not None else None
                    if code is not None and not self.stopping.is_set():
                        child.restarts += 1
                        delay = min(30.0, 2.0 ** min(child.restarts, 5))
                        self.console.print(f"[red]{child.spec.name} exited with {code}; restart #{child.restarts}"
                                      f" in {delay:.0f}s[/]")
                        self.stopping.wait(delay)
                        if not self.stopping.is_set():
                            self._start(child)
                self.stopping.wait(0.5)
        except KeyboardInterrupt:
            pass
        return self.shutdown()

    def _banner(self) -> None:
        settings = self.stack.settings
        self.console.print("\n[bold green]stockstream is running[/] — Ctrl-C stops everything")
        self.console.print(f"  Kafka      {mask_url(settings.kafka_bootstrap)}   Redis {mask_url(settings.redis_url)}")
        self.console.print(f"  Prometheus {settings.prometheus_url}   Alertmanager {settings.alertmanager_url}")
        own_users = next((env for env in self.kafka_env.values() if env.get("KAFKA_SASL_USERNAME")), None)
        if own_users is not None:
            address = own_users.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
            passwords = f", passwords from {self.kafka_credentials}" if self.kafka_credentials else ""
            self.console.print(f"  services on Kafka {mask_url(address)}, each as its own user{passwords}"
                               " (docs/security.md)", soft_wrap=True)
        for child in self.children:
            if child.spec.url:
                self.console.print(f"  {child.spec.name:<10} {child.spec.url}")
        self.console.print("  watch ticks:  .venv/bin/stockstream tail --topic ticks")
        self.console.print("  stack status: .venv/bin/stockstream stack status\n")

    def shutdown(self) -> int:
        self.console.print("\n[bold]stopping services…[/]")
        for child in reversed(self.children):
            if child.process and child.process.poll() is None:
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            self.console.print(f"  stopped {child.spec.name} ({child.process.returncode})")
        if not self.keep_stack and self.started_stack:
            stopped = self.stack.down(self.started_stack)
            self.console.print(f"  stopped stack: {', '.join(stopped)}")
        return 0
