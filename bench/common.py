"""The one result format of every benchmark, and the machine it ran on.

Each ``bench/bench_<name>.py`` exposes ``run(quick: bool) -> BenchOutput``: its parameters, the
figures it measured — **each beside a baseline measured in the same run** — and its raw
numbers. ``bench/run_all.py`` runs them (each in its own process), adds the machine, and writes
``bench/results/<date>.json`` (a :class:`BenchReport`) and ``docs/benchmarks.md``.

A figure is a measurement of ours and the same measurement of the thing one would use instead
(a library, a bare client, a pass-through) or of the other variant (exactly-once vs
at-least-once). ``ratio`` is always "how many times better than the baseline" (> 1 is better),
whatever the direction of the unit.
"""

from __future__ import annotations

import math
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

REPO = Path(__file__).resolve().parents[1]
SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Measure(_Frozen):
    """One measured number (median or best of its rounds, as ``how`` says)."""

    label: str = Field(min_length=1)  # what was measured: "stockstream engine, 8 indicators"
    value: float = Field(allow_inf_nan=False)


class Figure(_Frozen):
    """A figure of ours beside its baseline from the same run."""

    name: str = Field(min_length=1)  # the row of the table: "indicator engine throughput"
    unit: str = Field(min_length=1)  # "ticks per CPU second", "ms", "records/s"
    better: Literal["higher", "lower"]
    ours: Measure
    baseline: Measure
    how: str = ""  # "best of 5 rounds", "median of 3 interleaved rounds"
    goal: float | None = None  # the ratio we aim for (e.g. 5.0 for "5× talipp"), if any
    target: float | None = None  # an absolute goal in ``unit`` ("≥ 1,000 deliveries/s", "p99 < 1,000 ms"), if any

    @model_validator(mode="before")
    @classmethod
    def _computed_fields_are_not_input(cls, data: object) -> object:
        # A report read back holds ``ratio``/``goal_met`` (dumped computed fields): they are derived again.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if key not in ("ratio", "goal_met", "target_met")}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratio(self) -> float:
        """How many times better than the baseline (> 1: better), in the unit's direction."""
        if self.better == "higher":
            return self.ours.value / self.baseline.value if self.baseline.value else float("inf")
        return self.baseline.value / self.ours.value if self.ours.value else float("inf")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def goal_met(self) -> bool | None:
        return None if self.goal is None else self.ratio >= self.goal

    @computed_field  # type: ignore[prop-decorator]
    @property
    def target_met(self) -> bool | None:
        """Whether ours reached ``target`` (≥ for "higher", < for "lower")."""
        if self.target is None:
            return None
        return self.ours.value >= self.target if self.better == "higher" else self.ours.value < self.target


class BenchOutput(_Frozen):
    """What one benchmark's ``run(quick)`` returns."""

    params: dict[str, object] = Field(default_factory=dict)
    figures: list[Figure] = Field(default_factory=list)
    details: dict[str, object] = Field(default_factory=dict)  # raw per-round numbers, extra measurements


def print_output(output: BenchOutput, out: Path | None = None) -> int:
    """A benchmark's ``main``: its output as JSON on stdout, and in ``out`` when given; exit status 0."""
    text = output.model_dump_json(indent=1)
    if out is not None:
        out.write_text(text + "\n")
    print(text)
    return 0

class BenchResult(_Frozen):
    """One benchmark in the report: its output, or why there is none."""

    name: str
    module: str
    status: Literal["ok", "failed", "missing"]
    seconds: float
    output: BenchOutput | None = None
    error: str | None = None


class Machine(_Frozen):
    nproc: int
    memory_gib: float
    cpu_model: str
    load_average_at_start: tuple[float, float, float]
    python: str
    java: str
    kafka: str
    redis: str
    pyspark: str
    platform: str


class BenchReport(_Frozen):
    schema_version: Literal[1] = SCHEMA_VERSION
    started_at: datetime
    finished_at: datetime
    quick: bool
    machine: Machine
    benches: list[BenchResult]


# -- the machine ------------------------------------------------------------------------------------------

def git(*args: str) -> str:
    """``git -C <repo> …``'s standard output, stripped (raises on failure)."""
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,  # noqa: S603, S607
                          check=True).stdout.strip()


def _first(pattern: str, text: str, default: str = "unknown") -> str:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1).strip() if match else default


def _command_output(*command: str) -> str:
    if shutil.which(command[0]) is None:
        return ""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def kafka_version() -> str:
    """The broker version of the local stack, from its jar names (``kafka-server-4.1.1.jar``)."""
    libs = Path(os.environ.get("STACK_KAFKA_LIBS", REPO / ".stack" / "kafka-libs"))
    for jar in sorted(libs.glob("kafka-server-*.jar")) if libs.is_dir() else []:
        found = re.fullmatch(r"kafka-server-(\d[\w.\-]*)\.jar", jar.name)
        if found:
            return found.group(1)
    return "unknown"


def machine() -> Machine:
    """nproc, memory, CPU model, load at start and the versions the figures depend on."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    memory_kib = float(_first(r"^MemTotal:\s+(\d+)", meminfo, "0"))
    try:
        import pyspark

        spark = pyspark.__version__
    except ImportError:
        spark = "not installed"
    load = os.getloadavg()
    return Machine(
        nproc=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0),
        memory_gib=round(memory_kib / 1024 / 1024, 1),
        cpu_model=_first(r"^model name\s*:\s*(.+)$", cpuinfo, platform.processor() or "unknown"),
        load_average_at_start=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
        python=platform.python_version(),
        java=_first(r'version "([^"]+)"', _command_output("java", "-version")),
        kafka=kafka_version(),
        redis=_first(r"v=(\S+)", _command_output("redis-server", "--version")),
        pyspark=spark,
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
    )


def now() -> datetime:
    return datetime.now(UTC)


# -- the one percentile of every benchmark and the soak ---------------------------------------------------

def percentile(values: Iterable[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest observed value with at least ``fraction`` of all values ≤ it.

    ``fraction`` in (0, 1]: 0.5 for p50, 0.99 for p99. Of n sorted values it is the one at rank
    ⌈fraction · n⌉ (1-based), so it is always a value that was measured (no interpolation), p50 of an
    even count is the lower middle one, and p99 of fewer than 100 values is the maximum. Every
    latency figure of ``bench/`` and ``tests/soak`` is this; raises ``ValueError`` on no values.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rank = math.ceil(fraction * len(ordered) - 1e-9)  # 1-based; the epsilon keeps 0.99·100 at rank 99
    return ordered[max(rank, 1) - 1]


VECTORBT_VENV = REPO / ".stack" / "vectorbt-venv"
VECTORBT = "vectorbt==1.2.0"


def vectorbt_python(log: Callable[[str], None]) -> Path:
    """The interpreter of the bench-only vectorbt venv (``.stack/vectorbt-venv``), installed on first use.

    vectorbt pins its own numpy/numba, so it never enters the project's environment; the sweep and
    backtest benchmarks run it in a child process of this interpreter.
    """
    python = VECTORBT_VENV / "bin" / "python"
    if not python.exists():
        log(f"installing {VECTORBT} into {VECTORBT_VENV} (bench-only)")
        subprocess.run([sys.executable, "-m", "venv", str(VECTORBT_VENV)], check=True)  # noqa: S603
    probe = subprocess.run([str(python), "-c", "import vectorbt"], capture_output=True)  # noqa: S603
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", VECTORBT], check=True)  # noqa: S603
    return python
