"""One namespaced deployment of the whole pipeline as real subprocesses, with a watchdog that restarts them.

A :class:`Deployment` is what ``stockstream run`` or a Kubernetes namespace is: ``ingest``
(the seeded simulator on a simulated clock, so two deployments ingest byte-identical ticks),
``process``, ``materialize``, ``notify`` (one webhook channel) and ``serve``, each with its
own metrics port, state folder, consumer groups, topic prefix and Redis key prefix. Like a
supervisor, the watchdog restarts a service that exits (ingest only if it exits non-zero:
exit 0 means its finite input is done); the chaos scenario kills services on purpose with
:meth:`Deployment.kill9` and restarts them itself.

Used by tests/chaos and tests/soak and by ``bench/soak.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

SERVICES = ("ingest", "process", "materialize", "notify", "serve")
CHANNEL = "hook"
# The channel subscribes to the two RSI rules: ~5 % of ticks fire one. All four rules on the tick
# timeframe fire on ~17 % of ticks, far more than anyone wants as webhook calls.
NOTIFIED_RULES = ("rsi_reversal", "seed_rsi_ema")


@dataclass(frozen=True)
class Feed:
    """What the simulator ingests. ``start`` set = simulated clock (reproducible); None = wall clock."""

    symbols: tuple[str, ...]
    count: int | None
    seed: int
    rate: float  # ticks/s over all symbols, 0 = as fast as the broker takes
    start: datetime | None = None
    step_s: float = 1.0

    def args(self, rate: float | None = None) -> list[str]:
        args = ["ingest", "--source", "simulator", "--symbols", ",".join(self.symbols), "--seed", str(self.seed),
                "--rate", f"{self.rate if rate is None else rate:g}"]
        if self.count is not None:
            args += ["--count", str(self.count)]
        if self.start is not None:
            args += ["--start-time", self.start.strftime("%Y-%m-%dT%H:%M:%S%z"), "--step", f"{self.step_s:g}"]
        return args


@dataclass
class Running:
    name: str
    args: list[str]
    env: dict[str, str]
    process: ServiceProcess
    started_at: float
    starts: int = 1
    held: bool = False  # down on purpose: the watchdog leaves it alone
    finished: bool = False  # ingest ended its finite input (exit 0)
    logs: list[Path] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)


class Deployment:
    """The five services of one namespace against one Kafka + Redis."""

    def __init__(self, *, bootstrap: str, redis_url: str, namespace: str, workdir: Path, feed: Feed,
                 webhook_url: str | None, extra_env: dict[str, dict[str, str]] | None = None,
                 notify_replicas: int = 1) -> None:
        self.bootstrap = bootstrap
        self.redis_url = redis_url
        self.namespace = namespace
        self.workdir = workdir
        self.feed = feed
        self.webhook_url = webhook_url
        self.extra_env = extra_env or {}
        # More notifier instances join the same lane groups and split the partitions (docs/notify.md).
        extra = tuple(f"notify-{n}" for n in range(2, notify_replicas + 1))
        self.names: tuple[str, ...] = (*SERVICES[:4], *extra, SERVICES[4])
        self.ports = {name: free_port() for name in self.names}  # each service's METRICS_PORT
        self.api_port = free_port()  # serve's API (its /metrics is on ports["serve"], like every service)
        self.services: dict[str, Running] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.watchdog_restarts: dict[str, int] = {}
        workdir.mkdir(parents=True, exist_ok=True)

    # ---- configuration -------------------------------------------------------------------
    @property
    def process_group(self) -> str:
        return f"{self.namespace}stockstream-process"

    @property
    def materialize_group(self) -> str:
        return f"{self.namespace}stockstream-materialize"

    @property
    def notify_group(self) -> str:
        return f"{self.namespace}notify.{CHANNEL}"

    def subscriptions_file(self) -> Path:
        path = self.workdir / "subscriptions.toml"
        path.write_text(f"""
[channels.{CHANNEL}]
type = "webhook"
allow_private_network = true
url = "{self.webhook_url}"
rate_limit = {{ per_second = 1000, burst = 1000 }}

[[subscriptions]]
channel = "{CHANNEL}"
rules = {json.dumps(list(NOTIFIED_RULES))}
cooldown = 0
""")
        return path

    def env(self, name: str) -> dict[str, str]:
        common = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "STOCKSTREAM_TOPIC_PREFIX": self.namespace,
            "REDIS_URL": self.redis_url, "REDIS_KEY_PREFIX": self.namespace, "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1", "METRICS_PORT": str(self.ports[name]),
        }
        kind, _, replica = name.partition("-")
        own: dict[str, str] = {
            "ingest": {},
            "process": {"PROCESS_STATE_DIR": str(self.workdir / "process-state"),
                        # a stable id (the pod name in k8s): a restart fences its killed predecessor at once
                        "PROCESS_TRANSACTIONAL_ID": f"{self.namespace}process-0"},
            # static membership, as a StatefulSet gives it: a restart takes the partitions back at once
            "materialize": {"MATERIALIZE_INSTANCE_ID": f"{self.namespace}materialize-0"},
            "notify": {"NOTIFY_SUBSCRIPTIONS": str(self.subscriptions_file()) if self.webhook_url else "",
                       "NOTIFY_CONSUMER_GROUP": f"{self.namespace}notify",
                       "NOTIFY_STATE_DIR": str(self.workdir / f"notify-state{replica}"),
                       "NOTIFY_INSTANCE_ID": f"{self.namespace}notify-{replica or 1}",
                       # simulated event time lies days back: without this every signal is "stale"
                       "NOTIFY_MAX_AGE_S": "1e9",
                       "NOTIFY_MAX_ATTEMPTS": "100", "NOTIFY_RETRY_DEADLINE_S": "600",
                       "NOTIFY_BACKOFF_MAX_S": "2", "NOTIFY_LANE_RESTART_MAX_S": "4",
                       "NOTIFY_SHUTDOWN_GRACE_S": "10"},
            "serve": {"API_HOST": "127.0.0.1", "API_PORT": str(self.api_port)},
        }[kind]
        return {**common, **own, **self.extra_env.get(name, {})}

    def args(self, name: str) -> list[str]:
        if name == "ingest":
            return self.feed.args()
        return [name.partition("-")[0]]

    # ---- life cycle ----------------------------------------------------------------------
    def start(self, names: Iterable[str] | None = None, *, args: dict[str, list[str]] | None = None) -> None:
        for name in self.names if names is None else names:
            self._spawn(name, (args or {}).get(name) or self.args(name))
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name=f"watchdog-{self.namespace}", daemon=True)
            self._watchdog.start()

    def _spawn(self, name: str, args: list[str]) -> Running:
        with self._lock:
            previous = self.services.get(name)
            process = ServiceProcess(args, self.env(name))
            running = Running(name, args, self.env(name), process, time.monotonic())
            if previous is not None:
                running.starts = previous.starts + 1
                running.logs = [*previous.logs]
                running.exits = [*previous.exits]
            running.logs.append(process.log_path)
            self.services[name] = running
            return running

    def kill9(self, name: str) -> float:
        """SIGKILL the service's whole process group (lanes included); returns when it happened (monotonic)."""
        with self._lock:
            running = self.services[name]
            running.held = True
            running.process.kill9()
            running.exits.append(-9)
            return time.monotonic()

    def restart(self, name: str, args: list[str] | None = None) -> float:
        """Start the service again (after :meth:`kill9`); returns the spawn time (monotonic)."""
        with self._lock:
            running = self._spawn(name, args or self.services[name].args)
            return running.started_at

    def finish_feed(self, timeout_s: float = 120.0) -> int:
        """End an endless feed now: SIGTERM to ingest, which flushes what it accepted and exits 0.

        The log then holds a prefix of the seeded feed (every tick the simulator made, none after); returns
        ingest's exit code. Afterwards :meth:`ingest_finished` is true, as for a feed that ran out.
        """
        with self._lock:
            running = self.services["ingest"]
            running.held = True
        process = running.process.process
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        code = process.wait(timeout_s)
        with self._lock:
            running.exits.append(code)
            running.finished = code == 0
        return code

    def alive(self, name: str) -> bool:
        return self.services[name].process.alive()

    def ingest_finished(self) -> bool:
        return self.services["ingest"].finished

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                for name, running in list(self.services.items()):
                    if running.held or running.finished or running.process.alive():
                        continue
                    code = running.process.process.returncode
                    running.exits.append(code)
                    if name == "ingest" and code == 0:
                        running.finished = True
                        continue
                    self.watchdog_restarts[name] = self.watchdog_restarts.get(name, 0) + 1
                    self._spawn(name, running.args)

    def stop(self) -> None:
        """Stop the watchdog, then every service at once (SIGTERM, SIGKILL after a 30 s grace period)."""
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(5)
        running = list(self.services.values())
        for service in running:
            service.held = True
            if service.process.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.process.process.pid, signal.SIGTERM)
        for service in running:
            service.process.terminate(30)  # waits for the exit (SIGKILL after the grace period)

    def output(self, name: str) -> str:
        """Every log line the service wrote, over all its starts."""
        return "".join(path.read_text(errors="replace") for path in self.services[name].logs if path.exists())

    # ---- probes --------------------------------------------------------------------------
    def metrics(self, name: str, timeout_s: float = 3.0) -> dict[str, float]:
        """Samples of the service's /metrics, keyed ``name{label="v",…}`` (empty if unreachable)."""
        port = self.ports[name]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as reply:  # noqa: S310
                text = reply.read().decode()
        except (OSError, urllib.error.URLError):
            return {}
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = float(sample.value)
        return samples

    def metric_sum(self, name: str, prefix: str) -> float:
        """Sum of every sample whose name (labels included) starts with ``prefix``."""
        return sum(value for key, value in self.metrics(name).items() if key.startswith(prefix))

    def api(self, path: str, timeout_s: float = 3.0) -> tuple[int, object]:
        """GET on the API; (status, JSON body) — (0, None) when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}{path}", timeout=timeout_s) as reply:  # noqa: S310
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, None
        except (OSError, urllib.error.URLError, ValueError):
            return 0, None

    def ready(self, name: str, timeout_s: float = 3.0) -> bool:
        """The service's ``/ready`` on its metrics port answers 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[name]}/ready", timeout=timeout_s) as reply:  # noqa: S310
                return reply.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def api_healthy(self) -> bool:
        status, body = self.api("/health")
        return status == 200 and isinstance(body, dict) and body.get("status") == "ok"
