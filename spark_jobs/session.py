"""Builds the SparkSession of a job: master URL, the cached Kafka jars, the venv's Python, UTC.

Called once per command by the entry point (tests keep one session for the whole run).
``PYSPARK_PYTHON`` is set to this interpreter so Python workers import the project's
packages; a cluster master (``spark://…``, ``k8s://…``) needs the same image or venv on
its workers (docs/spark.md).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from pyspark.sql import SparkSession

from spark_jobs.jars import spark_jars
from spark_jobs.settings import SparkJobSettings


def _local_cores(master: str) -> int | None:
    """Cores of a ``local``/``local[N]``/``local[*]`` master; None for a cluster master."""
    if master == "local":
        return 1
    if master.startswith("local["):
        inside = master[len("local["):].split("]")[0].split(",")[0]
        return os.cpu_count() or 2 if inside == "*" else int(inside)
    return None


@dataclass(frozen=True)
class StartedSession:
    spark: SparkSession
    startup_s: float  # wall time to a usable session (JVM start, jars, first context)
    owned: bool = True  # False when an active session was reused (an embedding caller owns it)

    def stop(self) -> None:
        """Stop the session if this call started it (a reused session is left to its owner)."""
        if self.owned:
            self.spark.stop()


def build_session(settings: SparkJobSettings, app_name: str = "stockstream") -> StartedSession:
    """Start the SparkSession for ``settings.spark_master``, or reuse the active one (tests, notebooks).

    Raises :class:`spark_jobs.jars.SparkJarsError` when the Kafka jars are not cached.
    """
    jars = spark_jars(settings.spark_jars_dir)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # a local run never needs the host's address
    started = time.perf_counter()
    active = SparkSession.getActiveSession()
    if active is not None:
        return StartedSession(active, 0.0, owned=False)
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.jars", ",".join(str(jar) for jar in jars))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.ui.enabled", "false")
        # The backfill balances its groups itself (largest first, one per task).
        .config("spark.sql.adaptive.coalescePartitions.enabled", "false")
        .config("spark.python.worker.reuse", "true")
        .config("spark.executorEnv.PYSPARK_PYTHON", os.environ["PYSPARK_PYTHON"])
    )
    cores = _local_cores(settings.spark_master)
    if cores is not None:
        # 200 shuffle partitions (the default) cost more in task overhead than the small
        # aggregations of a backfill are worth on a few local cores.
        builder = builder.config("spark.sql.shuffle.partitions", str(max(4, 2 * cores)))
    if settings.spark_executor_memory:
        builder = builder.config("spark.executor.memory", settings.spark_executor_memory)
    if settings.spark_executor_memory_overhead:
        builder = builder.config("spark.executor.memoryOverhead", settings.spark_executor_memory_overhead)
    if settings.spark_local_dir is not None:
        builder = builder.config("spark.local.dir", str(settings.spark_local_dir))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return StartedSession(spark, time.perf_counter() - started)
