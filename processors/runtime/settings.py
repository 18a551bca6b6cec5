"""Settings shared by every service: Kafka connection, topic layout, Redis, logging.

One frozen pydantic-settings class per concern; each service's own settings class
inherits from the ones it needs. Every field names its environment variable
explicitly (``validation_alias``) so the names live here and nowhere else; the
original brief's names are kept (``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_TOPIC``,
``MESSAGE_INTERVAL``). Only entry points construct settings (``Settings()`` reads
the environment and ``.env``); library code receives them as arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from processors.core.admission import DEFAULT_MAX_INSTRUMENTS, InstrumentPolicy
from processors.core.outcomes import horizon_ms
from processors.core.strategies.file import parse_duration
from schemas.runs import RUN_ID_PATTERN, check_run_id
from schemas.timeframes import validate_timeframe
from schemas.topics import TopicRegistry, run_group


def env(name: str, *aliases: str) -> Any:
    """The environment variable(s) a field is read from; the field name also works in code."""
    return AliasChoices(name, *aliases)


def comma_list(value: object) -> object:
    """A setting given as one comma-separated string (``"a, b,,c"``) as ``("a", "b", "c")``; other values as they are.

    For ``mode="before"`` validators of tuple/frozenset settings read from the environment or the CLI.
    """
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class ServiceSettings(BaseSettings):
    """Base for every settings class: frozen, ``.env`` aware, unknown env vars ignored."""

    model_config = SettingsConfigDict(
        frozen=True, env_file=".env", extra="ignore", populate_by_name=True
    )


def secret_from_file(path: Path, variable: str, given: SecretStr | None) -> SecretStr:
    """The secret in ``path`` (``<variable>_FILE``), stripped; refuses it beside ``<variable>``, unreadable or empty."""
    if given is not None:
        raise ValueError(f"set {variable} or {variable}_FILE, not both")
    try:
        secret = path.read_text().strip()
    except OSError as error:
        raise ValueError(f"{variable}_FILE: cannot read {path} ({error.strerror})") from None
    if not secret:
        raise ValueError(f"{variable}_FILE: {path} is empty")
    return SecretStr(secret)


class KafkaSettings(ServiceSettings):
    """How to reach Kafka and how the topics of this deployment are named and laid out."""

    bootstrap_servers: str = Field("127.0.0.1:9092", validation_alias=env("KAFKA_BOOTSTRAP_SERVERS"))
    ticks_topic: str = Field("ticks", validation_alias=env("KAFKA_TOPIC"))
    topic_prefix: str = Field("", validation_alias=env("STOCKSTREAM_TOPIC_PREFIX"))
    partitions: int = Field(4, ge=1, le=1024, validation_alias=env("STOCKSTREAM_PARTITIONS"))
    replication_factor: int = Field(1, ge=1, le=7, validation_alias=env("KAFKA_REPLICATION_FACTOR"))
    candle_timeframes: Annotated[tuple[str, ...], NoDecode] = Field(("1m",), validation_alias=env("STOCKSTREAM_TIMEFRAMES"))
    run_id: str | None = Field(
        None, pattern=RUN_ID_PATTERN, validation_alias=env("STOCKSTREAM_RUN"),
        description="a run's id (docs/runs.md): derived topics under runs.<id>., views under <prefix>run:<id>:;"
                    " unset = the live namespace",
    )
    run_retention: str = Field(
        "7d", validation_alias=env("RUN_RETENTION"),
        description="how long a run's topics and view keys are kept (90s, 15m, 4h, 7d …)",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", validation_alias=env("KAFKA_SECURITY_PROTOCOL")
    )
    sasl_mechanism: str | None = Field(None, validation_alias=env("KAFKA_SASL_MECHANISM"))
    sasl_username: str | None = Field(None, validation_alias=env("KAFKA_SASL_USERNAME"))
    sasl_password: SecretStr | None = Field(None, validation_alias=env("KAFKA_SASL_PASSWORD"))
    sasl_password_file: Path | None = Field(
        None, validation_alias=env("KAFKA_SASL_PASSWORD_FILE"),
        description="a file holding the SASL password (a mounted Secret, the local stack's credentials);"
                    " read once at start, instead of KAFKA_SASL_PASSWORD",
    )
    ssl_ca_location: str | None = Field(None, validation_alias=env("KAFKA_SSL_CA_LOCATION"))
    # How often librdkafka reports a client's broker connections (stockstream_kafka_up); 0 = never.
    statistics_interval_ms: int = Field(5_000, ge=0, le=600_000, validation_alias=env("KAFKA_STATISTICS_INTERVAL_MS"))

    @field_validator("sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file", "ssl_ca_location",
                     mode="before")
    @classmethod
    def _empty_security_setting_is_unset(cls, value: object) -> object:
        # Its own name: a subclass's ``_empty_is_unset`` (NotifySettings has one) would replace it.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("candle_timeframes", mode="before")
    @classmethod
    def _split_timeframes(cls, value: object) -> object:
        return comma_list(value)

    @field_validator("candle_timeframes")
    @classmethod
    def _check_timeframes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for timeframe in value:
            if timeframe == "tick":
                raise ValueError("STOCKSTREAM_TIMEFRAMES lists candle timeframes; 'tick' is always on")
            validate_timeframe(timeframe)
        return value

    @field_validator("run_id")
    @classmethod
    def _check_run(cls, value: str | None) -> str | None:
        return None if value is None else check_run_id(value)

    @field_validator("run_retention")
    @classmethod
    def _check_retention(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError("RUN_RETENTION must be positive")
        return value

    @model_validator(mode="after")
    def _read_password_file(self) -> KafkaSettings:
        # Loaded here, once, so every consumer of ``sasl_password`` (client configs, Spark's JAAS
        # options, the log masking each service registers) sees the secret wherever it came from.
        if self.sasl_password_file is None:
            return self
        secret = secret_from_file(self.sasl_password_file, "KAFKA_SASL_PASSWORD", self.sasl_password)
        object.__setattr__(self, "sasl_password", secret)  # frozen model: set once, here
        return self

    def topics(self) -> TopicRegistry:
        """The topic registry for this deployment (for a run's: its derived topics under ``runs.<id>.``)."""
        return TopicRegistry(
            prefix=self.topic_prefix,
            ticks_base=self.ticks_topic,
            partitions=self.partitions,
            candle_timeframes=self.candle_timeframes,
            replication_factor=self.replication_factor,
            run_id=self.run_id,
            run_retention_ms=parse_duration(self.run_retention),
        )

    def default_group(self, role: str) -> str:
        """The consumer group of a service role: ``<prefix>stockstream-<role>``, or the run's own."""
        if self.run_id is not None:
            return run_group(self.topic_prefix, self.run_id, role)
        return f"{self.topic_prefix}stockstream-{role}"

    def client_config(self) -> dict[str, str]:
        """librdkafka connection settings (bootstrap + security) for any client."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config


class InstrumentLimitSettings(ServiceSettings):
    """Which instruments ``process`` and ``materialize`` accept (docs/stream.md, "Instrument limit").

    Mixed into a service's settings after :class:`KafkaSettings` (the limit is shared out over
    ``STOCKSTREAM_PARTITIONS``).
    """

    max_instruments: int = Field(
        DEFAULT_MAX_INSTRUMENTS, ge=1, le=10_000_000, validation_alias=env("MAX_INSTRUMENTS"),
        description="the most instruments that get state and views; each partition of ticks admits the first"
                    " MAX_INSTRUMENTS/partitions (rounded up) in its log order, later new ones are dead-lettered",
    )
    instrument_allow: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), validation_alias=env("INSTRUMENT_ALLOW"),
        description="comma-separated SYMBOL@venue or SYMBOL (every venue); unset = every instrument",
    )

    @field_validator("instrument_allow", mode="before")
    @classmethod
    def _split_allow(cls, value: object) -> object:
        return comma_list(value)

    def instrument_policy(self) -> InstrumentPolicy:
        partitions = getattr(self, "partitions", 1)  # KafkaSettings' STOCKSTREAM_PARTITIONS when mixed with it
        return InstrumentPolicy(self.max_instruments, partitions, self.instrument_allow)


class ScorecardSettings(ServiceSettings):
    """Which signal outcomes ``process`` and ``backfill`` record (docs/core.md, "Scorecards"): one definition,
    so both runners score the same horizons net of the same fee."""

    scorecard_horizons: Annotated[tuple[str, ...], NoDecode] = Field(
        ("1m", "5m", "1h", "1d"), validation_alias=env("SCORECARD_HORIZONS"),
        description="horizons at which every signal's outcome is recorded (docs/core.md, 'Scorecards'); empty: none",
    )
    scorecard_fee: float = Field(
        0.0, ge=0, lt=1, allow_inf_nan=False, validation_alias=env("SCORECARD_FEE"),
        description="round-trip cost an outcome's net return subtracts, as a fraction (0.001 = 10 bp)",
    )

    @field_validator("scorecard_horizons", mode="before")
    @classmethod
    def _split_horizons(cls, value: object) -> object:
        return comma_list(value)

    @field_validator("scorecard_horizons")
    @classmethod
    def _check_horizons(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        milliseconds = [horizon_ms(text) for text in value]
        if len(set(milliseconds)) != len(milliseconds):
            raise ValueError(f"SCORECARD_HORIZONS repeats a horizon: {','.join(value)}")
        return value

    @property
    def horizons_ms(self) -> tuple[int, ...]:
        return tuple(horizon_ms(text) for text in self.scorecard_horizons)


class RedisSettings(ServiceSettings):
    """How to reach Redis (password/ACL user and TLS optional) and the key namespace."""

    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=env("REDIS_URL"))
    redis_username: str | None = Field(None, validation_alias=env("REDIS_USERNAME"))
    redis_password: SecretStr | None = Field(None, validation_alias=env("REDIS_PASSWORD"))
    redis_password_file: Path | None = Field(
        None, validation_alias=env("REDIS_PASSWORD_FILE"),
        description="a file holding the Redis password (a mounted Secret); read once at start, instead of"
                    " REDIS_PASSWORD",
    )
    redis_tls: bool = Field(False, validation_alias=env("REDIS_TLS"))
    redis_tls_ca_file: str | None = Field(None, validation_alias=env("REDIS_TLS_CA_FILE"))
    redis_key_prefix: str = Field(
        "ss:", pattern=r"^[A-Za-z0-9_.:-]{0,32}$", validation_alias=env("REDIS_KEY_PREFIX")
    )

    @field_validator("redis_password_file", mode="before")
    @classmethod
    def _empty_redis_password_file_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _read_redis_password_file(self) -> RedisSettings:
        # Its own name: KafkaSettings' ``_read_password_file`` lives beside it in classes that inherit both.
        if self.redis_password_file is None:
            return self
        secret = secret_from_file(self.redis_password_file, "REDIS_PASSWORD", self.redis_password)
        object.__setattr__(self, "redis_password", secret)  # frozen model: set once, here
        return self

    def redis_connection(self) -> tuple[str, dict[str, Any]]:
        """URL and keyword arguments for ``Redis.from_url`` (sync or asyncio) honouring AUTH and TLS.

        redis-py takes TLS from the URL scheme (``from_url`` rejects ``ssl=True``), so with
        ``REDIS_TLS=true`` a ``redis://`` URL becomes ``rediss://``. Secrets are unwrapped only here.
        """
        url = self.redis_url
        kwargs: dict[str, Any] = {}
        if self.redis_username:
            kwargs["username"] = self.redis_username
        if self.redis_password is not None:
            kwargs["password"] = self.redis_password.get_secret_value()
        if self.redis_tls and url.startswith("redis://"):
            url = "rediss://" + url.removeprefix("redis://")
        if url.startswith("rediss://") and self.redis_tls_ca_file:
            kwargs["ssl_ca_certs"] = self.redis_tls_ca_file
        return url, kwargs


class MetricsSettings(ServiceSettings):
    """Where a service exposes ``/metrics`` (0 disables the endpoint)."""

    metrics_host: str = Field("127.0.0.1", validation_alias=env("METRICS_HOST"))
    metrics_port: int = Field(0, ge=0, le=65535, validation_alias=env("METRICS_PORT"))


class LoggingSettings(ServiceSettings):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=env("LOG_LEVEL")
    )
