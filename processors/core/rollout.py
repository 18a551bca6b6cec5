"""Strategy rollout decided by the log: who writes the live outputs, and how a hand-over is settled.

The ``live`` record of the ``runs`` topic (:class:`schemas.runs.LiveState`) names the run that
serves the live outputs (:class:`schemas.runs.Serving`: its consumer group, strategy, and the
input offsets from which it writes live). ``stockstream strategy promote`` hands live over to a
warm shadow run in three records, all under the key ``live`` of the one-partition ``runs`` topic:

1. ``handover`` — the incoming run's processors stop at a checkpoint (its committed offsets ``b``);
   the serving run keeps going until its committed offsets reach ``b``;
2. ``fence`` — the serving run's processors stop at a checkpoint (its committed offsets ``a ≥ b``);
3. ``decided`` — the incoming run serves from ``switch = a``: it resumes from ``b``, writes the
   records before ``a`` to its own namespace and those from ``a`` on to the live topics. Nothing
   older than ``a`` reaches live from it, and the old run wrote live exactly the records before ``a``.

**Why it never mixes.** A decision counts only if its record's broker timestamp (the topic has
``message.timestamp.type=LogAppendTime``) is at or before the hand-over's deadline, and a
hand-over still pending is void as soon as the reader has seen *any* later record of the
partition stamped after the deadline (a probe, :data:`processors.runtime.runs.PROBE_KEY`). The
broker stamps records in log order, so the two rules never disagree: a reader that saw a probe
past the deadline can only meet decisions stamped later still, which do not count. Every reader
applies :func:`effective` to what it read and gets the same answer, so a promote killed at any
point leaves either no valid decision (the old run serves again, the shadow resumes as a shadow)
or one (the new run serves). A processor waiting on a hand-over whose deadline its own clock says
has passed appends a probe to find out (the clock only says *when* to ask; the log answers).

This relies on the broker's append timestamps not going backwards along the partition (one
broker's clock; a step back of the clock between two records of one hand-over could split readers).

Pure: no clock, no Kafka. Called by the processor (``processors/stream/control.py``) and the CLI
(``stockstream strategy``); tested in ``tests/unit/core/test_core_rollout.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas.runs import Handover, LiveState, Serving

Role = Literal["run", "wait"]
"""What a processor of one consumer group does under a live state: process, or stop and wait."""


class RolloutError(ValueError):
    """A step of the protocol asked in the wrong phase or with offsets that would lose records."""


@dataclass(frozen=True)
class LiveView:
    """The live state as a reader must act on it: who serves, what hand-over is in flight.

    ``void`` marks a hand-over that missed its deadline (it did not happen; ``serving`` is unchanged).
    """

    serving: Serving
    previous: Serving | None
    pending: Handover | None
    void: bool = False

    def role(self, group: str) -> Role:
        """Whether processors of consumer group ``group`` may process now.

        The incoming run stops from ``handover`` on, the serving run from ``fence`` on; both wait
        until the hand-over is decided (or void). Every other group runs.
        """
        pending = self.pending
        if pending is None:
            return "run"
        if group == pending.to_group:
            return "wait"
        if pending.phase == "fence" and group == self.serving.group:
            return "wait"
        return "run"

    def run_of(self, group: str) -> str | None:
        """The run id the view gives consumer group ``group`` (serving or previous), None if it names none."""
        for serving in (self.serving, self.previous):
            if serving is not None and serving.group == group:
                return serving.run_id
        return None


def effective(state: LiveState, record_time: datetime, latest_time: datetime | None = None) -> LiveView:
    """What a ``live`` record written at broker time ``record_time`` means.

    ``latest_time``: the newest broker timestamp the reader has read on the partition at or after
    that record (probes included); a pending hand-over whose deadline it passed is void.
    """
    pending = state.pending
    if pending is None:
        return LiveView(state.current, state.previous, None)
    if pending.phase == "decided":
        if pending.decision is None:  # pragma: no cover - the model forbids it
            raise RolloutError("a decided hand-over carries its decision")
        if record_time <= pending.deadline:
            return LiveView(pending.decision, state.current, None)
        return LiveView(state.current, state.previous, None, void=True)
    if max(record_time, latest_time or record_time) > pending.deadline:
        return LiveView(state.current, state.previous, None, void=True)
    return LiveView(state.current, state.previous, pending)


@dataclass(frozen=True)
class Duty:
    """What one processor does under a live view: process or wait, where its outputs go.

    ``namespace``: the run whose topics (``runs.<id>.*``) get the outputs not written live (None:
    every output is live, or nothing is written). ``live_from``: per partition, the first offset
    whose outputs go to the live topics (a partition not listed: from 0); None: nothing goes live.
    """

    run: bool
    namespace: str | None
    live_from: Mapping[int, int] | None

    def writes_live(self, partition: int, offset: int) -> bool:
        live_from = self.live_from
        return live_from is not None and offset >= live_from.get(partition, 0)


def duty(view: LiveView | None, group: str, own_run: str | None) -> Duty:
    """The duty of a processor of consumer group ``group`` (``own_run``: its ``STOCKSTREAM_RUN``, if any).

    Without a ``live`` record (``view`` None) a processor without a run serves live from the start,
    as before rollouts existed. With one, only the serving group writes live (from its switch); a
    live processor (no run of its own) of a group the record does not name waits: it never writes
    live behind the serving run's back.
    """
    if view is None:
        return Duty(True, own_run, None) if own_run is not None else Duty(True, None, {})
    namespace = own_run or view.run_of(group)
    if namespace is None:
        return Duty(False, None, None)
    running = view.role(group) == "run"
    if view.serving.group == group:
        live_from = dict(view.serving.switch or {})
        # Serving from the start, a live processor needs no namespace (and keeps the duty it had
        # before the first live record, so that record does not restart it).
        return Duty(running, namespace if live_from or own_run else None, live_from)
    return Duty(running, namespace, None)


def switch_offsets(serving_stopped_at: Mapping[int, int], incoming_stopped_at: Mapping[int, int]) -> dict[int, int]:
    """Where the incoming run takes over: the serving run's stop point ``a``, which must reach ``b``.

    Raises :class:`RolloutError` when the serving run stopped short of the incoming one on some
    partition: the records between would then be written live by neither.
    """
    if not reached(serving_stopped_at, incoming_stopped_at):
        raise RolloutError("the serving run stopped before the incoming one: records between would never go live")
    partitions = set(serving_stopped_at) | set(incoming_stopped_at)
    return {p: serving_stopped_at.get(p, incoming_stopped_at.get(p, 0)) for p in sorted(partitions)}


def reached(committed: Mapping[int, int], target: Mapping[int, int]) -> bool:
    """Whether committed offsets are at or past ``target`` on every partition of ``target``."""
    return all(committed.get(partition, 0) >= offset for partition, offset in target.items())


def propose(view: LiveView, *, to_run: str, to_group: str, deadline: datetime) -> LiveState:
    """Step 1: the ``handover`` record (the incoming run stops). Raises :class:`RolloutError`."""
    if view.pending is not None:
        raise RolloutError(f"a hand-over to {view.pending.to_run!r} is in flight until {view.pending.deadline:%H:%M:%S}")
    if to_group == view.serving.group:
        raise RolloutError(f"run {to_run!r} already serves live")
    epoch = view.serving.epoch + 1
    return LiveState(current=view.serving, previous=view.previous,
                     pending=Handover(epoch=epoch, phase="handover", to_run=to_run, to_group=to_group,
                                      deadline=deadline))


def fence(state: LiveState) -> LiveState:
    """Step 2: the ``fence`` record (the serving run stops too)."""
    if state.pending is None or state.pending.phase != "handover":
        raise RolloutError("only a hand-over in its first phase can be fenced")
    return state.model_copy(update={"pending": state.pending.model_copy(update={"phase": "fence"})})


def decide(state: LiveState, decision: Serving) -> LiveState:
    """Step 3: the ``decided`` record (valid iff stamped by the deadline)."""
    pending = state.pending
    if pending is None or pending.phase != "fence":
        raise RolloutError("a hand-over is decided after its fence")
    if decision.group != pending.to_group or decision.epoch != pending.epoch or decision.switch is None:
        raise RolloutError("the decision serves the incoming run, from its switch offsets, in the hand-over's epoch")
    return state.model_copy(update={"pending": pending.model_copy(update={"phase": "decided", "decision": decision})})


def settle(view: LiveView) -> LiveState:
    """The plain record that restates what :func:`effective` made of a decided (or void) hand-over."""
    return LiveState(current=view.serving, previous=view.previous, pending=None)
