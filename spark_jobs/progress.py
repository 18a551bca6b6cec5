"""A rich progress bar fed from Spark's status tracker (tasks done / tasks known, per step of a job).

Each step of a command runs its Spark actions inside :meth:`SparkProgress.step`, which tags
them with a job group; a background thread polls ``statusTracker()`` for that group's
stages four times a second. Without a terminal (or with ``enabled=False``) nothing is drawn
and each finished step is logged as one line.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

log = logging.getLogger(__name__)


class SparkProgress:
    """Progress of the Spark actions of one command. Use as a context manager around the whole command."""

    def __init__(self, spark: SparkSession, console: Console | None = None, enabled: bool = True) -> None:
        self.spark = spark
        self.console = console or Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.timings: dict[str, float] = {}
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("tasks"), TimeElapsedColumn(), console=self.console, transient=False,
            disable=not self.enabled,
        )

    def __enter__(self) -> SparkProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)  # type: ignore[arg-type]

    def _counts(self, group: str) -> tuple[int, int]:
        tracker = self.spark.sparkContext.statusTracker()
        total = done = 0
        for job_id in tracker.getJobIdsForGroup(group):
            job = tracker.getJobInfo(job_id)
            if job is None:
                continue
            for stage_id in job.stageIds:
                stage = tracker.getStageInfo(stage_id)
                if stage is not None and (stage.numCompletedTasks or stage.numActiveTasks):
                    total += stage.numTasks
                    done += stage.numCompletedTasks
        return done, total

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        """Run the Spark actions of one step under a progress line named ``description``."""
        context = self.spark.sparkContext
        group = f"stockstream-{uuid.uuid4().hex[:12]}"
        context.setJobGroup(group, description, interruptOnCancel=True)
        task = self._progress.add_task(description, total=None)
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(0.25):
                try:
                    done, total = self._counts(group)
                except Exception:  # noqa: BLE001,S112 - the tracker is best effort; never break the job
                    continue
                if total:
                    self._progress.update(task, completed=done, total=total)

        watcher = threading.Thread(target=poll, name="spark-progress", daemon=True)
        started = time.perf_counter()
        if self.enabled:
            watcher.start()
        try:
            yield
        finally:
            stop.set()
            if self.enabled:
                watcher.join()
            elapsed = time.perf_counter() - started
            self.timings[description] = self.timings.get(description, 0.0) + elapsed
            done, total = self._counts(group)
            self._progress.update(task, completed=max(done, total), total=max(total, 1))
            context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
            if not self.enabled:
                log.info("%s: %.1fs (%d tasks)", description, elapsed, total)
