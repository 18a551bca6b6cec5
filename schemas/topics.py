"""The one place that declares every Kafka topic: name, key, value model, partitions, retention.

Every service builds its topic names through :class:`TopicRegistry`, so a namespace
prefix (used by tests and by side-by-side deployments) or a renamed ticks topic
(``KAFKA_TOPIC``) applies everywhere at once. Topics are created idempotently at start
by :func:`processors.runtime.kafka_admin.ensure_topics` with exactly this configuration.

**Runs** (``schemas/runs.py``). A registry for a run (:meth:`TopicRegistry.for_run`) names the
same derived topics under ``<prefix>runs.<id>.`` (``runs.<id>.signals``, ``runs.<id>.candles.1m``
…) kept until the run is pruned (``RUN_RETENTION`` after it ended, ``stockstream runs prune``), never
expired by the broker, while ``ticks`` stays the live log (a run reads it, never writes it): an output
record carries its input tick's timestamp, and Kafka's time retention counts from record timestamps,
so a retention on a run's topics would delete the outputs of a run over ticks older than it within
minutes of writing them (at the broker's next retention check). The run's processing state and consumer groups are named here too
(:func:`run_group`), so access rules can grant a run's principals exactly the prefixes
``<prefix>runs.<id>.`` and ``changelog__<prefix>runs.<id>.``. The run list itself is the
compacted ``runs`` topic (key = run id, one partition, broker timestamps: the strategy
hand-over is decided by them, see ``processors/core/rollout.py``).

**Dead letters** (``ticks.dlq``, ``views.dlq``, ``notifications.dlq``) take the broker's time
(``message.timestamp.type=LogAppendTime``), so their retention counts from when a record was
refused. The processor writes its outputs with its input record's timestamp; a dead letter of a
record ingested more than the DLQ retention ago (a backlog caught up after a long outage,
``replay --into-live`` of an old log) would otherwise be deleted at the broker's next retention
check, minutes after it was written: dropped in all but name. The refused record's own time stays in
the letter (``ts_init``, ``origin``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
from schemas.runs import Run, check_run_id
from schemas.timeframes import validate_timeframe

FOREVER = -1
DAY_MS = 86_400_000
RUNS_TOPIC = "runs"
RUN_NAMESPACE = "runs"
DEFAULT_RUN_RETENTION_MS = 7 * DAY_MS
BROKER_TIME = (("message.timestamp.type", "LogAppendTime"),)
"""Topic config: the broker stamps each record with its append time (retention then counts from it)."""


def run_topic_prefix(prefix: str, run_id: str) -> str:
    """``<prefix>runs.<id>.``: what every topic of a run starts with."""
    return f"{prefix}{RUN_NAMESPACE}.{check_run_id(run_id)}."


def run_group(prefix: str, run_id: str, role: str) -> str:
    """The consumer group of a run's ``role`` (``process``, ``materialize``): ``<prefix>runs.<id>.<role>``.

    The processor's state changelog is then ``changelog__<prefix>runs.<id>.process--…``.
    """
    return f"{run_topic_prefix(prefix, run_id)}{role}"


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the system declares it."""

    name: str
    key: Literal["symbol", "source", "signal_id", "run_id"]
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
    run_id: str | None = None  # a run's registry: derived topics under runs.<id>.
    run_retention_ms: int = DEFAULT_RUN_RETENTION_MS

    def __post_init__(self) -> None:
        for timeframe in self.candle_timeframes:
            validate_timeframe(timeframe)
        if self.run_id is not None:
            check_run_id(self.run_id)
        if self.run_retention_ms < 1:
            raise ValueError("run retention must be positive")

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def for_run(self, run_id: str, candle_timeframes: tuple[str, ...] | None = None) -> TopicRegistry:
        """The registry of run ``run_id``: same ticks, derived topics under ``runs.<id>.``."""
        return replace(self, run_id=run_id,
                       candle_timeframes=self.candle_timeframes if candle_timeframes is None else candle_timeframes)

    def live(self) -> TopicRegistry:
        """The live registry of this deployment (this one when it is not a run's)."""
        return self if self.run_id is None else replace(self, run_id=None)

    @property
    def derived_prefix(self) -> str:
        """What derived topic names start with: the prefix, or the run's ``<prefix>runs.<id>.``."""
        return self.prefix if self.run_id is None else run_topic_prefix(self.prefix, self.run_id)

    def derived(self, base: str) -> str:
        return f"{self.derived_prefix}{base}"

    def _retention(self, live_ms: int) -> int:
        """A derived topic's retention: its live retention; none for a run's (see the module docstring).

        A run's outputs carry the timestamps of the ticks they come from, and the broker deletes a
        segment once its newest timestamp is older than the retention: a run over last month's ticks
        would lose them at the next retention check. A run's lifetime is wall-clock time instead —
        ``RUN_RETENTION`` after it ends (``Run.expires_at``) — and ``stockstream runs prune`` deletes
        its topics then.
        """
        return live_ms if self.run_id is None else FOREVER

    @property
    def ticks(self) -> TopicSpec:
        # The log of record: never deleted, never compacted.
        return TopicSpec(self.name(self.ticks_base), "symbol", Tick, self.partitions)

    @property
    def ticks_dlq(self) -> TopicSpec:
        return TopicSpec(self.derived(f"{self.ticks_base}.dlq"), "source", DeadLetter, 1,
                         self._retention(self.dlq_retention_ms), extra_config=BROKER_TIME)

    def candles(self, timeframe: str) -> TopicSpec:
        validate_timeframe(timeframe)
        return TopicSpec(self.derived(f"candles.{timeframe}"), "symbol", Candle, self.partitions,
                         self._retention(FOREVER))

    @property
    def indicators(self) -> TopicSpec:
        return TopicSpec(
            self.derived("indicators"), "symbol", IndicatorSnapshot, self.partitions,
            self._retention(self.indicators_retention_ms),
        )

    @property
    def signals(self) -> TopicSpec:
        return TopicSpec(self.derived("signals"), "symbol", Signal, self.partitions, self._retention(FOREVER))

    @property
    def signal_outcomes(self) -> TopicSpec:
        """What happened after each signal at each scorecard horizon (docs/core.md, "Scorecards"); a run's own."""
        return TopicSpec(self.derived("signals.outcomes"), "symbol", SignalOutcome, self.partitions,
                         self._retention(FOREVER))

    @property
    def aggregates_daily(self) -> TopicSpec:
        return TopicSpec(self.derived("aggregates.daily"), "symbol", DailySummary, self.partitions,
                         self._retention(FOREVER))

    @property
    def views_dlq(self) -> TopicSpec:
        """Records the materializer refused (wrong key, undecodable, unknown topic kind…)."""
        return TopicSpec(self.derived("views.dlq"), "source", DeadLetter, 1, self._retention(self.dlq_retention_ms),
                         extra_config=BROKER_TIME)

    @property
    def runs(self) -> TopicSpec:
        """The run list (``schemas/runs.py``): compacted, one partition (one order), broker timestamps."""
        return TopicSpec(self.name(RUNS_TOPIC), "run_id", Run, 1, FOREVER, "compact", BROKER_TIME)

    @property
    def notifications_dlq(self) -> TopicSpec:
        return TopicSpec(self.name("notifications.dlq"), "signal_id", DeadLetter, 1, self.dlq_retention_ms,
                         extra_config=BROKER_TIME)

    def run_outputs(self) -> list[TopicSpec]:
        """The topics a processor writes (and a run owns): derived events and rejected ticks."""
        return [self.ticks_dlq, *(self.candles(tf) for tf in self.candle_timeframes), self.indicators, self.signals,
                self.signal_outcomes, self.aggregates_daily]

    def all(self) -> list[TopicSpec]:
        """Every topic of the deployment (of the run, for a run's registry), in a stable order.

        The ``runs`` topic is not listed: :class:`processors.runtime.runs.RunLog` creates it when a run is made.
        """
        if self.run_id is not None:
            return [self.ticks, *self.run_outputs(), self.views_dlq]
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
