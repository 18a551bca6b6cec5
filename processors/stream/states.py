"""Symbol states kept in memory and written to the Quix state store once per checkpoint.

Loading a :data:`~processors.core.pipeline.SymbolState` from the store, validating it into a
:class:`~processors.core.pipeline.SymbolProcessor` and dumping it back costs several times
the pipeline step itself, so the shell does not do it per tick. :class:`SymbolStates` keeps
one processor per symbol and

- **acquires** it for a record: reused as is when it is already dirty in the current
  checkpoint's store transaction, or when the bytes in the store are exactly the bytes it
  last wrote or was loaded from (so it *is* the stored state); otherwise it is rebuilt from
  the store (another instance may have moved the symbol on, a checkpoint may have been
  aborted, the state may have been recovered from the changelog);
- **flushes** every dirty processor into its store transaction when the checkpoint commits.
  It does so as a Quix sink: ``Checkpoint.commit`` flushes sinks (step 1) before it produces
  the store changelogs and commits the Kafka transaction (steps 2-4), so the state written
  is exactly the state after the checkpoint's last processed offset — the same contract as
  calling ``state.set`` per tick, with one write per symbol per checkpoint.

Pending signal outcomes (:mod:`processors.core.outcomes`) can be many, so they are not part of
that document: they live in immutable segments under ``outcomes:<n>`` beside it, and a flush
writes only the segments that grew and deletes the ones every horizon is done with, in the same
store transaction as the document (so the changelog and the committed offsets agree: a kill -9
neither loses nor repeats an outcome).

A stored state built for another strategy or timeframe set (``IncompatibleStateError``) is
never discarded silently: unless the processor was started with ``--cold-start``, loading it
raises :class:`StateChangeRefusedError` and the processor stops before anything is committed
(docs/runs.md: deploy the new strategy as a shadow and promote it). A malformed state is reset (and counted).

With an :class:`~processors.core.admission.InstrumentPolicy`, :meth:`SymbolStates.acquire` raises
:class:`InstrumentRefusedError` (nothing is stored) for every tick of an instrument not on
``INSTRUMENT_ALLOW`` when that is set, and for a new instrument (no stored state) once its partition
has admitted its share of ``MAX_INSTRUMENTS``. The count is kept under :data:`ADMISSION_PREFIX` in
the same store transaction as the states, so it is exactly as durable as they are.

If the step raises for a tick, :meth:`SymbolStates.rebuild` restores the processor to its
state before that tick (reload the last flushed bytes, replay the checkpoint's earlier ticks
and stream-time advances of that symbol: the step is pure), so the failed tick leaves no trace.

Each partition's :class:`~processors.core.stream_time.PartitionClock` per venue (its stream time and
the instruments' deadlines, docs/core.md "Live candles and quiet feeds") is kept the same way under
:data:`CLOCK_PREFIX` (:meth:`SymbolStates.clock`, key ``clock:<venue>``) and written by the same flush, so the stream time
is exactly as durable as the states it closed windows of: after a crash or a rebalance the
partition goes on with the same stream time and deadlines, and a replay gives the same outputs.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, NoReturn, Protocol

import orjson
from quixstreams.sinks import BaseSink

from processors.core.admission import INSTRUMENT_NOT_ALLOWED, InstrumentPolicy
from processors.core.pipeline import IncompatibleStateError, SymbolProcessor
from processors.core.plain import StateFormatError
from processors.core.strategy import PipelineConfigs
from processors.core.stream_time import PartitionClock
from processors.stream.metrics import ProcessMetrics
from schemas.events import Lineage, Tick
from schemas.instruments import Instrument, InvalidInstrumentError, parse_instrument
from schemas.upcasters import decode_tick

log = logging.getLogger(__name__)

STATE_KEY = "pipeline"
"""The key of an instrument's pipeline state inside the store (the store is keyed by instrument)."""
SEGMENT_KEY = "outcomes:{}"
"""The key of segment n of an instrument's pending outcomes, beside :data:`STATE_KEY`."""

ADMISSION_PREFIX = b"\x00admission"
"""The store prefix of a partition's admission count (no instrument key starts with a NUL byte)."""
ADMITTED_KEY = "admitted"
"""The number of instruments the partition has admitted (a JSON integer) under :data:`ADMISSION_PREFIX`."""

CLOCK_PREFIX = b"\x00clock"
"""The store prefix of a partition's :class:`PartitionClock` per venue (JSON documents under :data:`CLOCK_KEY`)."""
CLOCK_KEY = "clock:{}"

DEFAULT_CAPACITY = 100_000


class StoreTransaction(Protocol):
    """The part of Quix's ``PartitionTransaction`` used here."""

    def as_state(self, prefix: Any = ..., timestamp: int | None = None) -> Any: ...


class Entry:
    """One symbol: its processor, the transaction it is dirty in, what the store holds for it."""

    __slots__ = ("processor", "transaction", "clean", "pending")

    def __init__(self, processor: SymbolProcessor, clean: bytes | None) -> None:
        self.processor = processor
        self.transaction: StoreTransaction | None = None  # set while dirty in that checkpoint
        self.clean = clean  # the stored bytes ``processor`` equals when not dirty (None: nothing stored)
        # The steps applied since ``clean``, flat, PENDING_FIELDS per step: raw value, topic, partition,
        # offset, the stream time given (-1: none), 1 for a stream-time advance (the value is then the
        # record that moved it) else 0. Kept as bytes/str/int, which the garbage collector does not
        # track, rather than as Tick objects that would survive into older generations and make every
        # collection slower.
        self.pending: list[bytes | str | int] = []


PENDING_FIELDS = 6


class ClockEntry:
    """One partition's clock, the transaction it is dirty in and the bytes the store holds for it."""

    __slots__ = ("clock", "transaction", "clean")

    def __init__(self, clock: PartitionClock, clean: bytes | None) -> None:
        self.clock = clock
        self.transaction: StoreTransaction | None = None
        self.clean = clean


def _no_op() -> None:
    return None


class StateChangeRefusedError(RuntimeError):
    """A symbol's stored state was built with another strategy or timeframe set; the message says what to do."""


class InstrumentRefusedError(Exception):
    """A new instrument's tick is refused: ``reason`` is the dead letter's code, ``detail`` what to change."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class SymbolStates(BaseSink):
    """The write-behind cache of symbol processors; registered as a sink so checkpoints flush it."""

    def __init__(self, configs: PipelineConfigs, metrics: ProcessMetrics, capacity: int = DEFAULT_CAPACITY, *,
                 cold_start: bool = False, policy: InstrumentPolicy | None = None) -> None:
        super().__init__(on_client_connect_success=_no_op)
        self.configs = configs
        self.policy = policy  # None: every instrument is admitted (tests, benchmarks)
        self.cold_start = cold_start
        self.metrics = metrics
        self.capacity = capacity
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._dirty: dict[bytes, Entry] = {}
        self._clocks: dict[tuple[int, str], ClockEntry] = {}
        self._dirty_clocks: dict[tuple[int, str], ClockEntry] = {}
        self._reset_warned: set[str] = set()
        self.flushes = 0
        self.loads = 0

    def __repr__(self) -> str:
        return f"<SymbolStates: {len(self._entries)} symbols, {len(self._dirty)} dirty>"

    def acquire(self, tick: Tick, key: bytes, transaction: StoreTransaction) -> Entry:
        """The entry of ``tick``'s instrument (state key ``key`` = ``SYMBOL@venue``), current for ``transaction``.

        Raises :class:`InstrumentRefusedError` for a new instrument the policy does not admit.
        """
        policy = self.policy
        if policy is not None and policy.allow and not policy.allows(tick.symbol, tick.venue):
            self._refuse(policy, INSTRUMENT_NOT_ALLOWED, tick, policy.per_partition)
        entry = self._entries.get(key)
        if entry is not None and entry.transaction is transaction:
            return entry
        state = transaction.as_state(prefix=key)
        stored = state.get_bytes(STATE_KEY)
        if stored is None and self.policy is not None:
            self._admit(tick, transaction)
        return self._current(Instrument(tick.symbol, tick.venue), key, entry, stored, state, transaction)

    def acquire_stored(self, key: bytes, transaction: StoreTransaction) -> Entry | None:
        """The entry of an instrument the stream time made due (it has a state), current for ``transaction``.

        None when the store holds no state for ``key`` (nothing to advance) or the key names no instrument.
        """
        entry = self._entries.get(key)
        if entry is not None and entry.transaction is transaction:
            return entry
        state = transaction.as_state(prefix=key)
        stored = state.get_bytes(STATE_KEY)
        if stored is None:
            return None
        try:
            instrument = parse_instrument(key.decode())
        except (UnicodeDecodeError, InvalidInstrumentError):
            return None
        return self._current(instrument, key, entry, stored, state, transaction)

    def clock(self, partition: int, venue: str, transaction: StoreTransaction) -> PartitionClock:
        """The stream time and deadlines of ``venue`` on ``partition``, current for ``transaction`` (written by
        :meth:`flush`)."""
        where = (partition, venue)
        entry = self._clocks.get(where)
        if entry is not None and entry.transaction is transaction:
            return entry.clock
        stored = transaction.as_state(prefix=CLOCK_PREFIX).get_bytes(CLOCK_KEY.format(venue))
        if entry is None or entry.transaction is not None or entry.clean != stored:
            try:
                clock = PartitionClock() if stored is None else PartitionClock.load(orjson.loads(stored))
            except (StateFormatError, orjson.JSONDecodeError) as error:
                log.warning("the stream time of %s on partition %d cannot be used (%s); starting it afresh", venue,
                            partition, error)
                self.metrics.state_resets.labels("malformed").inc()
                clock = PartitionClock()
            entry = self._clocks[where] = ClockEntry(clock, stored)
        entry.transaction = transaction
        self._dirty_clocks[where] = entry
        return entry.clock

    def rebuild(self, instrument: Instrument, key: bytes) -> None:
        """Undo the failed step: the processor from its last stored bytes plus this checkpoint's steps."""
        entry = self._entries[key]
        transaction = entry.transaction
        processor = self._load(instrument, entry.clean,
                               None if transaction is None else transaction.as_state(prefix=key))
        pending = entry.pending
        for index in range(0, len(pending), PENDING_FIELDS):
            value, topic, partition, offset, stream_time, advance = pending[index:index + PENDING_FIELDS]
            lineage = Lineage(topic=topic, partition=partition, offset=offset)
            tick = decode_tick(value)  # type: ignore[arg-type]
            if advance:
                processor.advance(stream_time, tick, lineage)  # type: ignore[arg-type]
            else:
                processor.process(tick, lineage, None if stream_time == -1 else stream_time)  # type: ignore[arg-type]
        entry.processor = processor

    def flush(self) -> None:
        """Write every dirty processor's state into its store transaction (checkpoint step 1)."""
        # On a partition revoke Quix runs this in a worker thread under a time budget and, if the
        # budget runs out, goes on without it: take the dirty set first and never touch an entry
        # the processing thread has acquired again meanwhile.
        dirty, self._dirty = self._dirty, {}
        clocks, self._dirty_clocks = self._dirty_clocks, {}
        for (_, venue), clock_entry in clocks.items():
            transaction = clock_entry.transaction
            if transaction is None:
                continue
            data = orjson.dumps(clock_entry.clock.dump())
            if data != clock_entry.clean:
                transaction.as_state(prefix=CLOCK_PREFIX).set_bytes(CLOCK_KEY.format(venue), data)
            if clock_entry.transaction is transaction:
                clock_entry.clean = data
                clock_entry.transaction = None
        for key, entry in dirty.items():
            transaction = entry.transaction
            if transaction is None:
                continue
            processor = entry.processor
            state = transaction.as_state(prefix=key)
            written, dropped = processor.outcomes.changes(consume=False)
            for number, segment in written.items():
                state.set_bytes(SEGMENT_KEY.format(number), orjson.dumps(segment))
            for number in dropped:
                state.delete(SEGMENT_KEY.format(number))
            data = orjson.dumps(processor.state(segments=False))
            state.set_bytes(STATE_KEY, data)
            if entry.transaction is transaction:  # else re-acquired meanwhile: its next flush writes them again
                processor.outcomes.consumed()
                entry.clean = data
                entry.transaction = None
                entry.pending.clear()
        self.flushes += 1
        excess = len(self._entries) - self.capacity
        if excess > 0:
            for key in [key for key, entry in self._entries.items() if entry.transaction is None][:excess]:
                del self._entries[key]

    def add(self, value: Any, key: Any, timestamp: int, headers: Any, topic: str, partition: int,
            offset: int) -> None:
        """Unused: records never flow into this sink; it is registered only to be flushed."""

    # -- internals -------------------------------------------------------------------------

    def _current(self, instrument: Instrument, key: bytes, entry: Entry | None, stored: bytes | None, state: Any,
                 transaction: StoreTransaction) -> Entry:
        """``entry`` when it is the stored state, else a new one loaded from ``stored``; dirty in ``transaction``."""
        if entry is None or entry.transaction is not None or entry.clean != stored:
            entry = Entry(self._load(instrument, stored, state), stored)
            self._entries[key] = entry
            self.loads += 1
        else:
            self._entries.move_to_end(key)
        entry.transaction = transaction
        self._dirty[key] = entry
        return entry

    def _admit(self, tick: Tick, transaction: StoreTransaction) -> None:
        """Count a new instrument into its partition, or raise :class:`InstrumentRefusedError`.

        "New" = no stored state and not yet acquired in this transaction: the count and the state
        are written in the same checkpoint, so an aborted checkpoint drops both.
        """
        policy = self.policy
        assert policy is not None  # noqa: S101 - called only with a policy
        counter = transaction.as_state(prefix=ADMISSION_PREFIX)
        admitted = int(counter.get(ADMITTED_KEY, 0))
        limit = policy.per_partition
        reason = policy.refusal(tick.symbol, tick.venue, admitted, limit)
        if reason is not None:
            self._refuse(policy, reason, tick, limit)
        counter.set(ADMITTED_KEY, admitted + 1)

    def _refuse(self, policy: InstrumentPolicy, reason: str, tick: Tick, limit: int) -> NoReturn:
        self.metrics.instruments_refused.labels(reason).inc()
        raise InstrumentRefusedError(reason, policy.describe(reason, f"{tick.symbol}@{tick.venue}", limit))

    def _load(self, instrument: Instrument, stored: bytes | None, state: Any) -> SymbolProcessor:
        config = self.configs.for_symbol(instrument.symbol)
        if stored is None:
            return SymbolProcessor(config, instrument)

        def read_segment(number: int) -> object:
            data = None if state is None else state.get_bytes(SEGMENT_KEY.format(number))
            return None if data is None else orjson.loads(data)

        try:
            return SymbolProcessor(config, instrument, orjson.loads(stored), read_segment)
        except (IncompatibleStateError, StateFormatError, orjson.JSONDecodeError) as error:
            reason = "incompatible" if isinstance(error, IncompatibleStateError) else "malformed"
            if reason == "incompatible" and not self.cold_start:
                raise StateChangeRefusedError(
                    f"the stored state of {instrument} was built with another strategy or candle timeframe set"
                    f" ({error}); refusing to discard it. Keep the previous strategy and timeframes and deploy the"
                    " new ones warm: `stockstream strategy deploy FILE --shadow`, then `stockstream strategy promote"
                    " ID` (docs/runs.md); or restart with --cold-start (PROCESS_COLD_START=true) to start the"
                    " affected symbols afresh"
                ) from None
            self.metrics.state_resets.labels(reason).inc()
            if instrument.text not in self._reset_warned:
                self._reset_warned.add(instrument.text)
                log.warning("state of %s cannot be used (%s); starting it afresh", instrument, error)
            return SymbolProcessor(config, instrument)
