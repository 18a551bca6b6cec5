"""What the supervisor hands to a lane process (pickled on the lane's stdin).

Kept apart from :mod:`processors.notify.lane` so the supervisor never imports the
lane's metrics: lanes count in multiprocess mode, the supervisor only aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from processors.notify.settings import NotifySettings
from processors.notify.subscriptions import ChannelConfig, Subscription


@dataclass(frozen=True)
class LaneSpec:
    """Everything a lane process needs, validated by the supervisor and handed over on stdin."""

    channel: str
    config: ChannelConfig
    subscriptions: tuple[Subscription, ...]
    secrets: dict[str, SecretStr]
    settings: NotifySettings
    parent_pid: int
    renotify: bool = False
    # Renotify runs only: partition → last offset to handle; partitions absent hold nothing to do.
    stop_offsets: dict[int, int] | None = None
