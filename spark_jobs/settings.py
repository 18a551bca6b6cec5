"""The one settings class of the Spark jobs (``stockstream backfill`` / ``backtest``); env names live here.

Only the command entry points construct :class:`SparkJobSettings`; CLI flags are passed as
keyword arguments by field name and win over the environment and ``.env``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from processors.runtime.settings import (
    InstrumentLimitSettings,
    KafkaSettings,
    LoggingSettings,
    RedisSettings,
    ScorecardSettings,
    env,
)
from spark_jobs.jars import DEFAULT_JARS_DIR


class SparkJobSettings(KafkaSettings, InstrumentLimitSettings, ScorecardSettings, RedisSettings, LoggingSettings):
    """Where Spark runs and how the backfill reads the log (docs/spark.md has the table).

    The strategy, timeframes, grace, scorecard horizons and fee and the instrument limit are the live
    processor's own variables: a backfill equals the processor only when they are the same.
    """

    spark_master: str = Field("local[*]", validation_alias=env("SPARK_MASTER"))
    spark_jars_dir: Path = Field(DEFAULT_JARS_DIR, validation_alias=env("STOCKSTREAM_SPARK_JARS"))
    spark_driver_memory: str = Field("4g", pattern=r"^[0-9]+[kmgt]?$", validation_alias=env("SPARK_DRIVER_MEMORY"))
    spark_executor_memory: str | None = Field(
        None, pattern=r"^[0-9]+[kmgt]?$", validation_alias=env("SPARK_EXECUTOR_MEMORY"))
    spark_executor_memory_overhead: str | None = Field(
        None, pattern=r"^[0-9]+[kmgt]?$", validation_alias=env("SPARK_EXECUTOR_MEMORY_OVERHEAD"),
        description="spark.executor.memoryOverhead: the executor's memory beyond its heap (JVM non-heap,"
                    " Arrow buffers, the Python workers); Spark's default is 10 % of the heap, at least 384m",
    )
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

    def kafka_options(self) -> dict[str, str]:
        """Java Kafka client options (``kafka.``-prefixed) equivalent to ``self.client_config()``."""
        options = {"kafka.bootstrap.servers": self.bootstrap_servers,
                   "kafka.security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            options["kafka.sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username and self.sasl_password is not None:
            module = ("org.apache.kafka.common.security.scram.ScramLoginModule"
                      if (self.sasl_mechanism or "").upper().startswith("SCRAM")
                      else "org.apache.kafka.common.security.plain.PlainLoginModule")
            options["kafka.sasl.jaas.config"] = (
                f'{module} required username={json.dumps(self.sasl_username)}'
                f' password={json.dumps(self.sasl_password.get_secret_value())};')
        if self.ssl_ca_location:
            options["kafka.ssl.truststore.type"] = "PEM"
            options["kafka.ssl.truststore.location"] = self.ssl_ca_location
        return options

    def register_secrets(self) -> None:
        from processors.runtime.observability import register_secret

        for secret in (self.sasl_password, self.redis_password):
            if secret is not None:
                register_secret(secret.get_secret_value())
