"""The one settings class of ``stockstream process``; every environment variable it reads is named here.

Only the entry point (:mod:`stockstream.commands.process`) constructs
:class:`ProcessSettings`; CLI flags are passed as keyword arguments by field name and win
over the environment and ``.env``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from processors.runtime.settings import (
    InstrumentLimitSettings,
    KafkaSettings,
    LoggingSettings,
    MetricsSettings,
    ScorecardSettings,
    env,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".stack" / "state" / "process"

ProcessingGuarantee = Literal["exactly-once", "at-least-once"]

# Commit intervals chosen per guarantee when PROCESS_COMMIT_INTERVAL_SECONDS is not set
# (docs/stream.md explains the figures). Under exactly-once, output becomes readable to
# read_committed consumers only when the transaction commits, so the interval bounds the
# latency; under at-least-once output is readable as soon as it is produced and the
# interval only bounds how much is reprocessed after a crash.
DEFAULT_COMMIT_INTERVAL_S: dict[str, float] = {"exactly-once": 0.25, "at-least-once": 5.0}

# Producer linger.ms per guarantee when PROCESS_PRODUCER_LINGER_MS is not set. Under exactly-once
# output is readable only when the transaction commits, and the commit flushes the producer at
# once, so waiting longer to fill batches costs no latency and saves librdkafka's per-request work
# (measured: its threads' CPU per tick 3.6–4.9 → 1.1–1.8 µs at 20 ms; tick → signal p50/p99
# unchanged at 0.25 s commits). Under at-least-once output is readable as soon as it is sent, so
# librdkafka's default (5 ms) stays: 20 ms raised its p90 from 100 to 144 ms.
DEFAULT_LINGER_MS: dict[str, float] = {"exactly-once": 20.0, "at-least-once": 5.0}

# Quix checks whether a checkpoint is due only between two polls of the consumer, and its poll waits
# up to 1 s for a record (its default). When the input pauses, the transaction holding the last
# records before the pause is therefore committed up to 1 s late: the "~1 s stall" of every latency
# run, at the end of the feed (docs/stream.md, "Where the exactly-once latency goes"). Polling for at
# most a fifth of the commit interval, and never more than 50 ms, bounds that delay; an idle loop
# then turns ~20 times a second: under 1 % of a core (bench_latency's idle_cpu_share).
MAX_DEFAULT_POLL_TIMEOUT_S = 0.05


def default_poll_timeout(commit_interval_s: float) -> float:
    """The consumer poll timeout for a commit interval: a fifth of it, between 5 and 50 ms."""
    return min(MAX_DEFAULT_POLL_TIMEOUT_S, max(0.005, commit_interval_s / 5))


class ProcessSettings(KafkaSettings, InstrumentLimitSettings, ScorecardSettings, MetricsSettings, LoggingSettings):
    """Configuration of ``stockstream process`` (docs/stream.md has the table)."""

    metrics_port: int = Field(9102, ge=0, le=65535, validation_alias=env("METRICS_PORT"))
    consumer_group: str | None = Field(
        None, validation_alias=env("PROCESS_CONSUMER_GROUP"),
        description="Kafka consumer group; default '<STOCKSTREAM_TOPIC_PREFIX>stockstream-process'",
    )
    state_dir: Path = Field(DEFAULT_STATE_DIR, validation_alias=env("PROCESS_STATE_DIR"))
    processing_guarantee: ProcessingGuarantee = Field(
        "exactly-once", validation_alias=env("PROCESSING_GUARANTEE"))
    commit_interval_s: float | None = Field(
        None, ge=0, le=600, validation_alias=env("PROCESS_COMMIT_INTERVAL_SECONDS"))
    commit_every: int = Field(0, ge=0, le=10_000_000, validation_alias=env("PROCESS_COMMIT_EVERY"))
    producer_linger_ms: float | None = Field(
        None, ge=0, le=900_000, validation_alias=env("PROCESS_PRODUCER_LINGER_MS"),
        description="producer linger.ms; default 20 under exactly-once, 5 (librdkafka's) under at-least-once",
    )
    poll_timeout_s: float | None = Field(
        None, gt=0, le=10, validation_alias=env("PROCESS_POLL_TIMEOUT_SECONDS"),
        description="longest wait for input before the loop checks whether a checkpoint is due;"
                    " default a fifth of the commit interval, at most 0.05 s (Quix's own default is 1 s)",
    )
    # The state is small (one ~2 KB document per symbol, rewritten at each checkpoint): Quix's RocksDB
    # defaults (64 MiB write buffers, up to 3 per partition, a 1 GiB block cache) let resident memory
    # climb for many minutes before the first flush, which reads as a leak (30-min soak: +27 %).
    rocksdb_write_buffer_mb: int = Field(4, ge=1, le=1024, validation_alias=env("PROCESS_ROCKSDB_WRITE_BUFFER_MB"))
    rocksdb_block_cache_mb: int = Field(64, ge=8, le=65_536, validation_alias=env("PROCESS_ROCKSDB_BLOCK_CACHE_MB"))
    strategy_file: Path | None = Field(None, validation_alias=env("STOCKSTREAM_STRATEGY"))
    emit_from: str | None = Field(
        None, pattern=r"^[0-9]+:[0-9]+(,[0-9]+:[0-9]+)*$", validation_alias=env("PROCESS_EMIT_FROM"),
        description="per input partition, the first offset whose outputs are produced (0:1200,1:800): earlier"
                    " records only warm the state up (a run's warm-up, docs/runs.md); default: every record",
    )
    cold_start: bool = Field(
        False, validation_alias=env("PROCESS_COLD_START"),
        description="start symbols whose stored state was built with another strategy or timeframe set afresh;"
                    " default: refuse (the processor stops with a message, docs/runs.md)",
    )
    grace_s: float = Field(5.0, ge=0, le=86_400, validation_alias=env("PROCESS_GRACE_SECONDS"))
    live_update_interval_s: float = Field(
        1.0, ge=0, le=86_400, allow_inf_nan=False, validation_alias=env("LIVE_UPDATE_INTERVAL"),
        description="seconds of event (stream) time between two live updates of an instrument: its forming candles"
                    " and running daily summary (docs/core.md, 'Live candles and quiet feeds'); 0: none",
    )
    stats_interval_ms: int = Field(5_000, ge=0, le=600_000, validation_alias=env("PROCESS_STATS_INTERVAL_MS"))
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", validation_alias=env("PROCESS_AUTO_OFFSET_RESET"))
    metrics_max_symbols: int = Field(50, ge=0, le=10_000, validation_alias=env("PROCESS_METRICS_MAX_SYMBOLS"))
    instance_id: str | None = Field(
        # PROCESS_TRANSACTIONAL_ID: the name of an earlier version of this setting, still accepted.
        None, pattern=r"^[A-Za-z0-9._-]{1,100}$",
        validation_alias=env("PROCESS_INSTANCE_ID", "PROCESS_TRANSACTIONAL_ID"),
        description="a stable identity per instance (e.g. the pod name of a StatefulSet): static group"
                    " membership (a restart gets its partitions back without a rebalance) and a stable"
                    " transactional id (a restart fences its killed predecessor at once); default: none",
    )
    session_timeout_ms: int = Field(
        10_000, ge=1_000, le=300_000, validation_alias=env("PROCESS_SESSION_TIMEOUT_MS"),
        description="how long the group waits for a silent instance before moving its partitions",
    )
    transaction_timeout_ms: int = Field(
        10_000, ge=1_000, le=900_000, validation_alias=env("PROCESS_TRANSACTION_TIMEOUT_MS"),
        description="exactly-once: how long the broker keeps a dead instance's open transaction"
                    " (which holds back read_committed readers) before aborting it",
    )

    @model_validator(mode="after")
    def _strategy_readable(self) -> ProcessSettings:
        if self.strategy_file is not None and not self.strategy_file.is_file():
            raise ValueError(f"STOCKSTREAM_STRATEGY: {self.strategy_file} is not a readable file")
        return self

    @property
    def emit_offsets(self) -> dict[int, int] | None:
        """``emit_from`` per partition (a partition not listed emits from its start)."""
        if self.emit_from is None:
            return None
        return {int(p): int(o) for p, o in (part.split(":") for part in self.emit_from.split(","))}

    @property
    def group_id(self) -> str:
        return self.consumer_group or self.default_group("process")

    @property
    def commit_interval(self) -> float:
        """Seconds between checkpoints: the setting, or the default for the guarantee."""
        if self.commit_interval_s is not None:
            return self.commit_interval_s
        return DEFAULT_COMMIT_INTERVAL_S[self.processing_guarantee]

    @property
    def linger_ms(self) -> float:
        """The producer's linger.ms: the setting, or the default for the guarantee."""
        if self.producer_linger_ms is not None:
            return self.producer_linger_ms
        return DEFAULT_LINGER_MS[self.processing_guarantee]

    @property
    def poll_timeout(self) -> float:
        """Seconds the consumer poll waits for input: the setting, or the default for the commit interval."""
        if self.poll_timeout_s is not None:
            return self.poll_timeout_s
        return default_poll_timeout(self.commit_interval)

    @property
    def transactional_id(self) -> str | None:
        """Stable per instance when ``instance_id`` is set (else a random one per start, see ``topology``).

        Either way it starts with ``<group>-``: the Kafka ACLs grant the processor's principal the
        transactional ids of that prefix only (docs/security.md).
        """
        return f"{self.group_id}-{self.instance_id}" if self.instance_id else None

    @property
    def grace_ms(self) -> int:
        return round(self.grace_s * 1000)

    @property
    def live_update_ms(self) -> int:
        return round(self.live_update_interval_s * 1000)
