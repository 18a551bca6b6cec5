"""The soak: every service under a steady feed for a long time, sampled; memory, lag, latency and logs judged.

Shared by the CI-sized test (tests/soak/test_soak.py) and the full run (``bench/soak.py``). A soak
runs on a stack of its own (own Kafka and Redis on free ports, own state folder) so its hundreds
of thousands of ticks stay out of the shared broker, with the five services of
:class:`tests.chaos.deployment.Deployment` fed by the simulator on the wall clock (so latencies are
real) and a healthy local webhook receiver. Every ``sample_every_s`` it records, per service, the
resident memory of its whole process tree (the notifier's lanes included); the consumer lag of
process, materialize and notify; the cumulative latency histograms of the processor (tick ingest
time → derived events produced) and the notifier (signal event time → delivered); the age of the
newest tick in the Redis views as the API serves it (end-to-end freshness); and new ERROR lines in
the services' logs.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient

from bench.common import percentile
from stockstream.stack.manager import Stack
from stockstream.stack.services import StackSettings
from tests.chaos.deployment import Deployment, Feed
from tests.chaos.probes import KafkaProbe
from tests.support.fake_receivers.http import HttpReceiver
from tests.support.ports import free_port

PAGE = os.sysconf("SC_PAGE_SIZE")
PROCESS_LATENCY = "stockstream_process_latency_seconds_bucket"
NOTIFY_LATENCY = "stockstream_notify_delivery_latency_seconds_bucket"
ERROR_MARKERS = (" ERROR ", " CRITICAL ", "Traceback (most recent call last)", "%3|", "%2|", "%1|", "%0|")


@dataclass(frozen=True)
class SoakConfig:
    """One soak: how long, how fast, and how its figures are judged."""

    name: str
    duration_s: float
    rate: float = 500.0
    symbols: int = 20
    sample_every_s: float = 5.0
    warm_up_s: float = 300.0  # excluded from the judgement: caches, windows and JIT-less Python settle
    judge_window_s: float = 180.0  # memory: median of the first window after warm-up vs of the last one
    latency_window_s: float = 60.0  # p99 per window of this length
    max_memory_growth: float = 0.10
    max_lag_s: float = 5.0  # bound on lag, in seconds of feed (records = rate × this × records per tick)
    latency_p99_ceiling_s: float = 2.0  # no window's processor p99 above this
    latency_p99_drift: float = 2.0  # last window's p99 ≤ drift × the median window p99 (+ 50 ms)
    ingest_dedup_window: int | None = None  # INGEST_DEDUP_WINDOW; smaller = fills (and stops growing) sooner
    notify_replicas: int = 1  # notifier instances sharing the lane groups (docs/notify.md: scaling out)
    seed: int = 500
    # Latency ceilings are speed figures: judged by the full soak (`make soak`) on its measured machine,
    # recorded but not judged by the CI soak, which runs on whatever machine runs `make test`.
    judge_latency: bool = True
    start_timeout_s: float = 300.0  # every consumer ready and assigned before the feed starts

    def time_bound_s(self) -> float:
        """The sum of the soak's own bounds: two stack starts, consumers, the run, sampling overrun, the stop."""
        return 2 * 90.0 + self.start_timeout_s + self.duration_s * 1.5 + 7 * 30.0 + 120.0


@contextlib.contextmanager
def own_stack(folder: Path) -> Iterator[Stack]:
    """Kafka + Redis of the soak's own, on free ports under ``folder``; hard-stopped afterwards."""

    stack = Stack(StackSettings(state_dir=folder, kafka_port=free_port(), kafka_controller_port=free_port(),
                                kafka_sasl_port=free_port(), redis_port=free_port(), prometheus_port=free_port(), kafka_jmx_port=free_port(),
                                redis_exporter_port=free_port()))
    stack.up(["kafka", "redis"])
    try:
        yield stack
    finally:
        stack.down(hard=True)


# ---- start-up: the consumers settle before the feed and the clock start ----------------------

def group_consuming(admin: AdminClient, probe: KafkaProbe, group: str, topics: list[str], members: int) -> bool:
    """``group`` is stable with ``members`` members and every partition of ``topics`` assigned to one."""
    try:
        description = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
    except KafkaException:
        return False
    if description.state != ConsumerGroupState.STABLE or len(description.members) != members:
        return False
    assigned = {(tp.topic, tp.partition) for member in description.members
                for tp in (member.assignment.topic_partitions if member.assignment else [])}
    wanted = set()
    for topic in topics:
        partitions = probe.partitions(topic)
        if partitions is None:
            return False
        wanted |= {(topic, partition) for partition in partitions}
    return wanted <= assigned


def start_consumers(deployment: Deployment, probe: KafkaProbe, admin: AdminClient,
                    groups: dict[str, tuple[str, list[str]]], notify_replicas: int,
                    timeout_s: float = 180.0) -> float:
    """Start every service but ingest and wait until each is ready and consuming; returns the seconds it took.

    A soak measures the steady state: if the feed started with the services, the notifier (a
    supervisor, then a Quix lane per instance; a second instance joining rebalances the group) would
    still be starting while signals pile up, and on a slow machine that start-up backlog outlasts the
    warm-up. ``/ready`` of process, materialize and notify means "topics exist, consumer built" —
    not "partitions assigned" (the notifier's supervisor marks it once the lanes are spawned) — so the
    groups themselves are asked: stable, every instance a member, every input partition assigned.
    """
    began = time.monotonic()
    deployment.start([name for name in deployment.names if name != "ingest"])
    members = {"process": 1, "materialize": 1, "notify": notify_replicas}
    consumers = [name for name in deployment.names if name not in ("ingest", "serve")]
    pending = {"serve": deployment.api_healthy,
               **{name: partial(deployment.ready, name) for name in consumers},
               **{f"{part} group": partial(group_consuming, admin, probe, group, topics, members[part])
                  for part, (group, topics) in groups.items()}}
    deadline = began + timeout_s
    while pending:
        pending = {what: check for what, check in pending.items() if not check()}
        if not pending:
            break
        dead = [name for name in deployment.names if name != "ingest" and not deployment.alive(name)]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"services not ready and consuming after {time.monotonic() - began:.0f}s:"
                               f" waiting for {sorted(pending)}; exited: {dead}")
        time.sleep(0.5)  # polling interval of the start-up wait (bounded by the deadline above)
    return time.monotonic() - began


# ---- sampling ---------------------------------------------------------------------------------

def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (0 if it is gone)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    total = 0
    for pid in members:
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * PAGE
    return total


def stack_pid(stack: Stack, name: str) -> int | None:
    for entry in stack.status():
        if entry.name == name:
            return entry.pid
    return None


@dataclass
class Sample:
    t: float  # seconds since the soak began
    ticks: int | None
    rss_mb: dict[str, float]
    lag: dict[str, int | None]
    process_latency: dict[str, float]  # cumulative histogram buckets (le → count)
    notify_latency: dict[str, float]
    view_age_s: list[float]  # per symbol: now − ts_init of the latest tick the API serves
    error_lines: dict[str, int]  # new ERROR lines since the previous sample
    load1: float = 0.0  # the machine's 1-minute load average (2 cores, shared with other work)
    signals: int | None = None  # records in the signals topic (what the notifier lanes consume)


def _buckets(samples: dict[str, float], family: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for key, value in samples.items():
        if key.startswith(family + "{"):
            le = key.split('le="', 1)[1].split('"', 1)[0]
            found[le] = found.get(le, 0.0) + value  # summed over other labels (channels, …)
    return found


def _sum_buckets(parts: list[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for part in parts:
        for le, value in part.items():
            total[le] = total.get(le, 0.0) + value
    return total


class Sampler:
    """Takes one :class:`Sample` of a running deployment."""

    def __init__(self, deployment: Deployment, stack: Stack, probe: KafkaProbe, symbols: tuple[str, ...],
                 began: float) -> None:
        self.deployment = deployment
        self.stack = stack
        self.probe = probe
        self.symbols = symbols
        self.began = began
        self._log_offsets: dict[Path, int] = {}
        self.groups = self.consumer_groups(deployment)

    @staticmethod
    def consumer_groups(deployment: Deployment) -> dict[str, tuple[str, list[str]]]:
        """Consumer group and input topics of process, materialize and notify."""
        ns = deployment.namespace
        return {
            "process": (deployment.process_group, [f"{ns}ticks"]),
            "materialize": (deployment.materialize_group,
                            [f"{ns}{b}" for b in ("ticks", "indicators", "signals", "candles.1m", "aggregates.daily")]),
            "notify": (deployment.notify_group, [f"{ns}signals"]),
        }

    def errors(self, name: str) -> list[str]:
        """ERROR-level lines the service wrote since the last call (all its starts)."""
        lines: list[str] = []
        for path in self.deployment.services[name].logs:
            if not path.exists():
                continue
            with path.open("rb") as handle:
                handle.seek(self._log_offsets.get(path, 0))
                chunk = handle.read()
                self._log_offsets[path] = handle.tell()
            lines += [line for line in chunk.decode(errors="replace").splitlines()
                      if any(marker in line for marker in ERROR_MARKERS)]
        return lines

    def take(self, error_log: list[str]) -> Sample:
        d = self.deployment
        rss = {name: tree_rss_bytes(d.services[name].process.process.pid) / 2**20 for name in d.names}
        for name in ("kafka", "redis"):
            pid = stack_pid(self.stack, name)
            rss[name] = tree_rss_bytes(pid) / 2**20 if pid else 0.0
        lag = {part: self.probe.lag(group, topics) for part, (group, topics) in self.groups.items()}
        ages: list[float] = []
        now = datetime.now(UTC).timestamp()
        for symbol in self.symbols:
            status, body = d.api(f"/symbols/{symbol}/latest")
            tick = body.get("tick") if status == 200 and isinstance(body, dict) else None
            if isinstance(tick, dict) and tick.get("ts_init"):
                ages.append(now - datetime.fromisoformat(tick["ts_init"].replace("Z", "+00:00")).timestamp())
        new_errors: dict[str, int] = {}
        for name in d.names:
            lines = self.errors(name)
            new_errors[name] = len(lines)
            error_log += [f"{name}: {line}" for line in lines]
        return Sample(
            t=round(time.monotonic() - self.began, 2), ticks=self.probe.total(self.probe.ends([f"{d.namespace}ticks"])),
            rss_mb={k: round(v, 1) for k, v in rss.items()}, lag=lag,
            process_latency=_buckets(d.metrics("process"), PROCESS_LATENCY),
            notify_latency=_sum_buckets([_buckets(d.metrics(name), NOTIFY_LATENCY)
                                         for name in d.names if name.startswith("notify")]),
            view_age_s=[round(a, 3) for a in ages], error_lines=new_errors, load1=os.getloadavg()[0],
            signals=self.probe.total(self.probe.ends([f"{d.namespace}signals"])),
        )


# ---- judging ----------------------------------------------------------------------------------

def quantile(q: float, before: dict[str, float], after: dict[str, float]) -> float | None:
    """``histogram_quantile`` over the increase of cumulative buckets between two samples (None: no events).

    The services export latency as histograms, not samples, so this is Prometheus' estimate from the
    buckets (linear inside the bucket), exactly what a dashboard shows. Percentiles of raw samples
    (the view age) use :func:`bench.common.percentile`, the nearest-rank definition of every benchmark.
    """
    bounds = sorted((float(le), after.get(le, 0.0) - before.get(le, 0.0)) for le in after)
    if not bounds or bounds[-1][1] <= 0:
        return None
    total, rank = bounds[-1][1], q * bounds[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in bounds:
        if count >= rank:
            if upper == float("inf"):
                return lower
            width = count - below
            return lower + (upper - lower) * ((rank - below) / width if width > 0 else 1.0)
        lower, below = upper, count
    return lower if total else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass
class Verdict:
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def judge(config: SoakConfig, samples: list[Sample], error_log: list[str]) -> Verdict:
    verdict = Verdict()
    after = [s for s in samples if s.t >= config.warm_up_s]
    first = [s for s in after if s.t < config.warm_up_s + config.judge_window_s]
    last = [s for s in after if s.t >= samples[-1].t - config.judge_window_s]
    memory: dict[str, dict[str, float | None]] = {}
    for name in samples[0].rss_mb:
        start, end = _median([s.rss_mb[name] for s in first]), _median([s.rss_mb[name] for s in last])
        growth = (end / start - 1) if start and end else None
        memory[name] = {"after_warm_up_mb": start, "end_mb": end, "growth": None if growth is None else round(growth, 4),
                        "max_mb": max(s.rss_mb[name] for s in samples)}
        if name not in ("kafka", "redis") and (growth is None or growth >= config.max_memory_growth):
            verdict.problems.append(f"{name}: resident memory grew {growth!r} after warm-up ({start} → {end} MB)")
    verdict.figures["memory"] = memory

    per_tick = {"process": 1.0, "materialize": 3.5, "notify": 0.3}
    lags: dict[str, dict[str, float | None]] = {}
    for part in samples[0].lag:
        values = [s.lag[part] for s in after if s.lag[part] is not None]
        bound = config.rate * config.max_lag_s * per_tick[part]
        lags[part] = {"max": max(values) if values else None, "median": _median(values), "bound": bound,
                      "last_window_median": _median([s.lag[part] for s in last if s.lag[part] is not None])}
        if not values or max(values) > bound:
            verdict.problems.append(f"{part}: lag {max(values) if values else None} above {bound:.0f} records")
    verdict.figures["lag_records"] = lags

    windows: list[dict[str, Any]] = []
    start_index = 0
    for index, sample in enumerate(samples):
        if sample.t - samples[start_index].t >= config.latency_window_s or index == len(samples) - 1:
            a, b = samples[start_index], sample
            if b.t > a.t:
                windows.append({
                    "from_s": a.t, "to_s": b.t,
                    "process_p50_s": quantile(0.5, a.process_latency, b.process_latency),
                    "process_p99_s": quantile(0.99, a.process_latency, b.process_latency),
                    "notify_p99_s": quantile(0.99, a.notify_latency, b.notify_latency),
                    "view_age_p99_s": _p99([age for s in samples[start_index + 1:index + 1] for age in s.view_age_s]),
                })
            start_index = index
    judged = [w for w in windows if w["from_s"] >= config.warm_up_s and w["process_p99_s"] is not None]
    verdict.figures["latency_windows"] = windows
    verdict.figures["latency_judged"] = config.judge_latency
    if judged and not config.judge_latency:
        p99s = [w["process_p99_s"] for w in judged]
        verdict.figures["process_p99_s"] = {"median_window": statistics.median(p99s), "max_window": max(p99s),
                                            "last_window": p99s[-1]}
    elif judged:
        p99s = [w["process_p99_s"] for w in judged]
        typical = statistics.median(p99s)
        verdict.figures["process_p99_s"] = {"median_window": typical, "max_window": max(p99s), "last_window": p99s[-1]}
        # Summaries docs/chaos.md quotes (bench/soak_report.py), kept so each figure has its place in the file.
        for key in ("process_p50_s", "notify_p99_s", "view_age_p99_s"):
            values = [w[key] for w in judged if w[key] is not None]
            if values:
                verdict.figures[key] = {"median_window": statistics.median(values), "max_window": max(values)}
        if max(p99s) > config.latency_p99_ceiling_s:
            verdict.problems.append(f"processor latency p99 reached {max(p99s):.3f}s (ceiling {config.latency_p99_ceiling_s}s)")
        if p99s[-1] > config.latency_p99_drift * typical + 0.05:
            verdict.problems.append(f"processor latency p99 drifted: last window {p99s[-1]:.3f}s vs median {typical:.3f}s")
    else:
        verdict.problems.append("no latency observed after warm-up")
    verdict.figures["error_lines"] = len(error_log)
    verdict.figures["error_examples"] = error_log[:10]
    if error_log:
        verdict.problems.append(f"{len(error_log)} ERROR line(s) in the logs, e.g. {error_log[0][:300]}")
    verdict.figures["load_average"] = {"median": _median([s.load1 for s in samples]),
                                       "max": max(s.load1 for s in samples)}
    ticks = [s.ticks for s in samples if s.ticks is not None]
    if len(ticks) > 1:
        verdict.figures["ticks"] = ticks[-1]
        verdict.figures["achieved_rate"] = round((ticks[-1] - ticks[0]) / (samples[-1].t - samples[0].t), 1)
    return verdict


def _p99(values: list[float]) -> float | None:
    return percentile(values, 0.99) if values else None


# ---- running ----------------------------------------------------------------------------------

@dataclass
class SoakResult:
    config: SoakConfig
    samples: list[Sample]
    verdict: Verdict
    deliveries: int
    started: str

    def to_json(self) -> str:
        return json.dumps({"config": asdict(self.config), "started": self.started, "deliveries": self.deliveries,
                           "figures": self.verdict.figures, "problems": self.verdict.problems,
                           "samples": [asdict(s) for s in self.samples]}, indent=1, default=str)


def run_soak(config: SoakConfig, folder: Path, progress: Callable[[str], None] = print) -> SoakResult:
    """Run one soak on a stack of its own under ``folder``; returns the samples and the judgement."""
    symbols = tuple(f"S{i:02d}-USD" for i in range(config.symbols))
    feed = Feed(symbols, None, config.seed, config.rate)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    samples: list[Sample] = []
    error_log: list[str] = []
    with own_stack(folder / "stack") as stack, HttpReceiver() as receiver:
        extra = {"ingest": {"INGEST_DEDUP_WINDOW": str(config.ingest_dedup_window)}} if config.ingest_dedup_window else {}
        deployment = Deployment(bootstrap=stack.settings.kafka_bootstrap, redis_url=stack.settings.redis_url,
                                namespace="soak.", workdir=folder / "services", feed=feed,
                                webhook_url=receiver.url("/hook"), extra_env=extra,
                                notify_replicas=config.notify_replicas)
        probe = KafkaProbe(stack.settings.kafka_bootstrap)
        admin = AdminClient({"bootstrap.servers": stack.settings.kafka_bootstrap, "log_level": 0})
        groups = Sampler.consumer_groups(deployment)
        try:
            ready_s = start_consumers(deployment, probe, admin, groups, config.notify_replicas,
                                      timeout_s=config.start_timeout_s)
            progress(f"consumers ready and assigned after {ready_s:.1f}s; starting the feed")
            began = time.monotonic()  # the soak clock starts with the feed
            deployment.start(["ingest"])
            sampler = Sampler(deployment, stack, probe, symbols, began)
            next_at = began
            while time.monotonic() - began < config.duration_s:
                next_at += config.sample_every_s
                time.sleep(max(0.0, next_at - time.monotonic()))  # the sampling period, not a wait for a condition
                sample = sampler.take(error_log)
                samples.append(sample)
                if len(samples) % max(1, int(60 / config.sample_every_s)) == 0:
                    progress(f"t={sample.t:.0f}s ticks={sample.ticks} lag={sample.lag} rss={sample.rss_mb}")
            restarts = dict(deployment.watchdog_restarts)
        finally:
            deployment.stop()
            probe.close()
            # The admin client must go while its broker is up: destroyed after the stack is down (when
            # run_soak returns), librdkafka blocked the test process for good (seen in the CI soak).
            del admin
            gc.collect()
        deliveries = len(receiver.answered("/hook"))
    verdict = judge(config, samples, error_log)
    verdict.figures["consumers_ready_s"] = round(ready_s, 1)
    verdict.figures["unplanned_restarts"] = restarts
    if restarts:
        verdict.problems.append(f"services died and were restarted: {restarts}")
    return SoakResult(config, samples, verdict, deliveries, started)


def plot(result: SoakResult, path: Path) -> None:
    """Memory, lag and latency over time, one panel each (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, config = result.samples, result.config
    times = [s.t / 60 for s in samples]
    figure, (memory, lag, latency) = plt.subplots(3, 1, figsize=(11, 11), sharex=True)
    for name in samples[0].rss_mb:
        memory.plot(times, [s.rss_mb[name] for s in samples], label=name)
    memory.set_ylabel("resident memory (MiB)")
    memory.set_yscale("log")
    memory.legend(loc="upper left", ncol=4, fontsize="small")
    for part in samples[0].lag:
        lag.plot(times, [s.lag[part] if s.lag[part] is not None else float("nan") for s in samples], label=part)
    lag.set_ylabel("consumer lag (records)")
    lag.legend(loc="upper left", fontsize="small")
    windows = result.verdict.figures.get("latency_windows", [])
    middle = [((w["from_s"] + w["to_s"]) / 120) for w in windows]
    for keyname, label in (("process_p99_s", "processor p99 (ingest → produced)"),
                           ("process_p50_s", "processor p50"),
                           ("view_age_p99_s", "view freshness p99 (now − newest tick in the API)"),
                           ("notify_p99_s", "notifier p99 (signal → delivered)")):
        latency.plot(middle, [w[keyname] if w[keyname] is not None else float("nan") for w in windows],
                     marker="o", label=label)
    latency.set_ylabel("seconds")
    latency.set_yscale("log")
    latency.legend(loc="upper left", fontsize="small")
    load = latency.twinx()
    load.plot(times, [s.load1 for s in samples], color="grey", alpha=0.4, linewidth=1)
    load.set_ylabel("load average (grey, 2 cores)")
    for axis in (memory, lag, latency):
        axis.axvline(config.warm_up_s / 60, color="grey", linestyle=":", linewidth=1)
        axis.grid(True, alpha=0.3)
    latency.set_xlabel("minutes (dotted line: end of warm-up)")
    figure.suptitle(f"stockstream soak — {config.rate:g} ticks/s over {config.symbols} symbols,"
                    f" {config.duration_s / 60:g} min, started {result.started}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
