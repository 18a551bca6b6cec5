"""The one settings class of ``stockstream composite``; every environment variable it reads is named here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from processors.runtime.settings import KafkaSettings, LoggingSettings, MetricsSettings, comma_list, env
from schemas.symbols import normalize_symbol

DEFAULT_STATE_DIR = Path(".stack/state/composite")


class CompositeSettings(KafkaSettings, MetricsSettings, LoggingSettings):
    """Which symbols get a composite index, when a venue counts as stale, and the Quix app's place."""

    symbols: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias=env("COMPOSITE_SYMBOLS"))
    stale_s: float = Field(10.0, gt=0, le=86_400, validation_alias=env("COMPOSITE_STALE_S"))
    metrics_port: int = Field(9106, ge=0, le=65535, validation_alias=env("METRICS_PORT"))
    consumer_group: str | None = Field(None, validation_alias=env("COMPOSITE_CONSUMER_GROUP"))
    state_dir: Path = Field(DEFAULT_STATE_DIR, validation_alias=env("COMPOSITE_STATE_DIR"))
    auto_offset_reset: str = Field("latest", pattern="^(earliest|latest)$",
                                   validation_alias=env("COMPOSITE_AUTO_OFFSET_RESET"))

    @field_validator("symbols", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return comma_list(value)

    @field_validator("symbols")
    @classmethod
    def _normalize(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(normalize_symbol(item) for item in value))

    @property
    def group_id(self) -> str:
        return self.consumer_group or f"{self.topic_prefix}stockstream-composite"

    @property
    def stale_us(self) -> int:
        return round(self.stale_s * 1_000_000)
