"""The versions a fresh machine installs are the versions that were tested (issue 12).

``requirements/lock.txt`` pins base + dev + spark for Linux x86_64 / Python 3.11 with hashes
(``make setup`` and so CI install it), ``runtime.lock.txt`` and ``spark.lock.txt`` pin the image's
subsets (the Dockerfile installs them) at the same versions, ``tools.lock.txt`` pins pip,
setuptools and uv (``make lock`` refreshes everything with uv). These tests read the files
only — no network.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "requirements"
ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux",
               "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
               "implementation_name": "cpython", "platform_python_implementation": "CPython"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def read_lock(name: str) -> dict[str, tuple[str, int]]:
    """Canonical name → (version, number of hashes) of every pin in ``requirements/<name>``."""
    pins: dict[str, tuple[str, int]] = {}
    current: str | None = None
    for line in (LOCKS / name).read_text().splitlines():
        found = PIN.match(line)
        if found:
            current = canonicalize_name(found.group(1))
            pins[current] = (found.group(2), 0)
        elif current is not None and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
        elif not line.startswith(" "):
            current = None
    return pins


def project() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def requirements(*extras: str) -> list[Requirement]:
    table = project()["project"]
    assert isinstance(table, dict)
    found = [Requirement(text) for text in table["dependencies"]]
    for extra in extras:
        found += [Requirement(text) for text in table["optional-dependencies"][extra]]
    return [requirement for requirement in found
            if requirement.marker is None or requirement.marker.evaluate({**ENVIRONMENT, "extra": ""})]


@pytest.mark.parametrize(("lock", "extras"), [("lock.txt", ("dev", "spark")), ("runtime.lock.txt", ()),
                                              ("spark.lock.txt", ("spark",))])
def test_every_dependency_of_pyproject_is_pinned_within_its_range_with_hashes(lock: str, extras: tuple[str, ...]) -> None:
    pins = read_lock(lock)
    table = project()["project"]
    assert isinstance(table, dict)
    every_extra = set(table["optional-dependencies"])
    assert every_extra == {"dev", "spark"}, "a new extra: add it to `make lock` and to this test"
    missing, outside = [], []
    for requirement in requirements(*extras):
        name = canonicalize_name(requirement.name)
        if name not in pins:
            missing.append(name)
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            outside.append(f"{name}=={pins[name][0]} not in {requirement.specifier}")
    assert not missing, f"{lock} lacks {missing}: run `make lock`"
    assert not outside, f"{lock} pins outside pyproject's ranges: {outside}: run `make lock`"
    assert all(hashes > 0 for _, hashes in pins.values()), [name for name, (_, h) in pins.items() if not h]
    assert "stockstream" not in pins  # the project itself is installed from the work tree


def test_the_image_locks_pin_the_same_versions_as_the_tested_lock() -> None:
    tested = read_lock("lock.txt")
    for lock in ("runtime.lock.txt", "spark.lock.txt"):
        for name, (version, _) in read_lock(lock).items():
            assert tested.get(name, (None, 0))[0] == version, f"{lock}: {name}=={version}, tested {tested.get(name)}"


def test_constraints_hold_and_the_tools_are_pinned() -> None:
    tested = read_lock("lock.txt")
    for line in (LOCKS / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            constraint = Requirement(line)
            assert constraint.specifier.contains(tested[canonicalize_name(constraint.name)][0]), line
    tools = read_lock("tools.lock.txt")
    assert {"pip", "setuptools", "uv"} <= set(tools)
    build = [Requirement(text) for text in project()["build-system"]["requires"]]  # type: ignore[index]
    for requirement in build:
        assert requirement.specifier.contains(tools[canonicalize_name(requirement.name)][0]), requirement


def test_setup_ci_and_the_image_install_from_the_locks() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "pip install -q --require-hashes -r requirements/lock.txt" in makefile
    assert "pip install -q --require-hashes -r requirements/tools.lock.txt" in makefile
    assert re.search(r"^\$\(STAMP\):.*requirements/lock\.txt", makefile, re.MULTILINE)  # a new lock reinstalls
    assert "exec make test" in (REPO / ".ci" / "run").read_text()
    dockerfile = (REPO / "Dockerfile").read_text()
    for lock in ("runtime.lock.txt", "spark.lock.txt"):
        assert re.search(rf"pip install --require-hashes .*-r requirements/{re.escape(lock)}", dockerfile), lock


def test_this_environment_runs_the_locked_versions() -> None:
    """What ran these tests is what the lock says (``make setup`` reinstalls when the lock changes)."""
    wrong = []
    for name, (version, _) in read_lock("lock.txt").items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name} not installed (locked {version})")
            continue
        if Version(installed) != Version(version):
            wrong.append(f"{name} {installed} (locked {version})")
    assert not wrong, f"run `make setup`: {wrong}"


# The Pythons a lock is installed on: Debian 12's (the local base image of `make test-deploy`), this
# machine's, and the public image's (python:3.11.14-slim-bookworm). A dependency behind a version marker
# (redis needs async-timeout below 3.11.3) must be pinned for the oldest of them.
PYTHONS = ("3.11.2", "3.11.7", "3.11.14")


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("lock", ["lock.txt", "runtime.lock.txt", "spark.lock.txt"])
def test_every_lock_holds_the_dependencies_of_its_pins_on_every_python_we_install_it_on(lock: str, python: str) -> None:
    """Installing a lock with --require-hashes fails on any dependency it lacks: none may be missing."""
    pins = read_lock(lock)
    environment = {**ENVIRONMENT, "python_full_version": python, "extra": ""}
    missing = []
    for name in pins:
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            if canonicalize_name(requirement.name) not in pins:
                missing.append(f"{requirement.name} (needed by {name} on Python {python})")
    assert not missing, f"{lock} lacks {sorted(set(missing))}: run `make lock`"
