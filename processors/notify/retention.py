"""The delivery ledger forgets what can never be sent again: bounded size, no re-send inside the window.

A lane writes every ledger entry through :class:`LedgerRetention.remember`, into the state of the
signal's key (its instrument). Beside the entries (``ledger:<signal_id>``, unchanged) the key holds

- ``ledger-index`` → ``{minute: count}``: how many entries were written for signals whose event
  time falls in that minute (epoch ms // 60 000);
- ``ledger-ids:<minute>:<chunk>`` → the signal ids of that minute, newline-separated, at most
  :data:`CHUNK` per value (so an append never rewrites more than one chunk).

Each ``remember`` first drops the minutes that ended more than ``2 × NOTIFY_MAX_AGE_S`` before
``now`` — their entries, id lists and index lines — in the same checkpoint transaction as the new
entry (the changelog carries the deletes, so a restart or another instance sees the same ledger).

Why this never lets a signal be sent twice: a signal is delivered only while its age is at most
``NOTIFY_MAX_AGE_S`` (:func:`processors.notify.ledger.decide`); its entry is dropped only once
its event time is more than twice that before the lane's clock, so from then on every decision
about it, on any instance whose clock is less than ``NOTIFY_MAX_AGE_S`` behind, is ``stale``. The
ledger of an instrument holds at most its signals of the last ``2 × NOTIFY_MAX_AGE_S`` plus one
minute, and whatever was written at its last signal. A ``--renotify`` run ignores the age limit,
so its (one-run) ledger is never pruned.

Pure apart from the state passed in; called on the lane's main thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from processors.notify.ledger import LedgerEntry, epoch_ms, ledger_key
from schemas.events import Signal

BUCKET_MS = 60_000
CHUNK = 1024
INDEX_KEY = "ledger-index"


def ids_key(bucket: int, chunk: int) -> str:
    return f"ledger-ids:{bucket}:{chunk}"


class LedgerState(Protocol):
    """The part of a Quix ``State`` the ledger uses."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...
    def get_bytes(self, key: str, default: bytes | None = None) -> bytes | None: ...
    def set_bytes(self, key: str, value: bytes) -> None: ...
    def delete(self, key: str) -> None: ...


class LedgerRetention:
    """Writes ledger entries and drops those older than ``2 × max_age_s`` (``prune=False``: never)."""

    def __init__(self, max_age_s: float, *, prune: bool = True) -> None:
        self.keep_ms = int(2 * max_age_s * 1000)
        self.prune = prune

    def remember(self, state: LedgerState, signal: Signal, entry: LedgerEntry, now: datetime) -> int:
        """Record ``entry`` for ``signal``; returns how many older entries were dropped."""
        state.set(ledger_key(signal.signal_id), entry.to_state())
        if not self.prune:
            return 0
        raw = state.get(INDEX_KEY)
        index: dict[str, int] = dict(raw) if isinstance(raw, dict) else {}
        horizon = epoch_ms(now) - self.keep_ms
        dropped = 0
        for name in [name for name in index if (int(name) + 1) * BUCKET_MS <= horizon]:
            dropped += self._drop(state, int(name), int(index.pop(name)))
        bucket = epoch_ms(signal.ts_event) // BUCKET_MS
        count = int(index.get(str(bucket), 0))
        key = ids_key(bucket, count // CHUNK)
        held = state.get_bytes(key) if count % CHUNK else None
        state.set_bytes(key, signal.signal_id.encode() if held is None else held + b"\n" + signal.signal_id.encode())
        index[str(bucket)] = count + 1
        state.set(INDEX_KEY, index)
        return dropped

    @staticmethod
    def _drop(state: LedgerState, bucket: int, count: int) -> int:
        dropped = 0
        for chunk in range(-(-count // CHUNK)):
            key = ids_key(bucket, chunk)
            held = state.get_bytes(key)
            if held:
                for signal_id in held.split(b"\n"):
                    state.delete(ledger_key(signal_id.decode()))
                    dropped += 1
            state.delete(key)
        return dropped
