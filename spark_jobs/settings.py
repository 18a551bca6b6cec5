"""The one settings class of the Spark jobs (``stockstream backfill`` / ``backtest``); env names live here.

Only the command entry points construct :class:`SparkJobSettings`; CLI flags are passed as
keyword arguments by field name and win over the environment and ``.env``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from spark_jobs.jars import DEFAULT_JARS_DIR
from stockstream.settings import KafkaSettings, LoggingSettings, RedisSettings, env


class SparkJobSettings(KafkaSettings, RedisSettings, LoggingSettings):
    """Where Spark runs and how the backfill reads the log (docs/spark.md has the table)."""

    spark_master: str = Field("local[*]", validation_alias=env("SPARK_MASTER"))
    spark_jars_dir: Path = Field(DEFAULT_JARS_DIR, validation_alias=env("STOCKSTREAM_SPARK_JARS"))
    spark_driver_memory: str = Field("4g", pattern=r"^[0-9]+[kmgt]?$", validation_alias=env("SPARK_DRIVER_MEMORY"))
    spark_executor_memory: str | None = Field(
        None, pattern=r"^[0-9]+[kmgt]?$", validation_alias=env("SPARK_EXECUTOR_MEMORY"))
    spark_local_dir: Path | None = Field(None, validation_alias=env("SPARK_LOCAL_DIRS"))
    strategy_file: Path | None = Field(None, validation_alias=env("STOCKSTREAM_STRATEGY"))
    grace_s: float = Field(5.0, ge=0, le=86_400, validation_alias=env("PROCESS_GRACE_SECONDS"))
    clock_skew_s: float = Field(
        300.0, ge=0, le=86_400 * 7, validation_alias=env("BACKFILL_CLOCK_SKEW_SECONDS"),
        description="how far a tick's Kafka record timestamp may lie before its event time",
    )

    @property
    def grace_ms(self) -> int:
        return round(self.grace_s * 1000)

    def register_secrets(self) -> None:
        from stockstream.observability import register_secret

        for secret in (self.sasl_password, self.redis_password):
            if secret is not None:
                register_secret(secret.get_secret_value())
