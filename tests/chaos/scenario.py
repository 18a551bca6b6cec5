"""The chaos scenario: a clean run and a chaos run of the same input, the faults, the recovery clocks.

Both runs ingest the same seeded simulator feed on a simulated clock (byte-identical ticks), in two
namespaces: the clean run on the shared stack, undisturbed; the chaos run on a private stack, whose
Kafka and Redis it may stop. In the chaos run the feed
is paced and endless until every fault has recovered (then ended by SIGTERM: the log holds a prefix of
the feed, and the clean run ingests exactly as many ticks), so every fault lands while ticks still
arrive however slow the machine; the faults come one after another:
``kill -9`` of ingest, process, materialize, notify and serve (each restarted at once, as a
supervisor would), a broker stop/start, redis-server killed (kill -9) and held down for a while, and the webhook receiver slow,
then failing (503), then healthy. For each fault the recovery is timed from the restart / the end
of the fault: until the affected consumer commits progress again and until its lag is back under
what arrives in two seconds (with input flowing, "lag 0" exists only between checkpoints).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from stockstream.stack.manager import Stack
from tests.chaos.deployment import Deployment, Feed
from tests.chaos.probes import KafkaProbe, Offsets, final_positions, reached, wait_for
from tests.support.fake_receivers.http import HttpReceiver, ok, slow, status


def say(line: str) -> None:
    """Progress on the real stderr (shown with ``pytest -s``; a chaos run is long)."""
    print(f"[chaos {time.strftime('%H:%M:%S')}] {line}", file=sys.__stderr__, flush=True)


INPUTS = ("ticks", "indicators", "signals", "candles.1m", "aggregates.daily")  # the materializer's topics


@dataclass(frozen=True)
class ChaosPlan:
    """Sizes, fault durations and time bounds of one chaos run.

    ``ticks`` is the least the chaos feed ingests: the feed is endless and is ended (by count: whatever is
    in the log then) only once every fault has recovered, so a slow machine makes the run longer, never a
    fault land after the feed. The clean run then ingests exactly that many ticks.
    """

    name: str
    ticks: int
    symbols: int
    rate: float  # chaos-run feed, ticks/s (the clean run ingests as fast as it can)
    kafka_down_s: float
    redis_down_s: float
    webhook_slow_s: float
    webhook_fail_s: float
    slow_reply_s: float = 1.0
    settle_s: float = 3.0  # steady running between two faults
    step_s: float = 0.1  # simulated clock step: each symbol gets a tick every symbols × step seconds
    seed: int = 20261127
    recovery_timeout_s: float = 180.0  # per fault and condition: generous, a loaded 2-core machine included
    warm_up_timeout_s: float = 300.0  # every service of the chaos run working
    drain_timeout_s: float = 900.0  # after the feed ended: every consumer committed everything
    # Where in the feed each fault begins (fraction of ``ticks`` in the log), in run_all's order; None:
    # back to back, each after the previous one recovered and ``settle_s``.
    fault_at: tuple[float, ...] | None = None

    def feed(self, rate: float | None = None, count: int | None = None) -> Feed:
        """The seeded feed on its simulated clock; ``count`` None = endless (the chaos run ends it)."""
        # The run crosses a UTC midnight at 60 % of the planned event time, so final daily summaries exist.
        span = self.ticks * self.step_s
        start = datetime(2026, 11, 21, tzinfo=UTC) - timedelta(seconds=round(span * 0.6))
        return Feed(tuple(f"C{i:02d}-USD" for i in range(self.symbols)), count, self.seed,
                    self.rate if rate is None else rate, start, self.step_s)

    def time_bound_s(self) -> float:
        """The sum of the run's own bounds (its pytest timeout): warm-up, every fault at its worst, the
        feed reaching the last scheduled fault at a tenth of its rate, drain, clean run, comparison."""
        faults = 8 * (self.recovery_timeout_s + self.settle_s + 60.0) + self.kafka_down_s + self.redis_down_s
        faults += self.webhook_slow_s + self.webhook_fail_s
        scheduled = (max(self.fault_at) * self.ticks / (self.rate / 10)) if self.fault_at else 0.0
        return self.warm_up_timeout_s + faults + scheduled + 2 * self.drain_timeout_s + 600.0


CI_PLAN = ChaosPlan("ci", ticks=12_000, symbols=10, rate=90, kafka_down_s=2, redis_down_s=5,
                    webhook_slow_s=5, webhook_fail_s=5, settle_s=2, recovery_timeout_s=120, drain_timeout_s=600)
# 200 000 ticks at 150/s: ~22 minutes of feed, the faults spread over it.
FULL_PLAN = ChaosPlan("full", ticks=200_000, symbols=10, rate=150, kafka_down_s=10, redis_down_s=30,
                      webhook_slow_s=20, webhook_fail_s=20, settle_s=5, recovery_timeout_s=300,
                      fault_at=(0.02, 0.12, 0.22, 0.32, 0.42, 0.52, 0.64, 0.76))


@dataclass
class FaultRecord:
    """One fault: when it hit, how long it lasted, how long each affected part took to recover."""

    fault: str
    ticks_in_log: int  # how far the feed was when the fault began
    fault_s: float  # kill → restart spawned; stop → back up; slow/failing window
    feed_running: bool = True  # ticks were still arriving when the fault began and when it cleared (the
    # feed is endless until every fault recovered, so only a crashed feed makes this false)
    recovery: dict[str, dict[str, float | None]] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)


class ChaosRun:
    """Drives the faults against one running :class:`Deployment` and times the recoveries."""

    def __init__(self, deployment: Deployment, stack: Stack, receiver: HttpReceiver, plan: ChaosPlan) -> None:
        self.deployment = deployment
        self.stack = stack
        self.receiver = receiver
        self.plan = plan
        self.probe = KafkaProbe(deployment.bootstrap)
        ns = deployment.namespace
        self.ticks = f"{ns}ticks"
        self.signals = f"{ns}signals"
        self.inputs = [f"{ns}{base}" for base in INPUTS]
        self.records: list[FaultRecord] = []

    # ---- progress and lag per consumer ---------------------------------------------------
    def ticks_in_log(self) -> int:
        return self.probe.total(self.probe.ends([self.ticks])) or 0

    def progress(self, part: str) -> int | None:
        if part == "ingest":
            return self.probe.total(self.probe.ends([self.ticks]))
        group, topics = self._group(part)
        return self.probe.total(self.probe.committed(group, topics))

    def lag(self, part: str) -> int | None:
        if part == "ingest":
            return None
        group, topics = self._group(part)
        return self.probe.lag(group, topics)

    def _group(self, part: str) -> tuple[str, list[str]]:
        d = self.deployment
        return {"process": (d.process_group, [self.ticks]), "materialize": (d.materialize_group, self.inputs),
                "notify": (d.notify_group, [self.signals])}[part]

    def lag_bound(self, part: str) -> float:
        """What arrives in two seconds: the materializer reads ~3 records per tick, ~5 % of ticks notify."""
        per_tick = {"process": 1.0, "materialize": 3.5, "notify": 0.1}[part]
        return max(20.0, 2.0 * self.plan.rate * per_tick)

    def recover(self, parts: list[str], since: float, before: dict[str, int | None]) -> dict[str, dict[str, float | None]]:
        """Seconds from ``since`` until each part progressed past ``before`` and until its lag is back in bounds.

        Every condition is polled in one loop (a slow part does not delay the clock of another);
        ``None`` for a condition that did not hold within the plan's recovery timeout.
        """
        conditions: dict[tuple[str, str], Callable[[], bool]] = {}
        for part in parts:
            if part == "serve":
                conditions[(part, "healthy_s")] = self.deployment.api_healthy
                continue
            conditions[(part, "progress_s")] = partial(self._moved, part, before.get(part) or 0)
            if part != "ingest":
                conditions[(part, "caught_up_s")] = partial(self._lag_within, part, self.lag_bound(part))
        seconds: dict[tuple[str, str], float | None] = dict.fromkeys(conditions)
        deadline = time.monotonic() + self.plan.recovery_timeout_s
        while time.monotonic() < deadline and any(value is None for value in seconds.values()):
            for where, condition in conditions.items():
                if seconds[where] is None:
                    try:
                        held = condition()
                    except Exception:  # noqa: BLE001 - a probe failing during recovery means "not yet"
                        held = False
                    if held:
                        seconds[where] = round(time.monotonic() - since, 2)
            time.sleep(0.25)
        result: dict[str, dict[str, float | None]] = {}
        for (part, figure), value in seconds.items():
            result.setdefault(part, {})[figure] = value
        return result

    def _moved(self, part: str, start: int) -> bool:
        return (self.progress(part) or 0) > start

    def _lag_within(self, part: str, bound: float) -> bool:
        lag = self.lag(part)
        return lag is not None and lag <= bound

    def _snapshot(self, parts: list[str]) -> dict[str, int | None]:
        return {part: self.progress(part) for part in parts if part != "serve"}

    # ---- the faults ----------------------------------------------------------------------
    def kill(self, name: str) -> FaultRecord:
        record = self._begin(f"kill -9 {name}")
        before = self._snapshot([name])
        killed = self.deployment.kill9(name)
        if name == "ingest":
            before = self._snapshot([name])  # what the dead producer got into the log, in-flight batches included
        restarted = self.deployment.restart(name)
        record.fault_s = restarted - killed
        self._cleared(record)
        record.recovery = self.recover([name], restarted, before)
        return self._done(record)

    def kafka_restart(self) -> FaultRecord:
        parts = ["ingest", "process", "materialize", "notify"]
        record = self._begin("Kafka broker stop + start")
        before = self._snapshot(parts)
        stopped = time.monotonic()
        self.stack.down(["kafka"])
        record.observed["stop_s"] = round(time.monotonic() - stopped, 2)
        time.sleep(self.plan.kafka_down_s)  # the fault itself: the broker stays down this long
        began = time.monotonic()
        self.stack.up(["kafka"])
        back = time.monotonic()
        record.observed["broker_start_s"] = round(back - began, 2)
        record.fault_s = back - stopped
        self._cleared(record)
        # Progress is measured against what was committed before the stop, not at the restart.
        record.recovery = self.recover(parts, back, before)
        return self._done(record)

    def redis_outage(self) -> FaultRecord:
        # kill -9 of redis-server: what AOF `everysec` had not yet written (up to ~1 s of writes the
        # materializer had acknowledged and maybe committed offsets for) is lost; the views must
        # still equal the clean run's key for key (the materializer's progress lives in Redis).
        record = self._begin(f"redis-server killed (kill -9), down {self.plan.redis_down_s:g}s")
        stopped = time.monotonic()
        self.stack.down(["redis"], hard=True)
        seen_degraded = wait_for(lambda: self.deployment.api("/health")[0] == 503, timeout_s=self.plan.redis_down_s)
        record.observed["api_reported_degraded_after_s"] = seen_degraded.seconds
        remaining = self.plan.redis_down_s - (time.monotonic() - stopped)
        if remaining > 0:
            time.sleep(remaining)  # the fault itself
        before = self._snapshot(["materialize"])
        self.stack.up(["redis"])
        back = time.monotonic()
        record.fault_s = back - stopped
        self._cleared(record)
        record.recovery = self.recover(["materialize", "serve"], back, before)
        return self._done(record)

    def webhook_trouble(self, hook_path: str) -> FaultRecord:
        record = self._begin(f"webhook slow ({self.plan.slow_reply_s:g}s/reply) {self.plan.webhook_slow_s:g}s,"
                             f" then 503 {self.plan.webhook_fail_s:g}s")
        began = time.monotonic()
        count_before = len(self.receiver.requests(hook_path))
        self.receiver.default(hook_path, slow(self.plan.slow_reply_s))
        time.sleep(self.plan.webhook_slow_s)  # the fault itself
        slow_requests = len(self.receiver.requests(hook_path)) - count_before
        self.receiver.default(hook_path, status(503, "maintenance"))
        time.sleep(self.plan.webhook_fail_s)  # the fault itself
        failed = [r for r in self.receiver.requests(hook_path)[count_before + slow_requests:] if r.answered_status == 503]
        before = self._snapshot(["notify"])
        self.receiver.default(hook_path, ok())
        healthy = time.monotonic()
        record.fault_s = healthy - began
        record.observed.update(requests_while_slow=slow_requests, answered_503=len(failed))
        self._cleared(record)
        record.recovery = self.recover(["notify"], healthy, before)
        return self._done(record)

    def _begin(self, fault: str) -> FaultRecord:
        say(f"fault: {fault}")
        return FaultRecord(fault, self.ticks_in_log(), 0.0, feed_running=not self.deployment.ingest_finished())

    def _cleared(self, record: FaultRecord) -> None:
        record.feed_running = record.feed_running and not self.deployment.ingest_finished()

    def _done(self, record: FaultRecord) -> FaultRecord:
        say(f"  recovered: {record.recovery} {record.observed}")
        self.records.append(record)
        time.sleep(self.plan.settle_s)  # steady running before the next fault
        return record

    def run_all(self, hook_path: str) -> list[FaultRecord]:
        faults: list[Callable[[], FaultRecord]] = [
            *(partial(self.kill, name) for name in ("ingest", "process", "materialize", "notify", "serve")),
            self.kafka_restart, self.redis_outage, partial(self.webhook_trouble, hook_path),
        ]
        for index, fault in enumerate(faults):
            if self.plan.fault_at is not None:
                due = self.plan.fault_at[index] * self.plan.ticks
                while self.ticks_in_log() < due and not self.deployment.ingest_finished():
                    time.sleep(1.0)  # the schedule: this fault begins at its point in the feed
            fault()
        return self.records


def wait_drained(deployment: Deployment, probe: KafkaProbe, *, notify: bool, timeout_s: float,
                 check_services: Callable[[], None] | None = None) -> float:
    """Block until ingest finished and every consumer committed everything; returns the seconds it took.

    Once ingest is done and the processor has committed every tick, the derived topics are final:
    their end positions are computed once and the materializer's (and notifier's) commits polled
    against them. ``check_services`` is called between polls and may raise to end the wait early.
    """
    began = time.monotonic()
    ns = deployment.namespace
    inputs = [f"{ns}{base}" for base in INPUTS]
    targets: dict[str, Offsets] = {}

    def outputs_final() -> bool:
        found = final_positions(deployment.bootstrap, inputs)
        if found is not None:
            targets["all"] = found
        return found is not None

    checks: list[tuple[str, Callable[[], bool]]] = [
        ("ingest to finish", deployment.ingest_finished),
        ("process to drain ticks", lambda: probe.lag(deployment.process_group, [f"{ns}ticks"]) == 0),
        ("the end of the derived topics", outputs_final),
        ("materialize to drain its inputs", lambda: reached(probe, deployment.materialize_group, targets["all"])),
    ]
    if notify:
        checks.append(("notify to drain signals", lambda: reached(
            probe, deployment.notify_group, {k: v for k, v in targets["all"].items() if k[0] == f"{ns}signals"})))
    for what, check in checks:
        while not check():
            if check_services is not None:
                check_services()
            if time.monotonic() - began > timeout_s:
                raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
            time.sleep(0.5)
        say(f"  {what}: done at {time.monotonic() - began:.1f}s")
    return time.monotonic() - began


def report_json(plan: ChaosPlan, records: list[FaultRecord], extra: dict[str, Any]) -> str:
    return json.dumps({"plan": asdict(plan), "faults": [asdict(r) for r in records], **extra}, indent=2,
                      default=str)
