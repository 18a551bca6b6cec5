"""Run ``stockstream`` subcommands as real subprocesses in tests: start, wait, kill -9, collect output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))


class ServiceProcess:
    """A ``stockstream`` subprocess whose combined output goes to a temp file."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.args = args
        self.log_path = Path(tempfile.mkstemp(prefix="stockstream-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [STOCKSTREAM, *args], stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )

    @property
    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill9(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def terminate(self, timeout_s: float = 30) -> int:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()
        return self.process.returncode

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout_s)


@contextmanager
def running(args: list[str], env: dict[str, str] | None = None) -> Iterator[ServiceProcess]:
    """Start a service for the duration of a ``with`` block; always stopped afterwards."""
    service = ServiceProcess(args, env)
    try:
        yield service
    finally:
        service.terminate()
