"""Strategy rollout decided by the log: who writes the live outputs, and how a hand-over is settled.

The ``live`` record of the ``runs`` topic (:class:`schemas.runs.LiveState`) names the run that
serves the live outputs (its consumer group, strategy, and the input offsets from which it writes
live). ``stockstream strategy promote`` hands live over to a warm shadow run in three records, all
under the key ``live`` of the one-partition ``runs`` topic:

1. ``handover`` — the incoming run's processors stop at a checkpoint (its committed offsets ``b``);
   the serving run keeps going until its committed offsets reach ``b``;
2. ``fence`` — the serving run's processors stop at a checkpoint (its committed offsets ``a ≥ b``);
3. ``decided`` — the incoming run serves from ``switch = a``: it resumes from ``b``, writes the
   records before ``a`` to its own namespace and those from ``a`` on to the live topics. Nothing
   older than ``a`` reaches live from it, and the old run wrote live exactly the records before ``a``.

The decision counts only if its record's **broker timestamp** (the topic has
``message.timestamp.type=LogAppendTime``) is at or before the hand-over's deadline. Every reader
applies :func:`effective` to the same record and gets the same answer, so there is never a mix:
a promote killed at any point leaves either no valid decision (after the deadline the old run
resumes, the shadow too) or one (the new run serves). A waiting process knows the deadline passed
without a decision when a record it appended itself after the deadline (a probe) comes back with a
timestamp past it and no valid decision came before it (:func:`settled_by_probe`): timestamps only
grow along the partition, so a decision written later could not be valid either.

Pure: no clock, no Kafka. The processor (``processors/stream/control.py``) and the CLI
(``stockstream strategy``) call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas.runs import Handover, LiveState, Serving

Role = Literal["run", "wait"]
"""What a processor of one consumer group does under a live state: process, or stop and wait."""


@dataclass(frozen=True)
class LiveView:
    """The live state as a reader must act on it: who serves, what hand-over is in flight.

    ``void`` marks a decision that came after its deadline (the hand-over did not happen).
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

    def serves(self, group: str) -> bool:
        return self.serving.group == group


def effective(state: LiveState, record_time: datetime) -> LiveView:
    """What a ``live`` record written at broker time ``record_time`` means (see the module docstring)."""
    pending = state.pending
    if pending is None:
        return LiveView(state.current, state.previous, None)
    if pending.phase == "decided":
        assert pending.decision is not None  # noqa: S101 - the model guarantees it
        if record_time <= pending.deadline:
            return LiveView(pending.decision, state.current, None)
        return LiveView(state.current, state.previous, None, void=True)
    return LiveView(state.current, state.previous, pending)


def settled_by_probe(pending: Handover, probe_time: datetime) -> bool:
    """True when a probe appended after ``pending`` (with no valid decision in between) proves it void."""
    return probe_time > pending.deadline


def switch_offsets(serving_stopped_at: Mapping[int, int], incoming_stopped_at: Mapping[int, int]) -> dict[int, int]:
    """Where the incoming run takes over: per partition the later of the two stop points.

    The protocol lets the serving run reach the incoming run's offsets before it is fenced, so
    this is the serving run's position; the maximum keeps the rule total for any input.
    """
    partitions = set(serving_stopped_at) | set(incoming_stopped_at)
    return {p: max(serving_stopped_at.get(p, 0), incoming_stopped_at.get(p, 0)) for p in sorted(partitions)}


def reached(committed: Mapping[int, int], target: Mapping[int, int]) -> bool:
    """Whether committed offsets are at or past ``target`` on every partition of ``target``."""
    return all(committed.get(partition, 0) >= offset for partition, offset in target.items())


def propose(state: LiveState, *, epoch: int, to_run: str, to_group: str, deadline: datetime) -> LiveState:
    """Step 1: the ``handover`` record (the incoming run stops)."""
    return LiveState(current=state.current, previous=state.previous,
                     pending=Handover(epoch=epoch, phase="handover", to_run=to_run, to_group=to_group,
                                      deadline=deadline))


def fence(state: LiveState) -> LiveState:
    """Step 2: the ``fence`` record (the serving run stops too)."""
    if state.pending is None or state.pending.phase != "handover":
        raise ValueError("only a hand-over in its first phase can be fenced")
    return LiveState(current=state.current, previous=state.previous,
                     pending=state.pending.model_copy(update={"phase": "fence"}))


def decide(state: LiveState, decision: Serving) -> LiveState:
    """Step 3: the ``decided`` record (valid iff written by the deadline)."""
    if state.pending is None or state.pending.phase != "fence":
        raise ValueError("a hand-over is decided after its fence")
    return LiveState(current=state.current, previous=state.previous,
                     pending=state.pending.model_copy(update={"phase": "decided", "decision": decision}))


def settle(view: LiveView) -> LiveState:
    """The plain record that restates what :func:`effective` made of a decided (or void) hand-over."""
    return LiveState(current=view.serving, previous=view.previous, pending=None)
