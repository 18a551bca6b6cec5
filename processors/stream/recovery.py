"""State-recovery progress from Quix's recovery log, as metrics.

Quix Streams 3.x has no recovery callback; its ``RecoveryManager`` reports the phase on the
``quixstreams.state.recovery`` logger ("Beginning recovery check...", "Recovery progress for
<RecoveryPartition "changelog…[p]">: done / highwater" every 10 s, "Recovery successful for
…", "Recovery process complete!…"). :class:`RecoveryWatcher` is a logging handler on that
logger that turns those lines into the ``stockstream_process_state_recover*`` metrics. If a
future Quix words them differently the metrics stay flat but processing is unaffected.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from processors.runtime.observability import HEALTH, Health
from processors.stream.metrics import ProcessMetrics

RECOVERY_LOGGER = "quixstreams.state.recovery"
_PARTITION = re.compile(r'<RecoveryPartition "(?P<changelog>[^"]*)\[(?P<partition>\d+)\]">')
_PROGRESS = re.compile(r"Recovery progress for .*: (?P<done>-?\d+) / (?P<high>\d+)\s*$")


class RecoveryWatcher(logging.Handler):
    """Watches the recovery log lines; ``monotonic`` is injectable for tests."""

    def __init__(self, metrics: ProcessMetrics, monotonic: Callable[[], float] = time.monotonic,
                 health: Health = HEALTH) -> None:
        super().__init__(logging.DEBUG)
        self.metrics = metrics
        self.health = health
        self.monotonic = monotonic
        self.started: float | None = None
        self.partitions: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._observe(record.getMessage())
        except Exception:  # noqa: BLE001 - metrics must never break logging or processing
            self.handleError(record)

    def _observe(self, message: str) -> None:
        metrics = self.metrics
        if message.startswith("Beginning recovery check"):
            self.started = self.monotonic()
            metrics.recovering.set(1)
            metrics.recoveries.inc()
            self.health.problem("recovery", "restoring state from the changelog; input processing paused")
        elif message.startswith("Recovery process complete"):
            if self.started is not None:
                metrics.recovery_seconds.set(self.monotonic() - self.started)
            self.started = None
            metrics.recovering.set(0)
            self.health.clear("recovery")
            for partition in self.partitions:
                metrics.recovery_remaining.labels(partition).set(0)
        elif message.startswith("Recovery progress for"):
            where, progress = _PARTITION.search(message), _PROGRESS.search(message)
            if where and progress:
                partition = where.group("partition")
                remaining = max(0, int(progress.group("high")) - int(progress.group("done")) - 1)
                metrics.recovery_remaining.labels(partition).set(remaining)
                self.partitions.add(partition)
        elif message.startswith("Recovery successful for"):
            where = _PARTITION.search(message)
            metrics.recovered_partitions.inc()
            if where:
                metrics.recovery_remaining.labels(where.group("partition")).set(0)
                self.partitions.add(where.group("partition"))


def watch_recovery(metrics: ProcessMetrics) -> RecoveryWatcher:
    """Attach a :class:`RecoveryWatcher` to Quix's recovery logger (INFO, so its lines are made)."""
    watcher = RecoveryWatcher(metrics)
    logger = logging.getLogger(RECOVERY_LOGGER)
    logger.addHandler(watcher)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return watcher
