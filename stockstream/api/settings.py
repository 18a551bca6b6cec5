"""Settings of ``stockstream serve`` (one frozen class; env names declared here)."""

from __future__ import annotations

from pydantic import Field

from processors.runtime.observability import register_secret
from processors.runtime.settings import KafkaSettings, LoggingSettings, RedisSettings, env


class ApiSettings(KafkaSettings, RedisSettings, LoggingSettings):
    """The API reads Redis views (and pings Kafka for ``/health``); its ``/metrics`` is on its own port."""

    api_host: str = Field("127.0.0.1", validation_alias=env("API_HOST"))
    api_port: int = Field(8000, ge=1, le=65535, validation_alias=env("API_PORT"))
    live_queue_max: int = Field(1000, ge=10, le=100_000, validation_alias=env("API_LIVE_QUEUE_MAX"))
    live_ping_s: float = Field(15.0, gt=0, le=300, validation_alias=env("API_LIVE_PING_SECONDS"))
    live_max_clients: int = Field(200, ge=1, le=10_000, validation_alias=env("API_LIVE_MAX_CLIENTS"))
    health_timeout_s: float = Field(2.0, gt=0, le=30, validation_alias=env("API_HEALTH_TIMEOUT_SECONDS"))
    # /instruments calls an instrument "stale" when its last tick was ingested longer ago than this.
    instrument_stale_s: float = Field(120.0, gt=0, le=7 * 86_400, validation_alias=env("API_INSTRUMENT_STALE_SECONDS"))
    redis_socket_timeout_s: float = Field(5.0, gt=0, validation_alias=env("REDIS_SOCKET_TIMEOUT_SECONDS"))

    @property
    def timeframes(self) -> list[str]:
        """``tick`` plus the configured candle timeframes (``STOCKSTREAM_TIMEFRAMES``)."""
        return ["tick", *self.candle_timeframes]

    def register_secrets(self) -> None:
        register_secret(self.redis_password.get_secret_value() if self.redis_password else None)
        register_secret(self.sasl_password.get_secret_value() if self.sasl_password else None)
