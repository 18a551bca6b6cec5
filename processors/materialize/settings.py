"""Settings of ``stockstream materialize`` and ``stockstream views rebuild`` (one frozen class, env names here)."""

from __future__ import annotations

from datetime import timedelta

import redis
from pydantic import Field

from processors.materialize.keys import ViewKeys
from processors.materialize.planner import Caps, InputTopics
from processors.runtime.observability import register_secret
from processors.runtime.settings import (
    InstrumentLimitSettings,
    KafkaSettings,
    LoggingSettings,
    MetricsSettings,
    RedisSettings,
    env,
)
from schemas.runs import run_redis_prefix
from schemas.topics import TopicSpec


class MaterializeSettings(KafkaSettings, InstrumentLimitSettings, RedisSettings, MetricsSettings, LoggingSettings):
    """Everything the materializer reads from the environment."""

    metrics_port: int = Field(9103, ge=0, le=65535, validation_alias=env("METRICS_PORT"))
    consumer_group: str | None = Field(
        None, validation_alias=env("MATERIALIZE_CONSUMER_GROUP"),
        description="Kafka consumer group; default '<STOCKSTREAM_TOPIC_PREFIX>stockstream-materialize'",
    )
    instance_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]{1,100}$", validation_alias=env("MATERIALIZE_INSTANCE_ID"),
        description="Kafka static membership (group.instance.id): a stable name per instance (e.g. the StatefulSet"
                    " pod name) lets a restarted instance take its partitions back at once instead of after the"
                    " dead member's session timeout (45 s); unset = dynamic membership",
    )
    batch_max_records: int = Field(2000, ge=1, le=100_000, validation_alias=env("MATERIALIZE_BATCH_MAX"))
    batch_timeout_s: float = Field(0.2, gt=0, le=10, validation_alias=env("MATERIALIZE_BATCH_TIMEOUT_SECONDS"))
    retry_max_backoff_s: float = Field(5.0, gt=0, le=300, validation_alias=env("MATERIALIZE_RETRY_MAX_SECONDS"))
    candles_max: int = Field(1000, ge=1, le=100_000, validation_alias=env("VIEWS_CANDLES_MAX"))
    indicator_history_max: int = Field(1000, ge=1, le=100_000, validation_alias=env("VIEWS_INDICATOR_HISTORY_MAX"))
    signals_max: int = Field(500, ge=1, le=100_000, validation_alias=env("VIEWS_SIGNALS_MAX"))
    outcomes_max: int = Field(2000, ge=1, le=100_000, validation_alias=env("VIEWS_OUTCOMES_MAX"),
                              description="signal outcomes kept per instrument (newest signals): the scorecards'"
                                          " scope in the API and dashboard")
    recommendation_decay_s: float = Field(900.0, gt=0, validation_alias=env("RECOMMENDATION_DECAY_SECONDS"))
    redis_socket_timeout_s: float = Field(5.0, gt=0, validation_alias=env("REDIS_SOCKET_TIMEOUT_SECONDS"))

    @property
    def group_id(self) -> str:
        return self.consumer_group or self.default_group("materialize")

    def caps(self) -> Caps:
        return Caps(candles=self.candles_max, indicator_history=self.indicator_history_max,
                    signals=self.signals_max, recommendation_decay=timedelta(seconds=self.recommendation_decay_s),
                    outcomes=self.outcomes_max)

    def input_topics(self) -> InputTopics:
        return InputTopics.from_registry(self.topics())

    def dead_letter_topic(self) -> TopicSpec:
        """``views.dlq``: records the materializer refused."""
        return self.topics().views_dlq

    @property
    def view_prefix(self) -> str:
        """The Redis key prefix of the views written: ``REDIS_KEY_PREFIX``, or a run's ``<it>run:<id>:``."""
        return run_redis_prefix(self.redis_key_prefix, self.run_id)

    def view_keys(self, prefix: str | None = None) -> ViewKeys:
        return ViewKeys(self.view_prefix if prefix is None else prefix)

    def register_secrets(self) -> None:
        register_secret(self.redis_password.get_secret_value() if self.redis_password else None)
        register_secret(self.sasl_password.get_secret_value() if self.sasl_password else None)


def redis_client(settings: RedisSettings, socket_timeout_s: float = 5.0) -> redis.Redis:
    """A Redis client from ``REDIS_URL`` plus AUTH/TLS settings; connects lazily (no I/O here)."""
    url, kwargs = settings.redis_connection()
    return redis.Redis.from_url(url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s,
                                health_check_interval=30, **kwargs)
