"""Exponential back-off with jitter, shared by reconnects and API retries (pure; inject the rng)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays ``initial · 2^n`` capped at ``maximum``, each drawn in ``[d/2, d]`` ("equal jitter").

    The jitter keeps many clients that lost the same server from reconnecting in lockstep;
    the lower half bound keeps the schedule exponential. :meth:`reset` after a success.
    """

    initial: float
    maximum: float
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * (2 ** min(self.attempt, 62)))
        self.attempt += 1
        return float(ceiling / 2 + self.rng.uniform(0, ceiling / 2))

    def reset(self) -> None:
        self.attempt = 0
