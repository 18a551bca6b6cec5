"""The processor's live duty, kept in step with the ``live`` record of the runs topic.

``stockstream process`` asks :class:`LiveControl` what it may do before it starts its Quix
application, and again every time the application stops because the duty changed:

- **wait** (a hand-over in flight stopped this consumer group, or a live processor the ``live``
  record does not name): the application is not running, so the group has no member and its
  committed offsets are where ``stockstream strategy promote`` reads them. A hand-over whose
  deadline this host's clock says has passed is settled by appending a probe to the runs topic
  (the log, not the clock, decides: ``processors/core/rollout.py``);
- **run** with a :class:`~processors.core.rollout.Duty`: which run's namespace gets the outputs
  and from which input offsets on the outputs go to the live topics instead.

While the application runs, a monitor thread compares the duty the log gives now with the one the
application was built for and stops the application (a graceful stop: the checkpoint is committed,
the group left) as soon as they differ; the service then builds it again for the new duty.
Without a ``live`` record the duty of a live processor is to serve live from the start, as before
rollouts existed, so a deployment that never promoted behaves exactly as it did.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from processors.core.rollout import Duty, duty
from processors.runtime.runs import RunLog, RunWatcher
from processors.runtime.settings import KafkaSettings
from schemas.topics import TopicRegistry

log = logging.getLogger(__name__)

PROBE_EVERY_S = 1.0
MONITOR_EVERY_S = 0.2


def utc_now() -> datetime:
    return datetime.now(UTC)


class LiveControl:
    """One processor's view of the ``live`` record; see the module docstring. Start, then use, then close."""

    def __init__(self, settings: KafkaSettings, group: str, now: Callable[[], datetime] = utc_now) -> None:
        self.group = group
        self.own_run = settings.run_id
        self.registry = settings.topics()
        self.now = now
        self.log = RunLog(settings)
        self._watcher: RunWatcher | None = None
        self.restart = False
        self._active: Duty | None = None
        self._stop_app: Callable[[], None] | None = None
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="live-duty", daemon=True)

    def start(self, timeout_s: float = 60.0) -> None:
        """Read the runs topic to its end and follow it. Raises ``RunLogError``."""
        self.log.ensure()
        self._watcher = RunWatcher(self.log)
        self._watcher.start(timeout_s)
        self._monitor.start()

    @property
    def watcher(self) -> RunWatcher:
        if self._watcher is None:
            raise RuntimeError("LiveControl.start() first")
        return self._watcher

    def duty(self) -> Duty:
        if self.watcher.error is not None:
            raise self.watcher.error
        return duty(self.watcher.snapshot.live_view(), self.group, self.own_run)

    def own_registry(self, current: Duty) -> TopicRegistry:
        """The topics this processor writes when not live: its run's, or the namespace the record gives it."""
        if self.registry.run_id is not None or current.namespace is None:
            return self.registry
        return self.registry.for_run(current.namespace)

    def wait_to_run(self, stopping: threading.Event) -> Duty | None:
        """Block while the duty is to wait; the duty to run with, or None once ``stopping`` is set."""
        told = False
        last_probe = 0.0
        while not stopping.is_set():
            current = self.duty()
            if current.run:
                if told:
                    log.info("group %s resumes: %s", self.group, _describe(current))
                return current
            if not told:
                told = True
                view = self.watcher.snapshot.live_view()
                if view is not None and view.pending is not None:
                    log.info("group %s waits: hand-over to run %r in flight (deadline %s)", self.group,
                             view.pending.to_run, view.pending.deadline.isoformat())
                else:
                    log.warning("group %s waits: the live record does not name it (another group serves live);"
                                " stop this processor, or deploy its strategy with `stockstream strategy deploy`",
                                self.group)
            view = self.watcher.snapshot.live_view()
            pending = None if view is None else view.pending
            if pending is not None and self.now() > pending.deadline and time.monotonic() - last_probe > PROBE_EVERY_S:
                last_probe = time.monotonic()
                self.log.probe()
            self.watcher.wait_change(0.5)
        return None

    def still(self, active: Duty, timeout_s: float = 30.0) -> bool:
        """Whether ``active`` is still the duty once the runs topic is read to its end *now*.

        Called on the first record an application processes, i.e. after it joined its group: a
        promote that saw the group without members (and took its committed offsets as where it
        stopped) had appended its record before that, so this read sees it. False: process nothing.
        """
        if not self.watcher.sync(timeout_s):
            return False
        return self.duty() == active

    def engage(self, active: Duty, stop_app: Callable[[], None], stopping: threading.Event) -> None:
        """The application built for ``active`` is about to run; ``stop_app`` stops it gracefully.

        ``stopping`` is the service's own signal flag: a SIGTERM that came after the service last
        looked at it but before Quix installed its handlers stops the application too.
        """
        self.restart = False
        self._stopping = stopping
        self._stop_app = stop_app
        self._active = active

    def disengage(self) -> None:
        self._active = None
        self._stop_app = None

    def _watch(self) -> None:
        # A stop asked before Quix's run loop started is forgotten by it, so keep asking while they differ.
        while not self._closed.wait(MONITOR_EVERY_S):
            active, stop_app = self._active, self._stop_app
            if active is None or stop_app is None:
                continue
            if self._stopping.is_set():
                stop_app()
                continue
            try:
                current = self.duty()
            except Exception:  # noqa: BLE001 - a broken watcher stops the application; run() reports it
                current = None
            if current != active:
                if not self.restart:
                    log.info("group %s: the live record changed its duty; stopping at a checkpoint", self.group)
                self.restart = True
                stop_app()

    def close(self) -> None:
        self._closed.set()
        if self._monitor.is_alive():
            self._monitor.join(5)
        if self._watcher is not None:
            self._watcher.close()
        self.log.close()


def _describe(current: Duty) -> str:
    if current.live_from is None:
        return f"outputs to run {current.namespace!r}"
    switch = ",".join(f"{p}:{o}" for p, o in sorted(current.live_from.items())) or "the start"
    return f"outputs live from {switch}" + (f", earlier ones to run {current.namespace!r}" if current.namespace else "")
