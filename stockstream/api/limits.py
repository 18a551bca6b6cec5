"""Token-bucket rate limits per client (an IP address or a key id), bounded in memory.

Each client has a bucket of ``burst`` tokens refilled at ``rate`` per second; a request takes
one. At most ``max_clients`` buckets are kept (least recently used dropped first: a dropped
client starts again with a full bucket, which can only err towards allowing). Pure apart from
the injected ``now`` (``time.monotonic`` in the service). Who calls: :mod:`stockstream.api.gate`.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate: float, burst: int, max_clients: int = 10_000,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.now = now
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, client: str) -> float:
        """Take one token for ``client``: 0.0 when allowed, else the seconds until a token is back."""
        if self.rate <= 0:
            return 0.0
        moment = self.now()
        bucket = self.buckets.get(client)
        if bucket is None:
            bucket = Bucket(float(self.burst), moment)
            self.buckets[client] = bucket
            while len(self.buckets) > self.max_clients:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(client)
            bucket.tokens = min(float(self.burst), bucket.tokens + (moment - bucket.updated) * self.rate)
            bucket.updated = moment
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
