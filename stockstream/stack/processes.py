"""Start, find and stop the stack's background processes by pid file.

A pid file records the pid and the process start time (from ``/proc``), so ``down``
only ever signals a process this stack started — never a recycled pid and never a
service somebody else runs on the same port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunningProcess:
    pid: int
    start_ticks: int


def _start_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if fields[0] == "Z":  # a zombie is dead for our purposes
        return None
    return int(fields[19])


def read_pid_file(pid_file: Path) -> RunningProcess | None:
    """The process recorded in ``pid_file`` if it is still the same live process."""
    try:
        record = json.loads(pid_file.read_text())
        recorded = RunningProcess(int(record["pid"]), int(record["start_ticks"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if _start_ticks(recorded.pid) != recorded.start_ticks:
        return None
    return recorded


def spawn(
    command: Sequence[str], *, log_file: Path, pid_file: Path, cwd: Path, env: dict[str, str] | None = None
) -> RunningProcess:
    """Start ``command`` detached in its own session, output to ``log_file``, and record it."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - commands are built from fixed binaries
            list(command),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    ticks = _start_ticks(process.pid)
    record = RunningProcess(process.pid, ticks if ticks is not None else -1)
    pid_file.write_text(json.dumps({"pid": record.pid, "start_ticks": record.start_ticks}))
    return record


def stop(pid_file: Path, *, timeout_s: float = 30.0, hard: bool = False) -> bool:
    """Stop the recorded process (SIGTERM, then SIGKILL after ``timeout_s``); True if one ran."""
    running = read_pid_file(pid_file)
    if running is None:
        pid_file.unlink(missing_ok=True)
        return False
    try:
        os.kill(running.pid, signal.SIGKILL if hard else signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _start_ticks(running.pid) == running.start_ticks:
        _reap(running.pid)
        time.sleep(0.1)
    if _start_ticks(running.pid) == running.start_ticks:
        os.kill(running.pid, signal.SIGKILL)
        while _start_ticks(running.pid) == running.start_ticks:
            _reap(running.pid)
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    # When the stack was started by this very process (tests), collect the child.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def log_tail(log_file: Path, lines: int = 25) -> str:
    try:
        content = log_file.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(content[-lines:])
