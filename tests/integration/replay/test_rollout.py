"""``stockstream strategy deploy/promote/rollback`` on the real stack: warm state, one writer of live, no mix.

A live ``stockstream process`` (the built-in strategy, 1m and 1h candles) processes a synthetic
log of two symbols over 55 hours (SMA 50 on 1h candles defined before the switch). Then:

- ``strategy deploy next.toml --shadow`` (MACD on closed 1h candles) warms up from the log and
  follows it; ``strategy promote next`` runs while the serving processor restarts (as a
  supervisor would restart it) and new ticks arrive: stopped before ticks the shadow processes,
  started again once the shadow has stopped for the hand-over and more ticks came, so the old run
  goes on past the shadow's stop point and the shadow catches up from there to the switch. After
  it, the first live 1h indicators of every symbol are all defined and equal a from-start run,
  today's daily summary continues (its tick count goes on from the one before the switch), and
  the live topics hold, kind by kind and event for event, the built-in strategy's from-start
  outputs for the records before the switch and the new strategy's from-start outputs from it:
  no signal older than the switch from the new strategy, none twice, none missing;
- ``strategy rollback`` killed with SIGKILL just after it wrote each record of the hand-over
  (``handover``, ``fence``, ``decided``): whatever the log decided, the live topics are still
  exactly one strategy's from-start outputs per stretch of the log between valid switches;
- the serving processor killed with SIGKILL while a promote has fenced it (and restarted, as a
  supervisor would): the promote completes and the same holds.

Every wait is on a condition (committed offsets, group members, the runs log), with generous bounds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from processors.core.rollout import effective
from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs, load_strategy
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.runs import RunLog, RunSnapshot, RunWatcher
from processors.runtime.settings import KafkaSettings
from schemas.events import Candle, DailySummary, DeadLetter, IndicatorSnapshot, Signal
from schemas.runs import LIVE_RUN_ID, Serving
from schemas.upcasters import decode_run
from stockstream.replayer import Kafka
from tests.integration.spark.synthetic import Reference, produce_all, reference_events, synthetic_log
from tests.support.kafka_tools import Record, delete_topics, end_offsets, read_topic, wait_until
from tests.support.processes import STOCKSTREAM, ServiceProcess, running

pytestmark = [pytest.mark.integration]
SYMBOLS = ("BTC-USD", "ETH-USD")
TIMEFRAMES = ("1m", "1h")
START = datetime(2024, 4, 1, 6, tzinfo=UTC)
STEP = timedelta(seconds=30)  # each symbol every minute
WARM_RECORDS, AHEAD_RECORDS, DURING_RECORDS, AFTER_RECORDS, KILL_RECORDS = 6_600, 300, 300, 600, 240
NEXT = """\
# MACD on closed 1h candles (the rollout test's new strategy).
[strategies.macd_1h]
timeframe = "1h"
buy = "macd(12, 26, 9).line > macd(12, 26, 9).signal"
sell = "macd(12, 26, 9).line < macd(12, 26, 9).signal"
"""
KINDS = {"indicators": (IndicatorSnapshot, ("indicators",)), "candles": (Candle, tuple(f"candles.{tf}" for tf in TIMEFRAMES)),
         "signals": (Signal, ("signals",)), "daily": (DailySummary, ("aggregates.daily",)),
         "dead_letters": (DeadLetter, ("ticks.dlq",))}
WAIT_S = 600


def read_all(bootstrap: str, topic: str) -> list[Record]:
    """Every record of ``topic`` up to its end offsets now (never fewer because the broker was slow)."""
    return read_topic(bootstrap, topic, idle_s=None, timeout_s=WAIT_S)


@dataclass
class Rollout:
    prefix: str
    bootstrap: str
    env: dict[str, str]
    next_file: Path
    live: ServiceProcess
    shadow: ServiceProcess
    produced: int = WARM_RECORDS
    shadow_from: dict[int, int] | None = None  # where the shadow's own outputs start (the log's end at deploy)

    @property
    def ticks(self) -> str:
        return f"{self.prefix}ticks"

    def settings(self) -> KafkaSettings:
        return KafkaSettings(topic_prefix=self.prefix, bootstrap_servers=self.bootstrap)

    def feed(self, count: int, seed: int) -> None:
        """``count`` more ticks, continuing the log's event time."""
        produce_all(self.bootstrap, self.ticks, synthetic_log(SYMBOLS, count, START + self.produced * STEP, STEP, seed=seed))
        self.produced += count

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([STOCKSTREAM, *args], capture_output=True, text=True, timeout=WAIT_S, check=False,
                              env={**os.environ, **self.env}, stdin=subprocess.DEVNULL)

    def caught_up(self, *groups: str) -> bool:
        assert self.live.alive(), self.live.output[-4000:]
        return self.committed_all(*groups)

    def committed_all(self, *groups: str) -> bool:
        """Whether every group committed the whole log (the shadow must be running)."""
        assert self.shadow.alive(), self.shadow.output[-4000:]
        ends = end_offsets(self.bootstrap, self.ticks)
        kafka = Kafka(self.settings())
        try:
            return all(kafka.lag(group, {(self.ticks, p): end for p, end in ends.items()}) == 0 for group in groups)
        finally:
            kafka.close()


def _configs(strategy_file: Path | None) -> PipelineConfigs:
    strategy = DEFAULT_STRATEGY if strategy_file is None else load_strategy(strategy_file)
    # the processor's defaults: live updates at LIVE_UPDATE_INTERVAL=1 s
    return PipelineConfigs(strategy, candle_timeframes=TIMEFRAMES, grace_ms=5_000, live_update_ms=1_000)


@pytest.fixture(scope="module")
def rollout(stack, tmp_path_factory) -> Iterator[Rollout]:
    prefix = f"troll{uuid.uuid4().hex[:8]}."
    settings = KafkaSettings(topic_prefix=prefix, bootstrap_servers=stack.kafka_bootstrap, candle_timeframes=TIMEFRAMES)
    ensure_topics(settings, settings.topics().all())
    folder = tmp_path_factory.mktemp("rollout")
    next_file = folder / "next.toml"
    next_file.write_text(NEXT)
    env = {"STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "PROCESS_STATE_DIR": str(folder / "state"), "METRICS_PORT": "0", "REDIS_URL": stack.redis_url,
           "REDIS_KEY_PREFIX": f"{prefix}v:", "STOCKSTREAM_TIMEFRAMES": ",".join(TIMEFRAMES)}
    produce_all(stack.kafka_bootstrap, f"{prefix}ticks", synthetic_log(SYMBOLS, WARM_RECORDS, START, STEP, seed=11))
    with running(["process", "--metrics-port", "0"], env) as live:
        state = Rollout(prefix, stack.kafka_bootstrap, env, next_file, live, live)
        try:
            wait_until(lambda: state.caught_up(f"{prefix}stockstream-process"), timeout_s=WAIT_S,
                       message="the live processor to reach the log's end")
            state.shadow_from = end_offsets(stack.kafka_bootstrap, f"{prefix}ticks")
            with running(["strategy", "deploy", str(next_file), "--shadow", "--id", "next", "--no-views"],
                         env) as shadow:
                state.shadow = shadow
                yield state
        finally:
            state.live.terminate()  # a test may have restarted it
    delete_topics(stack.kafka_bootstrap, prefix)
    delete_topics(stack.kafka_bootstrap, f"changelog__{prefix}")


def _live_history(rollout: Rollout) -> list[Serving]:
    """Who served live, in order, as every reader of the runs log decides it (valid decisions only)."""
    servings: list[Serving] = []
    for record in read_all(rollout.bootstrap, f"{rollout.prefix}runs"):
        if record.key != LIVE_RUN_ID.encode() or record.value is None:
            continue
        run = decode_run(record.value)
        assert run.live is not None
        stamp = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        serving = effective(run.live, stamp).serving
        if not servings or (serving.run_id, serving.switch) != (servings[-1].run_id, servings[-1].switch):
            servings.append(serving)
    return servings


def _canonical(kind: str, values: list[bytes]) -> list[str]:
    model = KINDS[kind][0]
    return sorted(model.model_validate_json(value).model_dump_json() for value in values)


def _live_events(rollout: Rollout) -> dict[str, list[str]]:
    return {kind: _canonical(kind, [r.value for name in names
                                    for r in read_all(rollout.bootstrap, f"{rollout.prefix}{name}")
                                    if r.value is not None])
            for kind, (_model, names) in KINDS.items()}


def _expected(history: list[Serving], references: dict[str, Reference]) -> dict[str, list[str]]:
    """Each serving run's from-start events over its stretch of the log: [its switch, the next switch)."""
    expected: dict[str, list[str]] = {}
    for kind in KINDS:
        events = []
        for index, serving in enumerate(history):
            start = dict(serving.switch or {})
            end = dict(history[index + 1].switch or {}) if index + 1 < len(history) else None
            reference = references[serving.strategy.version]
            events += [item[3].model_dump_json() for item in reference.between(kind, start, end)]
        expected[kind] = sorted(events)
    return expected


def _references(rollout: Rollout, history: list[Serving]) -> dict[str, Reference]:
    records = read_all(rollout.bootstrap, rollout.ticks)
    by_version: dict[str, Reference] = {}
    for serving in history:
        if serving.strategy.version not in by_version:
            file = None if serving.strategy.file is None else Path(serving.strategy.file)
            # what `stockstream process` runs: each partition with its stream time (docs/core.md)
            by_version[serving.strategy.version] = reference_events(records, _configs(file), stream_time=True)
    return by_version


def test_promote_hands_live_to_the_warm_shadow_from_the_switch_on(rollout):
    wait_until(lambda: rollout.caught_up(f"{rollout.prefix}runs.next.process"), timeout_s=WAIT_S,
               message="the shadow to warm up and reach the log's end")
    shadow_group = f"{rollout.prefix}runs.next.process"
    # The old run must go on past where the shadow stops (so the shadow's catch-up to the switch is
    # tested) by construction, not by ticks happening to land between the two runs' stops: the
    # serving processor is down while the shadow moves ahead and stops for the hand-over, then more
    # ticks come and it starts again (as a supervisor would restart it); the promote waits for it.
    assert rollout.live.terminate() == 0, rollout.live.output[-3000:]
    rollout.feed(AHEAD_RECORDS, seed=12)
    wait_until(lambda: rollout.committed_all(shadow_group), timeout_s=WAIT_S,
               message="the shadow to process the ticks the stopped serving processor has not")
    promote = subprocess.Popen([STOCKSTREAM, "strategy", "promote", "next", "--timeout", "300"],  # noqa: S603
                               env={**os.environ, **rollout.env}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_until(lambda: promote.poll() is not None or _stopped_for_handover(rollout, shadow_group), timeout_s=WAIT_S,
               message="the shadow to stop for the hand-over")
    assert promote.poll() is None, promote.communicate()
    rollout.feed(DURING_RECORDS, seed=14)  # past the shadow's stop point, before the old run reaches it
    rollout.live = ServiceProcess(["process", "--metrics-port", "0"], rollout.env)
    out, err = promote.communicate(timeout=WAIT_S)
    assert promote.returncode == 0, out + err + rollout.live.output[-3000:]
    shown = rollout.cli("runs", "show", "next")
    assert json.loads(shown.stdout)["state"] == "serving", shown.stdout + shown.stderr
    stopped = re.search(r"'next' stopped at ([0-9:,]+);", err)
    assert stopped is not None, err
    incoming = {int(p): int(o) for p, o in (part.split(":") for part in stopped.group(1).split(","))}
    rollout.feed(AFTER_RECORDS, seed=13)
    wait_until(lambda: rollout.caught_up(f"{rollout.prefix}runs.next.process", f"{rollout.prefix}stockstream-process"),
               timeout_s=WAIT_S, message="both runs to reach the log's end")
    history = _live_history(rollout)
    assert [s.run_id for s in history][1:] == ["next"] and history[0].switch is None, history
    # The live processor it demoted is a run now (listed, dropped and pruned like one): runs.live-<version>.*
    demoted = json.loads(rollout.cli("runs", "show", history[0].run_id).stdout)
    assert (demoted["kind"], demoted["state"], demoted["group"]) == ("shadow", "running", history[0].group), demoted
    assert demoted["namespace"]["topic_prefix"] == f"{rollout.prefix}runs.{history[0].run_id}."
    stamps = {decode_run(r.value).live.pending.phase: r.timestamp_ms  # type: ignore[union-attr]
              for r in read_all(rollout.bootstrap, f"{rollout.prefix}runs")
              if r.key == LIVE_RUN_ID.encode() and r.value is not None and decode_run(r.value).live.pending}  # type: ignore[union-attr]
    print(f"promote: handover → fence {(stamps['fence'] - stamps['handover']) / 1000:.2f} s (the serving processor's"  # noqa: T201
          " restart included),"
          f" fence → decided {(stamps['decided'] - stamps['fence']) / 1000:.2f} s (broker times)")
    switch = dict(history[1].switch or {})
    ends = end_offsets(rollout.bootstrap, rollout.ticks)
    assert any(switch[p] < ends[p] for p in ends), "records after the switch were processed live by the new run"
    assert any(switch[p] > incoming.get(p, 0) for p in switch), (
        f"the old run went on past where the shadow stopped ({incoming} → {switch}): the shadow's catch-up")

    references = _references(rollout, history)
    live = _live_events(rollout)
    assert live == _expected(history, references), "live = old before the switch, new from it: no mix"
    new_signals = [item[3].model_dump_json() for item in references[history[1].strategy.version].between(
        "signals", rollout.shadow_from, switch)]
    own = _canonical("signals", [r.value for r in read_all(rollout.bootstrap, f"{rollout.prefix}runs.next.signals")
                                 if r.value is not None])
    assert own == sorted(new_signals), "the shadow's signals up to the switch (its catch-up included) stayed its own"

    new = references[history[1].strategy.version]
    snapshots = [IndicatorSnapshot.model_validate_json(v) for v in (
        r.value for r in read_all(rollout.bootstrap, f"{rollout.prefix}indicators") if r.value is not None)]
    for symbol in SYMBOLS:
        first = next(s for s in snapshots if s.symbol == symbol and s.timeframe == "1h"
                     and s.lineage.offset >= switch.get(s.lineage.partition, 0))
        assert first.values and all(value is not None for value in first.values.values()), first
        from_start = [item[3] for item in new.indicators if item[3].lineage == first.lineage and item[3].timeframe == "1h"]
        assert from_start == [first], "the first live 1h indicators equal a from-start run of the new strategy"
    summaries = [DailySummary.model_validate_json(r.value)
                 for r in read_all(rollout.bootstrap, f"{rollout.prefix}aggregates.daily") if r.value is not None]
    for symbol in SYMBOLS:
        mine = [s for s in summaries if s.symbol == symbol and not s.final]
        before = [s for s in mine if s.lineage.offset < switch.get(s.lineage.partition, 0)]
        after = [s for s in mine if s.lineage.offset >= switch.get(s.lineage.partition, 0)]
        assert before and after
        if before[-1].date == after[0].date:
            assert after[0].tick_count > before[-1].tick_count, "the day's summary continues across the switch"
    signals = [Signal.model_validate_json(r.value) for r in read_all(rollout.bootstrap, f"{rollout.prefix}signals")
               if r.value is not None]
    new_ids = {item[3].signal_id for item in new.signals}
    old_ids = {item[3].signal_id for item in references[history[0].strategy.version].signals}
    assert all(s.signal_id in old_ids for s in signals if s.lineage.offset < switch.get(s.lineage.partition, 0))
    assert not [s for s in signals if s.signal_id in new_ids - old_ids
                and s.lineage.offset < switch.get(s.lineage.partition, 0)], "no new-strategy signal older than the switch"


def _stopped_for_handover(rollout: Rollout, group: str) -> bool:
    """Whether a hand-over is at its first step and the incoming run's group has stopped (no member)."""
    if _phase(rollout)[0] != "handover":
        return False
    kafka = Kafka(rollout.settings())
    try:
        return kafka.members(group) == 0
    finally:
        kafka.close()


def _phase(rollout: Rollout) -> tuple[str | None, str | None]:
    """The phase of the hand-over in flight (None: none) and the run that serves, as the runs log says now."""
    log = RunLog(rollout.settings())
    try:
        snapshot = log.read()
    finally:
        log.close()
    record, view = snapshot.live, snapshot.live_view()
    serving = None if view is None else view.serving.run_id
    if record is None or record.run.live is None or record.run.live.pending is None:
        return None, serving
    return record.run.live.pending.phase, serving


@pytest.mark.parametrize("phase", ["handover", "fence", "decided"])
def test_a_rollback_killed_at_each_step_leaves_one_version_live_never_a_mix(rollout, phase):
    before = len(_live_history(rollout))
    serving = _phase(rollout)[1]
    # A watcher of the runs log kills the command the moment the record arrives (its next step waits
    # for processors to stop at a checkpoint, a poll at least); at decided, the record restating the
    # decision may follow too fast to beat: either way it is killed after the decision.
    hit, command = threading.Event(), []

    def on_change(snapshot: RunSnapshot) -> None:
        record, view = snapshot.live, snapshot.live_view()
        pending = None if record is None or record.run.live is None else record.run.live.pending
        if (pending is not None and pending.phase == phase) or (
                phase == "decided" and view is not None and view.serving.run_id != serving):
            if not hit.is_set() and command:
                hit.set()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(command[0].process.pid, signal.SIGKILL)

    watcher = RunWatcher(RunLog(rollout.settings()), on_change)
    watcher.start()
    try:
        command.append(ServiceProcess(["strategy", "rollback", "--timeout", "45"], rollout.env))
        wait_until(lambda: hit.is_set() or not command[0].alive(), timeout_s=WAIT_S,
                   message=f"the rollback to write its {phase} record")
    finally:
        watcher.close()
        command[0].kill9()
    assert hit.is_set(), f"the rollback ended before its {phase} record: {command[0].output[-2000:]}"
    rollout.feed(KILL_RECORDS, seed=20 + before)
    log = RunLog(rollout.settings())

    def settled() -> bool:
        view = log.read().live_view()
        return view is not None and view.pending is None

    try:
        wait_until(settled, timeout_s=WAIT_S, message="the hand-over to be decided or void for every reader")
    finally:
        log.close()
    wait_until(lambda: rollout.caught_up(f"{rollout.prefix}runs.next.process", f"{rollout.prefix}stockstream-process"),
               timeout_s=WAIT_S, message="both runs to reach the log's end")
    history = _live_history(rollout)
    assert len(history) in (before, before + 1)
    print(f"rollback killed at {phase}: {'the rollback happened' if len(history) > before else 'void'};"
          f" {history[-1].run_id} serves")  # noqa: T201 - shown with -s: which way each kill went
    assert _live_events(rollout) == _expected(history, _references(rollout, history)), (
        f"killed at {phase}: live holds one strategy's outputs per stretch between valid switches")


def test_a_promote_survives_the_serving_processor_killed_while_it_is_fenced(rollout):
    """Last: the old run serves (the kill at decided rolled back); promote again, kill -9 it at its fence."""
    assert _phase(rollout) == (None, _live_history(rollout)[-1].run_id)
    serving = _live_history(rollout)[-1]
    assert serving.group == f"{rollout.prefix}stockstream-process", "the test's own processor serves"
    fenced = threading.Event()

    def on_change(snapshot: RunSnapshot) -> None:
        record = snapshot.live
        pending = None if record is None or record.run.live is None else record.run.live.pending
        if pending is not None and pending.phase == "fence" and not fenced.is_set():
            fenced.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(rollout.live.process.pid, signal.SIGKILL)  # its open transaction is aborted

    watcher = RunWatcher(RunLog(rollout.settings()), on_change)
    watcher.start()
    promote = ServiceProcess(["strategy", "promote", "next", "--timeout", "120"], rollout.env)
    try:
        wait_until(lambda: fenced.is_set() or not promote.alive(), timeout_s=WAIT_S,
                   message="the promote to fence the serving run")
        assert fenced.is_set(), promote.output[-2000:]
        rollout.live.kill9()
        rollout.live = ServiceProcess(["process", "--metrics-port", "0"], rollout.env)  # a supervisor's restart
        assert promote.wait(WAIT_S) == 0, promote.output[-3000:]
    finally:
        watcher.close()
        promote.terminate()
    rollout.feed(KILL_RECORDS, seed=40)
    wait_until(lambda: rollout.caught_up(f"{rollout.prefix}runs.next.process", f"{rollout.prefix}stockstream-process"),
               timeout_s=WAIT_S, message="both runs to reach the log's end")
    history = _live_history(rollout)
    assert history[-1].run_id == "next" and history[-2].run_id == serving.run_id
    refused = rollout.cli("runs", "drop", "next", "--yes")
    assert refused.returncode == 2 and "serves live" in refused.stderr, refused.stderr
    assert _live_events(rollout) == _expected(history, _references(rollout, history)), (
        "the killed serving processor's last transaction never reached live; the new run took over at its commit")
