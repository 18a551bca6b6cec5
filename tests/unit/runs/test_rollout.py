"""The promote protocol (``processors/core/rollout.py``) as a model: readers that lag, a CLI killed anywhere.

The model is the real pure functions driven by a small simulation of the runs partition (records
stamped by one monotone broker clock), two processors (the serving ``old`` group and the shadow
``new`` group, each reading the runs log at its own pace and processing the ticks log one committed
record at a time under the duty it last read) and the promote command (``handover`` → wait for the
shadow to stop → wait for the old run to reach it → ``fence`` → wait for it to stop → ``decided`` →
settle), killed after any of its steps, with the deadline passing at any moment. Whatever the
interleaving, every tick offset is written live exactly once: by the old run before the switch
and by the new one from it (a valid decision), or by the old run throughout (no valid decision).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from processors.core.rollout import (
    Duty,
    LiveView,
    RolloutError,
    decide,
    duty,
    effective,
    fence,
    propose,
    settle,
    switch_offsets,
)
from schemas.runs import LiveState, Serving, StrategyRef

T0 = datetime(2026, 12, 5, 12, tzinfo=UTC)
OLD_GROUP, NEW_GROUP = "p.stockstream-process", "p.runs.next.process"
TICKS = 40
DEADLINE_S = 30


def serving(run_id: str, group: str, switch: dict[int, int] | None = None, epoch: int = 0) -> Serving:
    return Serving(run_id=run_id, group=group, strategy=StrategyRef(version=("a" if run_id == "old" else "b") * 16),
                   switch=switch, epoch=epoch, since=T0)


INITIAL = LiveState(current=serving("old", OLD_GROUP))


@dataclass
class RunsLog:
    """The runs partition: live records and probes, stamped by the broker's (monotone) clock."""

    records: list[tuple[datetime, LiveState | None]] = field(default_factory=list)
    now: datetime = T0

    def append(self, state: LiveState | None) -> int:
        self.records.append((self.now, state))
        return len(self.records) - 1

    def view(self, upto: int) -> LiveView:
        """What a reader that has read the first ``upto`` records acts on."""
        latest: tuple[datetime, LiveState] | None = None
        newest = T0
        for stamp, state in self.records[:upto]:
            newest = stamp
            if state is not None:
                latest = (stamp, state)
        if latest is None:
            return effective(INITIAL, T0)
        return effective(latest[1], latest[0], newest)


@dataclass
class Processor:
    group: str
    run: str | None  # STOCKSTREAM_RUN
    position: int
    read: int = 0  # records of the runs log read
    live: list[int] = field(default_factory=list)

    def duty(self, log: RunsLog) -> Duty:
        return duty(log.view(self.read), self.group, self.run)

    def stopped(self, log: RunsLog) -> bool:
        return not self.duty(log).run

    def step(self, log: RunsLog, live: list[tuple[int, str]]) -> None:
        current = self.duty(log)
        if current.run and self.position < TICKS:
            if current.writes_live(0, self.position):
                live.append((self.position, self.group))
            self.position += 1
        elif not current.run and log.now > self._deadline(log):
            log.append(None)  # a probe: waiting past the deadline, ask the log

    def _deadline(self, log: RunsLog) -> datetime:
        pending = log.view(self.read).pending
        return pending.deadline if pending is not None else log.now


@dataclass
class Promote:
    """The promote command as a state machine; ``steps`` counts the records it wrote."""

    steps: int = 0
    state: LiveState | None = None
    incoming_stop: dict[int, int] | None = None
    gave_up: bool = False
    late: bool = False  # its decision reaches the broker after the deadline
    decision: LiveState | None = None

    def step(self, log: RunsLog, old: Processor, new: Processor) -> None:
        if self.gave_up:
            return
        # It gives up when it sees the deadline pass, but not before the decision: a decision sent in
        # time may still be stamped late (a slow network), and the log, not the sender, decides.
        pending = None if self.state is None else self.state.pending
        if pending is not None and pending.phase != "fence" and log.now > pending.deadline:
            self.gave_up = True
            log.append(None)
            return
        if self.steps == 0:
            self.state = propose(log.view(len(log.records)), to_run="next", to_group=NEW_GROUP,
                                 deadline=log.now + timedelta(seconds=DEADLINE_S))
            log.append(self.state)
            self.steps = 1
        elif self.steps == 1 and self.state is not None:
            if new.read >= 1 and new.stopped(log):
                self.incoming_stop = {0: new.position}
            if self.incoming_stop is not None and old.position >= self.incoming_stop[0]:
                self.state = fence(self.state)
                log.append(self.state)
                self.steps = 2
        elif self.steps == 2 and self.state is not None and self.incoming_stop is not None:
            if self.decision is not None:  # a late decision lands now, after the others had their turn
                log.append(self.decision)
                self.state, self.steps = self.decision, 3
            elif old.read >= 2 and old.stopped(log):
                pending = self.state.pending
                assert pending is not None
                switch = switch_offsets({0: old.position}, self.incoming_stop)
                decided = decide(self.state, serving("next", NEW_GROUP, switch, pending.epoch))
                if self.late:  # in flight past the deadline: waiting processors may probe before it lands
                    log.now = max(log.now, pending.deadline + timedelta(milliseconds=1))
                    self.decision = decided
                else:
                    log.append(decided)
                    self.state, self.steps = decided, 3
        elif self.steps == 3:
            log.append(settle(log.view(len(log.records))))
            self.steps = 4


ACTORS = ["old", "new", "read-old", "read-new", "cli"]
# Rounds: every actor once in a random order, then maybe 5 s pass (a quarter of the rounds), so a
# promote gets through its steps before the deadline in some runs and not in others.
ROUNDS = st.lists(st.tuples(st.permutations(ACTORS), st.integers(0, 3)), min_size=1, max_size=40)


@settings(max_examples=500, deadline=None)
@given(rounds=ROUNDS, kill_after=st.integers(0, 4), head_start=st.integers(0, 10), late=st.booleans())
def test_every_kill_point_and_interleaving_leaves_old_or_new_live_never_a_mix(
        rounds: list[tuple[list[str], int]], kill_after: int, head_start: int, late: bool) -> None:
    actions = [action for order, clock in rounds for action in [*order, *(["clock"] if clock == 0 else [])]]
    log = RunsLog()
    old = Processor(OLD_GROUP, None, position=0)
    new = Processor(NEW_GROUP, "next", position=0)
    live: list[tuple[int, str]] = []
    for _ in range(head_start):
        old.step(log, live)
        new.step(log, live)
    promote = Promote(late=late)
    for action in actions:
        if action == "old":
            old.step(log, live)
        elif action == "new":
            new.step(log, live)
        elif action == "read-old":
            old.read = min(old.read + 1, len(log.records))
        elif action == "read-new":
            new.read = min(new.read + 1, len(log.records))
        elif action == "cli" and promote.steps < kill_after:
            promote.step(log, old, new)
        elif action == "clock":
            log.now += timedelta(seconds=5)
    # The command is gone (killed, or done); time passes, everyone reads everything and works to the end.
    log.now += timedelta(seconds=DEADLINE_S + 1)
    for _ in range(4 * TICKS):
        old.read = new.read = len(log.records)
        old.step(log, live)
        new.step(log, live)
    final = log.view(len(log.records))
    event(f"promote wrote {promote.steps} records; {'new' if final.serving.group == NEW_GROUP else 'old'} serves")
    assert final.pending is None, "a hand-over is never left pending once its deadline has passed"
    offsets = [offset for offset, _group in live]
    assert sorted(offsets) == list(range(TICKS)), "every tick written live exactly once"
    writers = [group for _offset, group in sorted(live)]
    if final.serving.group == NEW_GROUP:
        switch = final.serving.switch
        assert switch is not None
        assert writers == [OLD_GROUP] * switch[0] + [NEW_GROUP] * (TICKS - switch[0])
        assert promote.steps >= 3
    else:
        assert writers == [OLD_GROUP] * TICKS, "no valid decision: the old run wrote live throughout"
    for processor in (old, new):
        assert processor.position == TICKS, "both runs follow the log to its end (the demoted one too)"


def test_a_decision_stamped_after_the_deadline_is_void_for_every_reader() -> None:
    deadline = T0 + timedelta(seconds=30)
    pending = propose(effective(INITIAL, T0), to_run="next", to_group=NEW_GROUP, deadline=deadline)
    decided = decide(fence(pending), serving("next", NEW_GROUP, {0: 5}, 1))
    assert effective(decided, deadline).serving.group == NEW_GROUP
    late = effective(decided, deadline + timedelta(milliseconds=1))
    assert late.void and late.serving.group == OLD_GROUP and late.pending is None


def test_a_pending_hand_over_is_void_once_a_later_record_passes_its_deadline() -> None:
    deadline = T0 + timedelta(seconds=30)
    fenced = fence(propose(effective(INITIAL, T0), to_run="next", to_group=NEW_GROUP, deadline=deadline))
    waiting = effective(fenced, T0, T0 + timedelta(seconds=30))
    assert waiting.role(OLD_GROUP) == "wait" and waiting.role(NEW_GROUP) == "wait"
    assert waiting.role("p.runs.other.process") == "run"
    after = effective(fenced, T0, deadline + timedelta(seconds=1))
    assert after.void and after.role(OLD_GROUP) == "run" and after.role(NEW_GROUP) == "run"


def test_duties_route_outputs_by_switch_and_keep_unnamed_live_processors_out() -> None:
    switched = LiveState(current=serving("next", NEW_GROUP, {0: 10, 1: 3}, 1), previous=serving("old", OLD_GROUP))
    view = effective(switched, T0)
    incoming = duty(view, NEW_GROUP, "next")
    assert incoming.run and incoming.namespace == "next"
    assert not incoming.writes_live(0, 9) and incoming.writes_live(0, 10) and incoming.writes_live(1, 3)
    assert incoming.writes_live(2, 0), "a partition the switch does not list goes live from its start"
    demoted = duty(view, OLD_GROUP, None)
    assert demoted.run and demoted.namespace == "old" and not demoted.writes_live(0, 10**6)
    stray = duty(view, "p.another-live-group", None)
    assert not stray.run, "a live processor the record does not name never writes live"
    assert duty(None, OLD_GROUP, None).writes_live(0, 0), "no live record: the live processor serves, as before"
    assert not duty(None, NEW_GROUP, "next").writes_live(0, 0)


def test_the_protocol_refuses_steps_out_of_order_and_switches_that_lose_records() -> None:
    view = effective(INITIAL, T0)
    with pytest.raises(RolloutError):
        fence(INITIAL)
    with pytest.raises(RolloutError):
        propose(view, to_run="old", to_group=OLD_GROUP, deadline=T0)
    pending = propose(view, to_run="next", to_group=NEW_GROUP, deadline=T0 + timedelta(seconds=5))
    with pytest.raises(RolloutError):
        propose(effective(pending, T0), to_run="next", to_group=NEW_GROUP, deadline=T0)
    with pytest.raises(RolloutError):
        decide(pending, serving("next", NEW_GROUP, {0: 1}, 1))
    with pytest.raises(RolloutError):
        decide(fence(pending), serving("next", NEW_GROUP, None, 1))
    with pytest.raises(RolloutError):
        switch_offsets({0: 4}, {0: 5})
    assert switch_offsets({0: 7, 1: 2}, {0: 5, 1: 2}) == {0: 7, 1: 2}
