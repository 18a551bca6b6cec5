"""Settings of ``stockstream serve`` (one frozen class; env names declared here)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from processors.runtime.observability import register_secret
from processors.runtime.settings import KafkaSettings, LoggingSettings, MetricsSettings, RedisSettings, env


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` listens on loopback only (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything: not loopback


class ApiSettings(KafkaSettings, RedisSettings, MetricsSettings, LoggingSettings):
    """The API reads Redis views and API keys (and pings Kafka for ``/health``); ``/metrics`` is on METRICS_PORT."""

    api_host: str = Field("127.0.0.1", validation_alias=env("API_HOST"))
    api_port: int = Field(8000, ge=1, le=65535, validation_alias=env("API_PORT"))
    metrics_port: int = Field(9105, ge=0, le=65535, validation_alias=env("METRICS_PORT"))
    api_auth: Literal["auto", "on", "off"] = Field("auto", validation_alias=env("API_AUTH"))
    api_keys_prefix: str = Field("ssauth:", pattern=r"^[A-Za-z0-9_.:-]{1,32}$",
                                 validation_alias=env("API_KEYS_PREFIX"))
    session_secret: SecretStr | None = Field(None, validation_alias=env("API_SESSION_SECRET"))
    session_hours: float = Field(12.0, gt=0, le=24 * 30, validation_alias=env("API_SESSION_HOURS"))
    rate_per_ip: float = Field(50.0, ge=0, validation_alias=env("API_RATE_PER_IP"))
    rate_per_key: float = Field(25.0, ge=0, validation_alias=env("API_RATE_PER_KEY"))
    rate_burst: int = Field(200, ge=1, le=100_000, validation_alias=env("API_RATE_BURST"))
    max_body_bytes: int = Field(8192, ge=256, le=1_048_576, validation_alias=env("API_MAX_BODY_BYTES"))
    live_queue_max: int = Field(1000, ge=10, le=100_000, validation_alias=env("API_LIVE_QUEUE_MAX"))
    live_ping_s: float = Field(15.0, gt=0, le=300, validation_alias=env("API_LIVE_PING_SECONDS"))
    live_max_clients: int = Field(200, ge=1, le=10_000, validation_alias=env("API_LIVE_MAX_CLIENTS"))
    live_max_per_client: int = Field(4, ge=1, le=1000, validation_alias=env("API_LIVE_MAX_PER_CLIENT"))
    live_send_timeout_s: float = Field(10.0, gt=0, le=300, validation_alias=env("API_LIVE_SEND_TIMEOUT_SECONDS"))
    health_timeout_s: float = Field(2.0, gt=0, le=30, validation_alias=env("API_HEALTH_TIMEOUT_SECONDS"))
    # /instruments calls an instrument "stale" when its last tick was ingested longer ago than this.
    instrument_stale_s: float = Field(120.0, gt=0, le=7 * 86_400, validation_alias=env("API_INSTRUMENT_STALE_SECONDS"))
    redis_socket_timeout_s: float = Field(5.0, gt=0, validation_alias=env("REDIS_SOCKET_TIMEOUT_SECONDS"))
    # /recommendation without ?strategy= answers for this strategy (None: the latest signal of any).
    recommendation_strategy: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$",
                                                validation_alias=env("RECOMMENDATION_STRATEGY"))
    # Older history than the views hold: the Parquet root `stockstream backfill` writes (its --output).
    history_path: Path | None = Field(Path("backfill"), validation_alias=env("HISTORY_PATH"))

    @model_validator(mode="after")
    def _never_open_beyond_loopback(self) -> ApiSettings:
        if self.api_auth == "off" and not is_loopback(self.api_host):
            raise ValueError(f"API_AUTH=off is allowed only when bound to loopback, not {self.api_host!r}: "
                             "create a key with `stockstream apikey create` and leave API_AUTH on")
        return self

    @property
    def auth_enabled(self) -> bool:
        """Keys required: ``API_AUTH=on``, or ``auto`` (the default) on any address but loopback."""
        return self.api_auth == "on" or (self.api_auth == "auto" and not is_loopback(self.api_host))

    @property
    def timeframes(self) -> list[str]:
        """``tick`` plus the configured candle timeframes (``STOCKSTREAM_TIMEFRAMES``)."""
        return ["tick", *self.candle_timeframes]

    def register_secrets(self) -> None:
        register_secret(self.redis_password.get_secret_value() if self.redis_password else None)
        register_secret(self.sasl_password.get_secret_value() if self.sasl_password else None)
        register_secret(self.session_secret.get_secret_value() if self.session_secret else None)
