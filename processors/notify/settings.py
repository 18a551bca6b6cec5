"""Settings of ``stockstream notify``: one frozen class, every env var named here.

Secrets of the channels (bot tokens, webhook URLs, SMTP passwords, HMAC keys) are
not fields here: the subscription file names the env vars that hold them, and the
entry point reads exactly those (:func:`processors.notify.subscriptions.resolve_secrets`).
"""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

from pydantic import Field, HttpUrl, field_validator

from processors.runtime.settings import KafkaSettings, LoggingSettings, MetricsSettings, RedisSettings, env


class NotifySettings(KafkaSettings, RedisSettings, MetricsSettings, LoggingSettings):
    """Configuration of the notifier service (read once by the ``notify`` command)."""

    @field_validator("run_id")
    @classmethod
    def _live_only(cls, value: str | None) -> str | None:
        # A run's signals are for comparing (runs diff), never for sending (docs/runs.md).
        if value is not None:
            raise ValueError("the notifier only reads live signals: unset STOCKSTREAM_RUN")
        return value

    metrics_port: int = Field(9104, ge=0, le=65535, validation_alias=env("METRICS_PORT"))
    subscriptions_file: Path | None = Field(None, validation_alias=env("NOTIFY_SUBSCRIPTIONS"))
    consumer_group: str = Field(
        "stockstream-notify", pattern=r"^[A-Za-z0-9._-]{1,100}$", validation_alias=env("NOTIFY_CONSUMER_GROUP")
    )
    instance_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,100}$", validation_alias=env("NOTIFY_INSTANCE_ID"))
    state_dir: Path = Field(Path(".stack/state/notify"), validation_alias=env("NOTIFY_STATE_DIR"))
    max_age_s: float = Field(900.0, gt=0, validation_alias=env("NOTIFY_MAX_AGE_S"))
    dashboard_url: HttpUrl | None = Field(None, validation_alias=env("NOTIFY_DASHBOARD_URL"))
    http_timeout_s: float = Field(10.0, gt=0, le=120, validation_alias=env("NOTIFY_HTTP_TIMEOUT_S"))
    max_attempts: int = Field(8, ge=1, le=100, validation_alias=env("NOTIFY_MAX_ATTEMPTS"))
    backoff_initial_s: float = Field(0.5, gt=0, validation_alias=env("NOTIFY_BACKOFF_INITIAL_S"))
    backoff_max_s: float = Field(30.0, gt=0, validation_alias=env("NOTIFY_BACKOFF_MAX_S"))
    retry_deadline_s: float = Field(120.0, gt=0, le=600, validation_alias=env("NOTIFY_RETRY_DEADLINE_S"))
    max_in_flight: int = Field(16, ge=1, le=256, validation_alias=env("NOTIFY_MAX_IN_FLIGHT"))
    commit_interval_s: float = Field(0.5, gt=0, le=60, validation_alias=env("NOTIFY_COMMIT_INTERVAL_S"))
    commit_every: int = Field(500, ge=1, le=100_000, validation_alias=env("NOTIFY_COMMIT_EVERY"))
    shutdown_grace_s: float = Field(15.0, gt=0, validation_alias=env("NOTIFY_SHUTDOWN_GRACE_S"))
    lane_restart_max_s: float = Field(60.0, gt=0, validation_alias=env("NOTIFY_LANE_RESTART_MAX_S"))
    # Each lane is a process with its own RocksDB (ledger, cooldowns: small documents per signal and
    # subscription): sized like the processor's, not Quix's defaults (up to 3 x 64 MiB write buffers
    # per partition and a 1 GiB block cache per lane), with four lanes under one pod's 1 GiB limit.
    rocksdb_write_buffer_mb: int = Field(4, ge=1, le=1024, validation_alias=env("NOTIFY_ROCKSDB_WRITE_BUFFER_MB"))
    rocksdb_block_cache_mb: int = Field(16, ge=8, le=65_536, validation_alias=env("NOTIFY_ROCKSDB_BLOCK_CACHE_MB"))

    @field_validator("subscriptions_file", "dashboard_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def lane_group(self, channel: str, *, renotify: bool = False) -> str:
        """The consumer group of one channel's lane (a renotify run has its own, see docs/notify.md)."""
        return f"{self.consumer_group}.{channel}" + (".renotify" if renotify else "")

    def instance_identity(self) -> str:
        """This notifier instance's name: ``NOTIFY_INSTANCE_ID``, else host name + a hash of the state folder.

        Two instances on one host need different state folders anyway (RocksDB locks them),
        so the default is unique per running instance and stable across its restarts.
        """
        if self.instance_id:
            return self.instance_id
        folder = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:8]
        host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname() or "host")[:60]
        return f"{host}-{folder}"

    def lane_member_id(self, channel: str, *, renotify: bool = False) -> str:
        """Stable identity of this instance's lane: Kafka static membership and transactional id.

        A lane restarted with the same identity takes its partitions back at once (no wait for
        the session timeout) and fences the dead instance's unfinished transaction.
        """
        return f"{self.lane_group(channel, renotify=renotify)}.{self.instance_identity()}"

    def lane_state_dir(self, channel: str, *, renotify: bool = False) -> Path:
        return self.state_dir / (f"{channel}.renotify" if renotify else channel)

    def redis_notifications_channel(self) -> str:
        """The Redis pub/sub channel the browser channel publishes on (contract with the API)."""
        return f"{self.redis_key_prefix}live:notifications"
