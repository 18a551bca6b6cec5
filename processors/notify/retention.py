"""The delivery ledger forgets what can never be sent again: bounded size, no re-send inside the window.

A lane writes every ledger entry through :class:`LedgerRetention.remember`, into the state of the
signal's key (its instrument). Beside the entries (``ledger:<signal_id>``, unchanged) the key holds

- ``ledger-index`` → ``{minute: chunks}``: the minutes (epoch ms // 60 000) of the event times of
  the signals with entries, and how many id chunks each has;
- ``ledger-ids:<minute>:<chunk>`` → the signal ids of that minute, newline-separated, at most
  :data:`CHUNK` per value (so an append never rewrites more than one chunk).

Before each checkpoint commits, the lane flushes the ids of the entries it wrote in it and drops
the minutes that ended more than ``2 × NOTIFY_MAX_AGE_S`` before ``now`` — their entries, id lists
and index lines — in that checkpoint's transaction (the changelog carries the deletes, so a restart
or another instance sees the same ledger). One index read and write per instrument and checkpoint,
not per signal.

Why this never lets a signal be sent twice: a signal is delivered only while its age is at most
``NOTIFY_MAX_AGE_S`` (:func:`processors.notify.ledger.decide`); its entry is dropped only once
its event time is more than twice that before the lane's clock, so from then on every decision
about it, on any instance whose clock is less than ``NOTIFY_MAX_AGE_S`` behind, is ``stale``. The
ledger of an instrument holds at most its signals of the last ``2 × NOTIFY_MAX_AGE_S`` plus one
minute, and whatever was written in the checkpoint of its last signal. A ``--renotify`` run ignores the age limit,
so its (one-run) ledger is never pruned.

Pure apart from the state passed in; called on the lane's main thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from processors.notify.ledger import LedgerEntry, epoch_ms, ledger_key
from schemas.events import Signal

BUCKET_MS = 60_000
CHUNK = 128
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
    """Writes ledger entries and, once per checkpoint, indexes them and drops those older than ``2 × max_age_s``.

    ``remember`` writes the entry at once (a later record of the same checkpoint must find it) and
    notes its id; ``flush`` (called by the lane before the checkpoint commits) writes the noted ids
    and prunes, one index read and write per instrument and checkpoint. ``discard`` forgets the
    notes of a checkpoint that is aborted. ``prune=False`` (a renotify run): entries only.
    """

    def __init__(self, max_age_s: float, *, prune: bool = True) -> None:
        self.keep_ms = int(2 * max_age_s * 1000)
        self.prune = prune
        self._noted: dict[Any, tuple[LedgerState, list[tuple[int, str]]]] = {}

    def remember(self, state: LedgerState, key: Any, signal: Signal, entry: LedgerEntry) -> None:
        """Record ``entry`` for ``signal`` in ``state`` (the state of the signal's record ``key``)."""
        state.set(ledger_key(signal.signal_id), entry.to_state())
        if self.prune:
            noted = self._noted.get(key)
            if noted is None:
                noted = self._noted[key] = (state, [])
            noted[1].append((epoch_ms(signal.ts_event) // BUCKET_MS, signal.signal_id))

    def discard(self) -> None:
        self._noted.clear()

    def flush(self, now: datetime) -> int:
        """Index the entries remembered since the last flush and drop the expired ones; returns how many."""
        noted, self._noted = self._noted, {}
        horizon = epoch_ms(now) - self.keep_ms
        return sum(self._flush_key(state, ids, horizon) for state, ids in noted.values())

    @classmethod
    def _flush_key(cls, state: LedgerState, ids: list[tuple[int, str]], horizon: int) -> int:
        raw = state.get(INDEX_KEY)
        index: dict[str, int] = dict(raw) if isinstance(raw, dict) else {}
        dropped = 0
        for name in [name for name in index if (int(name) + 1) * BUCKET_MS <= horizon]:
            dropped += cls._drop(state, int(name), int(index.pop(name)))
        by_bucket: dict[int, list[bytes]] = {}
        for bucket, signal_id in ids:
            by_bucket.setdefault(bucket, []).append(signal_id.encode())
        for bucket, new in by_bucket.items():
            chunks = int(index.get(str(bucket), 0))
            held = state.get_bytes(ids_key(bucket, chunks - 1)) if chunks else None
            lines = held.split(b"\n") if held else []
            if not chunks:
                chunks = 1
            for signal_id in new:
                if len(lines) >= CHUNK:  # the chunk is full: write it, start the next one
                    state.set_bytes(ids_key(bucket, chunks - 1), b"\n".join(lines))
                    chunks, lines = chunks + 1, []
                lines.append(signal_id)
            state.set_bytes(ids_key(bucket, chunks - 1), b"\n".join(lines))
            index[str(bucket)] = chunks
        state.set(INDEX_KEY, index)
        return dropped

    @staticmethod
    def _drop(state: LedgerState, bucket: int, chunks: int) -> int:
        dropped = 0
        for chunk in range(chunks):
            key = ids_key(bucket, chunk)
            held = state.get_bytes(key)
            if held:
                for signal_id in held.split(b"\n"):
                    state.delete(ledger_key(signal_id.decode()))
                    dropped += 1
            state.delete(key)
        return dropped
