"""podman for the container tests (``make test-deploy``): the project's settings, images, networks.

Every call goes through ops/podman/podman (runc, cgroupfs, the ulimits this sandbox grants: see
ops/podman/containers.conf). Images are built from a base made of Debian packages
(ops/podman/build-base.sh); podman's layer cache makes a second build of an unchanged tree quick.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WRAPPER = REPO / "ops" / "podman" / "podman"
TOOLS = ("podman", "runc", "debootstrap")


def missing_tools() -> list[str]:
    """The tools ops/setup/deploy-deps.sh installs that are not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def podman(*args: str, timeout_s: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run podman with the project's settings; raises with its output when ``check`` and it fails."""
    result = subprocess.run([str(WRAPPER), *args], capture_output=True, text=True, timeout=timeout_s,
                            check=False, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def base_image() -> str:
    """The Debian base image (built once, cached under .stack/images), as its local reference."""
    result = subprocess.run([str(REPO / "ops" / "podman" / "build-base.sh")], capture_output=True, text=True,
                            timeout=1800, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"base image build failed:\n{result.stderr[-4000:]}"
    return result.stdout.strip().splitlines()[-1]


def build(tag: str, context: Path, *, file: Path | None = None, target: str | None = None,
          build_args: dict[str, str] | None = None) -> str:
    """``podman build`` an image; returns ``tag``. The output is kept for a failure message."""
    args = ["build", "-t", tag]
    if file is not None:
        args += ["-f", str(file)]
    if target is not None:
        args += ["--target", target]
    for name, value in (build_args or {}).items():
        args += ["--build-arg", f"{name}={value}"]
    podman(*args, str(context), timeout_s=2400)
    return tag


@dataclass
class Pod:
    """Containers of one test on one podman network of their own; everything removed at the end."""

    prefix: str = field(default_factory=lambda: f"ss{uuid.uuid4().hex[:8]}")
    containers: list[str] = field(default_factory=list)

    @property
    def network(self) -> str:
        return f"{self.prefix}-net"

    def name(self, service: str) -> str:
        return f"{self.prefix}-{service}"

    def run(self, service: str, image: str, *command: str, env: dict[str, str] | None = None,
            options: Sequence[str] = (), detach: bool = True, timeout_s: float = 900,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """``podman run`` on this pod's network, reachable by the other containers as ``service``."""
        name = self.name(service)
        self.containers.append(name)
        args = ["run", "--name", name, "--network", self.network, "--network-alias", service]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        args += [*options, *(["-d"] if detach else []), image, *command]
        return podman(*args, timeout_s=timeout_s, check=check)

    def logs(self, service: str, tail: int = 60) -> str:
        result = podman("logs", "--tail", str(tail), self.name(service), check=False)
        return result.stdout + result.stderr

    def running(self, service: str) -> bool:
        result = podman("inspect", "-f", "{{.State.Running}}", self.name(service), check=False)
        return result.stdout.strip() == "true"

    def exec(self, service: str, *command: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name(service), *command, timeout_s=timeout_s, check=False)

    def diagnostics(self) -> str:
        return "\n".join(f"--- {name}\n{self.logs(name.removeprefix(self.prefix + '-'))}" for name in self.containers)


@contextmanager
def pod() -> Iterator[Pod]:
    """A :class:`Pod` with its network; containers and network are removed on exit."""
    created = Pod()
    podman("network", "create", created.network)
    try:
        yield created
    finally:
        for name in reversed(created.containers):
            podman("rm", "-f", "-v", "-t", "10", name, check=False, timeout_s=120)  # with its anonymous volumes
        podman("network", "rm", "-f", created.network, check=False)
