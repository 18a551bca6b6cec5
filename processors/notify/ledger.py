"""The per-channel decision for one signal, and the ledger entries it leaves (pure, no I/O).

A lane (one channel) keeps, in its Quix state store, keyed under the signal's symbol:

- ``ledger:<signal_id>`` → :class:`LedgerEntry`: what happened to this signal on this
  channel (delivered, dead-lettered, skipped as stale, dropped by cooldown). Once an
  entry exists the signal is never sent again on this channel, whatever replays;
- ``cooldown:<subscription>:<symbol>:<timeframe>:<rule>:<side>`` → the event time
  (epoch ms) of the last signal delivered for that subscription and key (kept only for subscriptions
  that have a cooldown).

Cooldowns compare event times, not wall time, so a replay decides exactly as the
live run did: two deliveries for the same (symbol, timeframe, rule, side) of a
subscription are at least ``cooldown`` apart in event time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from processors.notify.subscriptions import Subscription
from schemas.events import Signal

Status = Literal["delivered", "dead_lettered", "skipped_stale", "dropped_cooldown"]
Action = Literal["deliver", "unsubscribed", "duplicate", "stale", "cooldown"]


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def ledger_key(signal_id: str) -> str:
    return f"ledger:{signal_id}"


def cooldown_key(subscription: str, signal: Signal) -> str:
    # Per instrument: two venues' BTC-USD are two series, each with its own cooldown.
    return f"cooldown:{subscription}:{signal.symbol}@{signal.venue}:{signal.timeframe}:{signal.rule}:{signal.side}"


@dataclass(frozen=True)
class LedgerEntry:
    """What a channel did with one signal; stored as a small JSON object."""

    status: Status
    at_ms: int
    attempts: int = 0
    reason: str | None = None

    def to_state(self) -> dict[str, object]:
        entry: dict[str, object] = {"status": self.status, "at_ms": self.at_ms, "attempts": self.attempts}
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry

    @classmethod
    def from_state(cls, value: Mapping[str, object]) -> LedgerEntry:
        status = value["status"]
        if status not in ("delivered", "dead_lettered", "skipped_stale", "dropped_cooldown"):
            raise ValueError(f"unknown ledger status {status!r}")
        at_ms, attempts, reason = value.get("at_ms", 0), value.get("attempts", 0), value.get("reason")
        return cls(
            status=status,
            at_ms=int(at_ms) if isinstance(at_ms, int | float) else 0,
            attempts=int(attempts) if isinstance(attempts, int | float) else 0,
            reason=str(reason) if reason is not None else None,
        )


@dataclass(frozen=True)
class Verdict:
    """What to do with a signal on one channel; ``subscriptions`` are those a delivery satisfies."""

    action: Action
    subscriptions: tuple[str, ...] = ()

    @property
    def ledger_status(self) -> Status | None:
        """The entry to record without delivering (``None``: record nothing / deliver first)."""
        return {"stale": "skipped_stale", "cooldown": "dropped_cooldown"}.get(self.action)  # type: ignore[return-value]


def decide(
    signal: Signal,
    subscriptions: Sequence[Subscription],
    ledger: LedgerEntry | None,
    last_sent_ms: Mapping[str, int | None],
    now: datetime,
    max_age_s: float,
    renotify: bool = False,
) -> Verdict:
    """Decide for one signal on one channel.

    Order: no matching subscription → ``unsubscribed`` (nothing recorded); already in
    the ledger → ``duplicate``; older than ``max_age_s`` at ``now`` → ``stale``; every
    matching subscription still cooling down → ``cooldown``; otherwise ``deliver``.
    ``renotify`` (an explicit re-announcement) ignores the age limit, never the filters,
    the cooldown or the ledger (a renotify run keeps a ledger of its own, so the live
    ledger does not stop it, while each signal is still announced once per run).
    """
    matching = [subscription for subscription in subscriptions if subscription.matches(signal)]
    if not matching:
        return Verdict("unsubscribed")
    if ledger is not None:
        return Verdict("duplicate")
    if not renotify and (now - signal.ts_event).total_seconds() > max_age_s:
        return Verdict("stale")
    event_ms = epoch_ms(signal.ts_event)
    ready = tuple(
        subscription.name
        for subscription in matching
        if not cooling_down(last_sent_ms.get(subscription.name), event_ms, subscription.cooldown_s)
    )
    if not ready:
        return Verdict("cooldown")
    return Verdict("deliver", ready)


def cooling_down(last_sent_ms: int | None, event_ms: int, cooldown_s: float) -> bool:
    """Whether a signal at ``event_ms`` falls within ``cooldown_s`` of the last delivery (either side)."""
    if last_sent_ms is None or cooldown_s <= 0:
        return False
    return abs(event_ms - last_sent_ms) < cooldown_s * 1000
