"""``stockstream stack up|down|status``: the local real services on loopback, no Docker.

``up`` is idempotent: a service this stack already runs is left alone; a port taken by
something else is an error that says so. It returns only when every service really
answers, or raises :class:`StackError` with the service's log tail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from stockstream.stack.alertmanager import Alertmanager
from stockstream.stack.processes import log_tail, port_in_use, read_pid_file, spawn, stop
from stockstream.stack.services import Service, StackSettings, all_services


class StackError(RuntimeError):
    """A service did not start; the message carries its log tail."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    port: int
    pid: int | None
    answering: bool


class Stack:
    """The local stack rooted at ``settings.state_dir``."""

    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        services = [*all_services(self.settings), Alertmanager(self.settings)]
        self.services: dict[str, Service] = {service.name: service for service in services}

    def _pid_file(self, name: str) -> Path:
        return self.settings.state_dir / "run" / f"{name}.pid"

    def _log_file(self, name: str) -> Path:
        return self.settings.state_dir / "logs" / f"{name}.log"

    def _select(self, names: Iterable[str] | None) -> list[Service]:
        if not names:
            return list(self.services.values())
        unknown = set(names) - set(self.services)
        if unknown:
            raise StackError(f"unknown service(s): {', '.join(sorted(unknown))}; known: {', '.join(self.services)}")
        return [self.services[name] for name in self.services if name in set(names)]

    def up(
        self,
        names: Iterable[str] | None = None,
        *,
        on_ready: Callable[[str, float], None] | None = None,
    ) -> dict[str, float]:
        """Start what is not running and wait until it answers; returns seconds to ready per service."""
        selected = self._select(names)
        started: dict[str, float] = {}
        begin: dict[str, float] = {}
        for service in selected:
            if read_pid_file(self._pid_file(service.name)) is not None:
                continue
            if port_in_use(self.settings.host, service.port()):
                raise StackError(
                    f"{service.name}: port {service.port()} on {self.settings.host} is taken by another"
                    f" process; stop it or choose another port (STACK_{service.name.upper().replace('-', '_')}_PORT)"
                )
            service.prepare()
            begin[service.name] = time.monotonic()
            spawn(
                service.command(),
                log_file=self._log_file(service.name),
                pid_file=self._pid_file(service.name),
                cwd=self.settings.state_dir,
            )
        deadline = time.monotonic() + self.settings.start_timeout_s
        waiting = [service for service in selected if service.name in begin]
        while waiting:
            for service in list(waiting):
                if service.ready():
                    started[service.name] = time.monotonic() - begin[service.name]
                    waiting.remove(service)
                    if on_ready is not None:
                        on_ready(service.name, started[service.name])
                elif read_pid_file(self._pid_file(service.name)) is None:
                    raise StackError(
                        f"{service.name} exited during start-up; last log lines"
                        f" ({self._log_file(service.name)}):\n{log_tail(self._log_file(service.name))}"
                    )
            if waiting and time.monotonic() > deadline:
                names_left = ", ".join(service.name for service in waiting)
                tails = "\n".join(
                    f"--- {service.name} ({self._log_file(service.name)}):\n{log_tail(self._log_file(service.name))}"
                    for service in waiting
                )
                raise StackError(
                    f"{names_left} did not answer within {self.settings.start_timeout_s:.0f}s"
                    f" (STACK_START_TIMEOUT); last log lines:\n{tails}"
                )
            if waiting:
                time.sleep(0.2)
        # Idempotent set-up (Kafka: users and ACLs), also for a service that was already running, so
        # an `up` brings a running stack's users and grants up to date.
        for service in selected:
            after_ready = getattr(service, "after_ready", None)
            if after_ready is not None and read_pid_file(self._pid_file(service.name)) is not None:
                try:
                    after_ready()
                except Exception as error:  # noqa: BLE001 - reported with the service's name and log
                    raise StackError(f"{service.name} answers but its set-up failed: {error}") from error
        return started

    def down(self, names: Iterable[str] | None = None, *, hard: bool = False) -> list[str]:
        """Stop the services this stack started (by pid file); returns the names stopped."""
        stopped = []
        for service in reversed(self._select(names)):
            if stop(self._pid_file(service.name), hard=hard):
                stopped.append(service.name)
        return stopped

    def status(self) -> list[ServiceStatus]:
        statuses = []
        for service in self.services.values():
            running = read_pid_file(self._pid_file(service.name))
            statuses.append(
                ServiceStatus(
                    name=service.name,
                    port=service.port(),
                    pid=running.pid if running else None,
                    answering=service.ready() if running else False,
                )
            )
        return statuses
