"""Settings of ``stockstream serve`` (one frozen class; env names declared here)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from processors.runtime.observability import register_secret
from processors.runtime.settings import (
    KafkaSettings,
    LoggingSettings,
    MetricsSettings,
    RedisSettings,
    comma_list,
    env,
)
from stockstream.api.oidc import OidcConfig


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` listens on loopback only (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything: not loopback


def _secure_url(url: str) -> bool:
    """``https://…``, or ``http://`` to a loopback host (a provider or dashboard on this machine)."""
    parts = urlsplit(url)
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(
        parts.hostname or "")))


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
    # Optional OpenID Connect (stockstream/api/oidc.py, docs/security.md): off unless the issuer is set.
    oidc_issuer: str | None = Field(None, validation_alias=env("API_OIDC_ISSUER"))
    oidc_audience: str | None = Field(None, validation_alias=env("API_OIDC_AUDIENCE"))
    oidc_client_id: str | None = Field(None, validation_alias=env("API_OIDC_CLIENT_ID"))
    oidc_client_secret: SecretStr | None = Field(None, validation_alias=env("API_OIDC_CLIENT_SECRET"))
    oidc_redirect_url: str | None = Field(None, validation_alias=env("API_OIDC_REDIRECT_URL"))
    oidc_scopes_claim: str = Field("scope", min_length=1, validation_alias=env("API_OIDC_SCOPES_CLAIM"))
    oidc_read_values: Annotated[frozenset[str], NoDecode] = Field(
        frozenset({"stockstream:read"}), validation_alias=env("API_OIDC_READ_VALUES"))
    oidc_admin_values: Annotated[frozenset[str], NoDecode] = Field(
        frozenset({"stockstream:admin"}), validation_alias=env("API_OIDC_ADMIN_VALUES"))
    oidc_request_scopes: str = Field("openid", pattern=r"(^|\s)openid(\s|$)",
                                     validation_alias=env("API_OIDC_REQUEST_SCOPES"))

    @field_validator("oidc_issuer", "oidc_audience", "oidc_client_id", "oidc_client_secret", "oidc_redirect_url",
                     mode="before")
    @classmethod
    def _empty_oidc_setting_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("oidc_read_values", "oidc_admin_values", mode="before")
    @classmethod
    def _split_values(cls, value: object) -> object:
        return comma_list(value)

    @model_validator(mode="after")
    def _oidc_is_complete(self) -> ApiSettings:
        if self.oidc_issuer is None:
            return self
        if not _secure_url(self.oidc_issuer):
            raise ValueError(f"API_OIDC_ISSUER must be an https:// URL (http:// only on loopback), not "
                             f"{self.oidc_issuer!r}")
        if self.oidc_redirect_url is not None and not _secure_url(self.oidc_redirect_url):
            raise ValueError("API_OIDC_REDIRECT_URL must be an https:// URL (http:// only on loopback)")
        if (self.oidc_client_id is None) != (self.oidc_redirect_url is None):
            raise ValueError("dashboard sign-in through the identity provider needs both API_OIDC_CLIENT_ID and "
                             "API_OIDC_REDIRECT_URL")
        if self.oidc_audience is None and self.oidc_client_id is None:
            raise ValueError("API_OIDC_ISSUER is set but nothing uses it: set API_OIDC_AUDIENCE (bearer tokens) "
                             "and/or API_OIDC_CLIENT_ID with API_OIDC_REDIRECT_URL (dashboard sign-in)")
        return self

    def oidc(self) -> OidcConfig | None:
        """The OIDC configuration, or ``None`` when ``API_OIDC_ISSUER`` is not set."""
        if self.oidc_issuer is None:
            return None
        return OidcConfig(
            issuer=self.oidc_issuer, audience=self.oidc_audience, client_id=self.oidc_client_id,
            client_secret=self.oidc_client_secret.get_secret_value() if self.oidc_client_secret else None,
            redirect_url=self.oidc_redirect_url, scopes_claim=self.oidc_scopes_claim,
            read_values=self.oidc_read_values, admin_values=self.oidc_admin_values,
            request_scopes=self.oidc_request_scopes)

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
        register_secret(self.oidc_client_secret.get_secret_value() if self.oidc_client_secret else None)
