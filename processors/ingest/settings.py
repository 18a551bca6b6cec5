"""The ingest service's one settings class: every env var it reads is declared here.

Only the entry point (``stockstream ingest``) constructs :class:`IngestSettings`;
CLI flags are passed as keyword arguments by field name and win over the
environment and ``.env``. A bad combination (the Alpha Vantage source without a key,
the file source without a path, a malformed URL) fails fast with a clear message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from processors.runtime.settings import KafkaSettings, LoggingSettings, MetricsSettings, comma_list, env
from schemas.instruments import COMPOSITE_VENUE, VENUE_PATTERN
from schemas.symbols import InvalidSymbolError, normalize_symbol

SourceName = Literal["simulator", "file", "alphavantage", "coinbase", "binance", "kraken"]
SOURCES: tuple[str, ...] = ("simulator", "file", "alphavantage", "coinbase", "binance", "kraken")

DEFAULT_SYMBOLS: dict[str, tuple[str, ...]] = {
    "simulator": ("BTC-USD", "ETH-USD", "SOL-USD"),
    "alphavantage": ("BTC-USD",),
    "coinbase": ("BTC-USD",),
    "binance": ("BTC-USDT",),
    "kraken": ("BTC-USD",),
}


class IngestSettings(KafkaSettings, MetricsSettings, LoggingSettings):
    """Configuration of ``stockstream ingest`` (see docs/ingest.md for the env var table)."""

    source: SourceName = Field("simulator", validation_alias=env("INGEST_SOURCE"))
    symbols: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias=env("INGEST_SYMBOLS"))
    message_interval: float = Field(1.0, gt=0, le=86_400, validation_alias=env("MESSAGE_INTERVAL"))
    metrics_port: int = Field(9101, ge=0, le=65535, validation_alias=env("METRICS_PORT"))

    # Validation of every source's records.
    earliest_timestamp: datetime = Field(
        datetime(2000, 1, 1, tzinfo=UTC), validation_alias=env("INGEST_EARLIEST_TIMESTAMP")
    )
    max_future_seconds: float = Field(300.0, ge=0, validation_alias=env("INGEST_MAX_FUTURE_SECONDS"))
    dedup_window: int = Field(100_000, ge=1, le=10_000_000, validation_alias=env("INGEST_DEDUP_WINDOW"))

    # Retries: reconnects and API back-off share one exponential schedule with jitter.
    retry_initial_seconds: float = Field(1.0, gt=0, validation_alias=env("INGEST_RETRY_INITIAL_SECONDS"))
    retry_max_seconds: float = Field(60.0, gt=0, validation_alias=env("INGEST_RETRY_MAX_SECONDS"))

    # Producer.
    message_timeout_ms: int = Field(0, ge=0, validation_alias=env("INGEST_MESSAGE_TIMEOUT_MS"))
    linger_ms: int = Field(5, ge=0, le=10_000, validation_alias=env("INGEST_LINGER_MS"))
    queue_max_messages: int = Field(100_000, ge=1, le=10_000_000, validation_alias=env("INGEST_QUEUE_MAX_MESSAGES"))
    flush_timeout_seconds: float = Field(30.0, ge=0, validation_alias=env("INGEST_FLUSH_TIMEOUT_SECONDS"))

    # Simulator.
    sim_seed: int | None = Field(None, validation_alias=env("INGEST_SIM_SEED"))
    sim_rate: float | None = Field(None, ge=0, validation_alias=env("INGEST_SIM_RATE"))
    sim_count: int | None = Field(None, ge=1, validation_alias=env("INGEST_SIM_COUNT"))
    sim_start: datetime | None = Field(None, validation_alias=env("INGEST_SIM_START"))
    sim_step_seconds: float = Field(1.0, gt=0, validation_alias=env("INGEST_SIM_STEP_SECONDS"))
    sim_volume: bool = Field(True, validation_alias=env("INGEST_SIM_VOLUME"))

    # File replay.
    file_paths: Annotated[tuple[Path, ...], NoDecode] = Field((), validation_alias=env("INGEST_FILE_PATH"))
    file_speed: float | None = Field(None, gt=0, validation_alias=env("INGEST_FILE_SPEED"))
    file_format: Literal["auto", "csv", "jsonl"] = Field("auto", validation_alias=env("INGEST_FILE_FORMAT"))
    # The venue of a file record without a ``venue`` column (``--venue``): ``file`` or a replay's own name.
    file_venue: str = Field("file", pattern=VENUE_PATTERN, validation_alias=env("INGEST_FILE_VENUE"))
    # Where each file's position is kept across restarts (resume at the last acknowledged line).
    file_position_dir: Path = Field(Path(".stack/state/ingest"), validation_alias=env("INGEST_FILE_POSITION_DIR"))
    file_from_start: bool = Field(False, validation_alias=env("INGEST_FILE_FROM_START"))
    file_checkpoint_lines: int = Field(10_000, ge=1, le=1_000_000, validation_alias=env("INGEST_FILE_CHECKPOINT_LINES"))

    # Alpha Vantage.
    alphavantage_api_key: SecretStr | None = Field(None, validation_alias=env("ALPHAVANTAGE_API_KEY"))
    alphavantage_base_url: str = Field(
        "https://www.alphavantage.co", validation_alias=env("ALPHAVANTAGE_BASE_URL")
    )
    alphavantage_daily_budget: int = Field(25, ge=1, validation_alias=env("ALPHAVANTAGE_DAILY_BUDGET"))
    alphavantage_history: bool = Field(False, validation_alias=env("ALPHAVANTAGE_HISTORY"))
    alphavantage_timeout_seconds: float = Field(10.0, gt=0, validation_alias=env("ALPHAVANTAGE_TIMEOUT_SECONDS"))
    # The daily budget is kept here across restarts (a crash loop must not overspend the 25 calls a day).
    alphavantage_budget_dir: Path = Field(Path(".stack/state/ingest"), validation_alias=env("ALPHAVANTAGE_BUDGET_DIR"))

    # Exchange WebSocket feeds.
    coinbase_ws_url: str = Field("wss://ws-feed.exchange.coinbase.com", validation_alias=env("COINBASE_WS_URL"))
    binance_ws_url: str = Field("wss://stream.binance.com:9443", validation_alias=env("BINANCE_WS_URL"))
    kraken_ws_url: str = Field("wss://ws.kraken.com/v2", validation_alias=env("KRAKEN_WS_URL"))
    ws_idle_timeout_seconds: float = Field(30.0, gt=0, validation_alias=env("INGEST_WS_IDLE_TIMEOUT_SECONDS"))
    ws_open_timeout_seconds: float = Field(10.0, gt=0, validation_alias=env("INGEST_WS_OPEN_TIMEOUT_SECONDS"))

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        return comma_list(value)

    @field_validator("file_paths", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str | Path):
            return (value,) if isinstance(value, Path) else comma_list(value)
        return value

    @field_validator("symbols")
    @classmethod
    def _normalize_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        normalized = []
        for raw in value:
            try:
                normalized.append(normalize_symbol(raw))
            except InvalidSymbolError as error:
                raise ValueError(f"INGEST_SYMBOLS: {raw!r}: {error}") from None
        return tuple(dict.fromkeys(normalized))

    @field_validator("earliest_timestamp", "sim_start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2024-01-01T00:00:00Z")
        return value.astimezone(UTC)

    @field_validator("coinbase_ws_url", "binance_ws_url", "kraken_ws_url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value.rstrip("/")

    @field_validator("alphavantage_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _source_requirements(self) -> IngestSettings:
        if self.source == "alphavantage" and (
            self.alphavantage_api_key is None or not self.alphavantage_api_key.get_secret_value().strip()
        ):
            raise ValueError("the alphavantage source needs an API key in ALPHAVANTAGE_API_KEY (env or .env)")
        if self.source == "file":
            if not self.file_paths:
                raise ValueError("the file source needs --path FILE (or INGEST_FILE_PATH)")
            for path in self.file_paths:
                if not path.is_file():
                    raise ValueError(f"file source: {path} is not a readable file")
            if self.file_checkpoint_lines > self.dedup_window:
                # A restart re-reads the lines since the last saved position: the window must hold them all.
                raise ValueError("INGEST_FILE_CHECKPOINT_LINES must not exceed INGEST_DEDUP_WINDOW (file source)")
        if self.file_venue == COMPOSITE_VENUE:
            raise ValueError(f"venue {COMPOSITE_VENUE!r} is reserved for the composite index; pick another --venue")
        if self.retry_max_seconds < self.retry_initial_seconds:
            raise ValueError("INGEST_RETRY_MAX_SECONDS must be >= INGEST_RETRY_INITIAL_SECONDS")
        if self.source == "alphavantage":
            for symbol in self.active_symbols():
                if symbol.count("-") != 1:
                    raise ValueError(f"alphavantage pairs are BASE-QUOTE, e.g. BTC-USD; got {symbol!r}")
        return self

    def active_symbols(self) -> tuple[str, ...]:
        """The configured symbols, or the source's default set (the file source takes what the file holds)."""
        return self.symbols or DEFAULT_SYMBOLS.get(self.source, ())

    def simulator_rate(self) -> float:
        """Ticks per second over all symbols; 0 = as fast as the broker takes.

        Defaults to one tick per symbol every ``MESSAGE_INTERVAL`` seconds.
        """
        if self.sim_rate is not None:
            return self.sim_rate
        return len(self.active_symbols()) / self.message_interval

    def max_future(self) -> timedelta:
        return timedelta(seconds=self.max_future_seconds)
