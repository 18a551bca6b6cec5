"""The driver of ``stockstream strategy promote`` and ``rollback``: the hand-over protocol against Kafka.

The protocol itself is pure (``processors/core/rollout.py``); this module writes its records to
the ``live`` key of the runs topic and waits, between them, on what the processors do: a
stopped consumer group has no member, and its committed offsets are then where it stopped.

1. ``handover``: wait until the incoming group has no member; its committed offsets are ``b``;
2. wait until the serving group's committed offsets reach ``b``; ``fence``: wait until the
   serving group has no member; its committed offsets are ``a``;
3. ``decided`` (switch ``a``), then a plain record restating the outcome.

Committed offsets are read stable (``Kafka.committed``): a processor that stops commits its last
checkpoint in a transaction whose markers the broker writes just after, and a plain read in
between would take the checkpoint before it for ``a`` (records written live by both runs) or ``b``.

A step that cannot finish before the deadline makes the driver append a probe (every reader
then sees the hand-over void and the serving run resumes) and raise :class:`HandoverError`. A
decision the broker stamps after the deadline does not count either; the driver reads the stamp
back and says so. Killed at any point, the log still settles the same way for every processor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from processors.core.rollout import (
    LiveView,
    decide,
    effective,
    fence,
    propose,
    reached,
    settle,
    switch_offsets,
)
from processors.runtime.runs import RunLog
from processors.runtime.settings import KafkaSettings
from schemas.runs import LIVE_RUN_ID, LiveState, Namespace, Run, Serving, StrategyRef
from stockstream.replayer import Kafka, ReplayError

POLL_S = 0.25


class HandoverError(RuntimeError):
    """The hand-over did not happen (the serving run keeps serving); the message says why."""


@dataclass(frozen=True)
class Target:
    """The run that is to serve: its id, consumer group and strategy."""

    run_id: str
    group: str
    strategy: StrategyRef


def live_record(state: LiveState, code_version: str, prefix: str) -> Run:
    """The ``live`` record holding ``state`` (the live namespace described like a run)."""
    now = datetime.now(UTC)
    return Run(run_id=LIVE_RUN_ID, kind="live", state="serving", strategy=state.current.strategy,
               code_version=code_version, namespace=Namespace(topic_prefix=prefix), live=state,
               description="the live namespace", ts_event=now, ts_init=now)


class Handover:
    """One promote (or rollback) of ``target`` over the serving run of ``view``; :meth:`run` does it."""

    def __init__(self, settings: KafkaSettings, runs: RunLog, view: LiveView, target: Target, *,
                 timeout_s: float, code_version: str, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.runs = runs
        self.view = view
        self.target = target
        self.timeout_s = timeout_s
        self.code_version = code_version
        self.say = say
        self.topic = settings.topics().ticks.name
        self.kafka = Kafka(settings)

    def _publish(self, state: LiveState) -> datetime:
        _offset, stamp = self.runs.publish(live_record(state, self.code_version, self.settings.topic_prefix))
        return stamp

    def _committed(self, group: str, deadline: datetime) -> dict[int, int]:
        """The group's stable committed offsets (never a checkpoint's predecessor, ``Kafka.committed``)."""
        left = (deadline - datetime.now(UTC)).total_seconds()
        try:
            found = self.kafka.committed(group, self.topic, timeout_s=max(left, POLL_S))
        except ReplayError as error:
            self.runs.probe()  # past the deadline: every reader now sees the hand-over void
            raise HandoverError(f"{error}; {self.view.serving.run_id!r} still serves live") from None
        return {p: offset for (_topic, p), offset in found.items()}

    def _wait(self, deadline: datetime, what: str, done: Callable[[], bool]) -> None:
        while not done():
            if datetime.now(UTC) > deadline:
                self.runs.probe()  # every reader now sees the hand-over void: the serving run resumes
                raise HandoverError(f"timed out waiting for {what}; {self.view.serving.run_id!r} still serves live"
                                    " (raise --timeout, or check that both runs' processors are running)")
            time.sleep(POLL_S)

    def run(self) -> Serving:
        """Hand live over to the target; the new serving run. Raises :class:`HandoverError`."""
        serving = self.view.serving
        deadline = datetime.now(UTC) + timedelta(seconds=self.timeout_s)
        state = propose(self.view, to_run=self.target.run_id, to_group=self.target.group, deadline=deadline)
        self._publish(state)
        self.say(f"hand-over to {self.target.run_id!r}: waiting for its processors to stop at a checkpoint")
        self._wait(deadline, f"group {self.target.group!r} to stop", lambda: self.kafka.members(self.target.group) == 0)
        incoming = self._committed(self.target.group, deadline)
        if not incoming:
            self.runs.probe()
            raise HandoverError(f"group {self.target.group!r} has no committed offsets: is run"
                                f" {self.target.run_id!r} warmed up? {serving.run_id!r} still serves live")
        self.say(f"{self.target.run_id!r} stopped at {_offsets(incoming)}; waiting for {serving.run_id!r} to reach it")
        self._wait(deadline, f"group {serving.group!r} to reach {_offsets(incoming)}",
                   lambda: reached(self._committed(serving.group, deadline), incoming))
        state = fence(state)
        self._publish(state)
        self._wait(deadline, f"group {serving.group!r} to stop", lambda: self.kafka.members(serving.group) == 0)
        switch = switch_offsets(self._committed(serving.group, deadline), incoming)
        pending = state.pending
        if pending is None:  # pragma: no cover - fence() keeps it
            raise HandoverError("the hand-over lost its pending record")
        decision = Serving(run_id=self.target.run_id, group=self.target.group, strategy=self.target.strategy,
                           switch=switch, epoch=pending.epoch, since=datetime.now(UTC))
        state = decide(state, decision)
        stamp = self._publish(state)
        outcome = effective(state, stamp)
        if outcome.void:
            raise HandoverError(f"the decision was stamped {stamp:%H:%M:%S.%f} by the broker, after the deadline"
                                f" {deadline:%H:%M:%S.%f}: {serving.run_id!r} still serves live (raise --timeout)")
        self._publish(settle(outcome))
        return outcome.serving

    def close(self) -> None:
        self.kafka.close()


def _offsets(offsets: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(offsets.items()))
