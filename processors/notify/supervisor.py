"""The ``stockstream notify`` process: one lane process per channel, watched and restarted.

The supervisor validates nothing itself (the command already did), creates the
topics, positions the lane consumer groups for ``--since`` / ``--renotify``,
starts the lanes, restarts a crashed lane with exponential backoff, and serves the
lanes' aggregated metrics on ``METRICS_PORT``. SIGTERM/SIGINT stop the lanes
gracefully (SIGTERM, then SIGKILL after ``NOTIFY_SHUTDOWN_GRACE_S``).
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from pydantic import SecretStr

from processors.notify.offsets import last_stable_offsets, set_group_offsets, start_offsets
from processors.notify.settings import NotifySettings
from processors.notify.spec import LaneSpec
from processors.notify.subscriptions import NotifyConfig
from processors.runtime.kafka_admin import KafkaUnavailableError, ensure_topics, wait_for_kafka
from processors.runtime.observability import HEALTH, serve_metrics, start_metrics_server

log = logging.getLogger(__name__)

ReplayFrom = datetime | Literal["beginning"] | None
LANE_RESTARTS = Counter("stockstream_notify_lane_restarts_total",
                        "Lane processes restarted by the supervisor after they exited unexpectedly", ["channel"])
_STABLE_RUN_S = 60.0
_RENOTIFY_MAX_RESTARTS = 3


@dataclass
class _Lane:
    spec: LaneSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    exit_codes: list[int] = field(default_factory=list)
    finished: bool = False


class _Forward(Collector):
    """Exposes the supervisor's own registry next to the lanes' multiprocess metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator:  # type: ignore[type-arg]
        yield from self._registry.collect()


class Supervisor:
    """Runs the lanes of one notifier; :meth:`run` blocks until stopped (or, for renotify, until done)."""

    def __init__(self, settings: NotifySettings, config: NotifyConfig, secrets: dict[str, SecretStr], *,
                 renotify: bool = False, since: ReplayFrom = None) -> None:
        self.settings = settings
        self.config = config
        self.secrets = secrets
        self.renotify = renotify
        self.since: ReplayFrom = "beginning" if renotify and since is None else since
        self._stop = threading.Event()
        self._lanes: list[_Lane] = []
        self._metrics_dir = ""

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Start everything and supervise; returns the process exit code."""
        settings = self.settings
        topics = settings.topics()
        # Retried until Kafka has as many brokers as the replication factor (a first start of a
        # cluster brings them up one by one) or the notifier is stopped.
        while True:
            try:
                wait_for_kafka(settings)
                ensure_topics(settings, [topics.signals, topics.notifications_dlq])
                HEALTH.clear("kafka")
                break
            except KafkaUnavailableError as error:
                HEALTH.problem("kafka", "Kafka not ready at start-up")
                log.warning("%s; retrying", error)
                if self._stop.wait(1.0):
                    return 0
        stop_offsets = self._position_groups(topics.signals.name)
        self._metrics_dir = tempfile.mkdtemp(prefix="stockstream-notify-metrics-")
        try:
            self._serve_metrics()
            self._lanes = [_Lane(self._spec(name, stop_offsets)) for name in sorted(self.config.channels)]
            log.info("notifier starting %d lane(s): %s%s", len(self._lanes),
                     ", ".join(f"{lane.spec.channel} ({lane.spec.config.type})" for lane in self._lanes),
                     " [renotify]" if self.renotify else "")
            return self._supervise()
        finally:
            self._stop_lanes()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _position_groups(self, topic: str) -> dict[int, int] | None:
        """Renotify runs only: move their groups to ``since`` and find where the log ends now."""
        if not self.renotify or self.since is None:
            return None
        since = None if self.since == "beginning" else self.since
        offsets = start_offsets(self.settings, topic, since)
        for channel in self.config.channels:
            group = self.settings.lane_group(channel, renotify=self.renotify)
            set_group_offsets(self.settings, group, topic, offsets)
        log.info("renotify groups moved to %s (%s)", self.since if since else "the beginning of the log",
                 ", ".join(f"p{p}@{o}" for p, o in sorted(offsets.items())))
        last = last_stable_offsets(self.settings, topic)
        return {p: offset for p, offset in last.items() if offset is not None and offset >= offsets.get(p, 0)}

    def _spec(self, channel: str, stop_offsets: dict[int, int] | None) -> LaneSpec:
        config = self.config.channels[channel]
        return LaneSpec(
            channel=channel,
            config=config,
            subscriptions=self.config.subscriptions_of(channel),
            secrets={name: self.secrets[name] for name in config.secret_env_names()},
            settings=self.settings,
            parent_pid=os.getpid(),
            renotify=self.renotify,
            stop_offsets=stop_offsets if self.renotify else None,
        )

    def _serve_metrics(self) -> None:
        start_metrics_server(self.settings.metrics_host, 0, "notify")  # registers build info
        if not self.settings.metrics_port:
            return
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._metrics_dir)  # type: ignore[no-untyped-call]
        registry.register(_Forward(REGISTRY))
        try:
            serve_metrics(self.settings.metrics_host, self.settings.metrics_port, registry=registry)
        except OSError as error:
            if not self.renotify:
                raise
            # A renotify run usually sits next to the live notifier, which holds the port.
            log.warning("metrics port %d unavailable (%s); this renotify run has no /metrics",
                        self.settings.metrics_port, error.strerror)

    def _start(self, lane: _Lane) -> None:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self._metrics_dir}
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "processors.notify.lane_main"], stdin=subprocess.PIPE, env=env)
        assert process.stdin is not None  # noqa: S101 - stdin=PIPE
        process.stdin.write(pickle.dumps(lane.spec))
        process.stdin.close()
        lane.process = process
        lane.started_at = time.monotonic()
        HEALTH.clear(f"lane:{lane.spec.channel}")

    def _supervise(self) -> int:
        if self._stop.is_set():
            return 0
        for lane in self._lanes:
            self._start(lane)
        HEALTH.mark_ready()
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for lane in self._lanes:
                if lane.finished:
                    continue
                if lane.process is None:
                    if now >= lane.next_start:
                        LANE_RESTARTS.labels(lane.spec.channel).inc()
                        self._start(lane)
                    continue
                code = lane.process.poll()
                if code is None:
                    continue
                lane.process = None
                lane.exit_codes.append(code)
                if self.renotify and (code == 0 or lane.restarts >= _RENOTIFY_MAX_RESTARTS):
                    lane.finished = True
                    if code != 0:
                        log.error("renotify lane %s failed %d times; giving up", lane.spec.channel, len(lane.exit_codes))
                    continue
                if now - lane.started_at > _STABLE_RUN_S:
                    lane.restarts = 0
                delay = min(self.settings.lane_restart_max_s, 2.0 ** lane.restarts)
                lane.restarts += 1
                lane.next_start = now + delay
                HEALTH.problem(f"lane:{lane.spec.channel}", f"exited with code {code}; restarting")
                log.error("lane %s exited with code %d; restarting in %.0fs", lane.spec.channel, code, delay)
            if self.renotify and all(lane.finished for lane in self._lanes):
                failed = [lane.spec.channel for lane in self._lanes if lane.exit_codes[-1] != 0]
                if failed:
                    log.error("renotify failed on: %s", ", ".join(failed))
                    return 1
                log.info("renotify finished on every channel")
                return 0
        return 0

    def _stop_lanes(self) -> None:
        running = [lane.process for lane in self._lanes if lane.process is not None and lane.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_grace_s
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("lane pid %d did not stop within the grace period; killing it", process.pid)
                process.kill()
                process.wait(10)
