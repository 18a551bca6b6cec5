"""The one place that declares every Kafka topic: name, key, value model, partitions, retention.

Every service builds its topic names through :class:`TopicRegistry`, so a namespace
prefix (used by tests and by side-by-side deployments) or a renamed ticks topic
(``KAFKA_TOPIC``) applies everywhere at once. Topics are created idempotently at start
by :func:`processors.runtime.kafka_admin.ensure_topics` with exactly this configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.events import (
    Candle,
    DailySummary,
    DeadLetter,
    Event,
    IndicatorSnapshot,
    Signal,
    SignalOutcome,
    Tick,
)
from schemas.timeframes import validate_timeframe

FOREVER = -1
DAY_MS = 86_400_000


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the system declares it."""

    name: str
    key: Literal["symbol", "source", "signal_id"]
    value_model: type[Event]
    partitions: int
    retention_ms: int = FOREVER
    cleanup_policy: Literal["delete", "compact"] = "delete"
    extra_config: tuple[tuple[str, str], ...] = ()

    def config(self) -> dict[str, str]:
        """Broker-side topic config for creation."""
        settings = {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": self.cleanup_policy,
        }
        if self.retention_ms == FOREVER:
            settings["retention.bytes"] = "-1"
        settings.update(dict(self.extra_config))
        return settings


@dataclass(frozen=True)
class TopicRegistry:
    """Names and specs of every topic for one deployment (prefix, partitions, timeframes)."""

    prefix: str = ""
    ticks_base: str = "ticks"
    partitions: int = 4
    candle_timeframes: tuple[str, ...] = ("1m",)
    replication_factor: int = 1
    dlq_retention_ms: int = 30 * DAY_MS
    indicators_retention_ms: int = 7 * DAY_MS

    def __post_init__(self) -> None:
        for timeframe in self.candle_timeframes:
            validate_timeframe(timeframe)

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def ticks(self) -> TopicSpec:
        # The log of record: never deleted, never compacted.
        return TopicSpec(self.name(self.ticks_base), "symbol", Tick, self.partitions)

    @property
    def ticks_dlq(self) -> TopicSpec:
        return TopicSpec(
            self.name(f"{self.ticks_base}.dlq"), "source", DeadLetter, 1, self.dlq_retention_ms
        )

    def candles(self, timeframe: str) -> TopicSpec:
        validate_timeframe(timeframe)
        return TopicSpec(self.name(f"candles.{timeframe}"), "symbol", Candle, self.partitions)

    @property
    def indicators(self) -> TopicSpec:
        return TopicSpec(
            self.name("indicators"), "symbol", IndicatorSnapshot, self.partitions,
            self.indicators_retention_ms,
        )

    @property
    def signals(self) -> TopicSpec:
        return TopicSpec(self.name("signals"), "symbol", Signal, self.partitions)

    @property
    def signal_outcomes(self) -> TopicSpec:
        """What happened after each signal at each scorecard horizon (docs/core.md, "Scorecards")."""
        return TopicSpec(self.name("signals.outcomes"), "symbol", SignalOutcome, self.partitions)

    @property
    def aggregates_daily(self) -> TopicSpec:
        return TopicSpec(self.name("aggregates.daily"), "symbol", DailySummary, self.partitions)

    @property
    def views_dlq(self) -> TopicSpec:
        """Records the materializer refused (wrong key, undecodable, unknown topic kind…)."""
        return TopicSpec(self.name("views.dlq"), "source", DeadLetter, 1, self.dlq_retention_ms)

    @property
    def notifications_dlq(self) -> TopicSpec:
        return TopicSpec(
            self.name("notifications.dlq"), "signal_id", DeadLetter, 1, self.dlq_retention_ms
        )

    def all(self) -> list[TopicSpec]:
        """Every topic of the deployment, in a stable order."""
        return [
            self.ticks,
            self.ticks_dlq,
            *(self.candles(tf) for tf in self.candle_timeframes),
            self.indicators,
            self.signals,
            self.signal_outcomes,
            self.aggregates_daily,
            self.views_dlq,
            self.notifications_dlq,
        ]
