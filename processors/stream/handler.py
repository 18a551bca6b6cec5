"""One ``ticks`` record → the records to produce. The heart of the shell.

:class:`TickHandler` is called by the Quix dataframe (see :mod:`processors.stream.topology`)
once per input record, in partition order, with the state-store transaction of the record's
partition. It

1. decodes the record (:func:`processors.stream.records.decode_tick`); poison becomes a
   dead letter for the ticks DLQ (key = source), no state is touched;
2. takes the instrument's (``SYMBOL@venue``) :class:`~processors.core.pipeline.SymbolProcessor`
   from :class:`~processors.stream.states.SymbolStates` (which writes it back to the store when
   the checkpoint commits) and runs the one pipeline step — or, for an instrument not on
   ``INSTRUMENT_ALLOW`` or new beyond its partition's share of ``MAX_INSTRUMENTS``
   (:mod:`processors.core.admission`), makes the tick a dead letter and touches no state;
3. keeps the stream time of each venue on the partition (:class:`~processors.core.stream_time.PartitionClock`,
   from ``SymbolStates.clock``): the step gets its venue's stream time before the tick, an accepted tick moves it,
   and every instrument whose deadline it reached — a window end + grace, a UTC day, a throttled live
   update — is then advanced to it (:meth:`~processors.core.pipeline.SymbolProcessor.advance`), in the
   order of :func:`processors.core.stream_time.advance_partition`: so other instruments' ticks close a
   quiet instrument's windows, the same way on every replay;
4. returns an :class:`~processors.stream.emission.Emission` per derived event (key =
   the instrument, also for a v1 input tick keyed by its symbol; encoded by :func:`~processors.stream.encoding.encode_derived`, the same bytes as
   ``schemas.events.encode``) and per rejection (``late`` …, to the DLQ), and updates the metrics.

It never raises for a record: an unexpected error in the step is logged with its traceback,
the instrument's state is restored to before that tick and the tick goes to the DLQ as
``processing_failed``; an error in another instrument's advance is logged, that instrument is
restored and its deadline dropped (its next tick schedules it again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from processors.core.pipeline import StepOutput
from processors.core.stream_time import PartitionClock
from processors.core.timeutil import to_us
from processors.stream import reasons
from processors.stream.emission import Emission, NamedTopic
from processors.stream.encoding import encode_derived, lineage_of
from processors.stream.metrics import ProcessMetrics
from processors.stream.records import decode_tick, raw_text, record_time
from processors.stream.states import InstrumentRefusedError, StoreTransaction, SymbolStates
from schemas.events import DeadLetter, Tick, encode
from schemas.instruments import Instrument, instrument_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputTopics:
    """Where each kind of derived event goes (Quix ``Topic`` handles, named)."""

    indicators: NamedTopic
    signals: NamedTopic
    candles: Mapping[str, NamedTopic]  # by candle timeframe
    aggregates_daily: NamedTopic
    outcomes: NamedTopic
    dead_letters: NamedTopic


class TickHandler:
    """Per-record logic of the processor; symbol states live in :class:`SymbolStates`, metrics in ``metrics.hot``."""

    def __init__(self, states: SymbolStates, outputs: OutputTopics, metrics: ProcessMetrics,
                 now: Callable[[], float] = time.time) -> None:
        self.states = states
        self.outputs = outputs
        self.metrics = metrics
        self.hot = metrics.hot
        self.now = now

    def handle(self, value: bytes | None, key: bytes | None, timestamp_ms: int, transaction: StoreTransaction,
               topic: str, partition: int, offset: int) -> list[Emission]:
        """Process one record at ``topic[partition]@offset``; returns what to produce, in order."""
        consumed = self.hot.consumed
        consumed[topic] = consumed.get(topic, 0) + 1
        lineage = lineage_of(topic, partition, offset)
        decoded = decode_tick(value, key, timestamp_ms, lineage)
        if isinstance(decoded, DeadLetter):
            return [self._dead_letter(decoded)]
        tick = decoded
        assert key is not None and value is not None  # noqa: S101 - decode_tick made dead letters of those
        if b"@" not in key:  # a v1 tick, keyed by its symbol alone: state and outputs go by the instrument
            key = instrument_key(tick.symbol, tick.venue)
        try:
            entry = self.states.acquire(tick, key, transaction)
        except InstrumentRefusedError as refused:  # not allowed, or new beyond the limit: no state is touched
            return [self._dead_letter(DeadLetter(
                source=tick.source, reason=refused.reason, detail=refused.detail, raw=raw_text(value),
                ts_init=record_time(timestamp_ms), origin=lineage,
            ))]
        clock = self.states.clock(partition, tick.venue, transaction)
        stream_time = clock.stream_time
        processor = entry.processor
        try:
            output = processor.process(tick, lineage, stream_time)
        except Exception as error:  # noqa: BLE001 - a bug must not stop the stream; the tick is kept
            log.exception("pipeline step failed for %s@%s at %s[%d]@%d", tick.symbol, tick.venue, topic, partition,
                          offset)
            self.states.rebuild(Instrument(tick.symbol, tick.venue), key)
            return [self._dead_letter(DeadLetter(
                source=tick.source, reason=reasons.PROCESSING_FAILED,
                detail=f"{type(error).__name__}: {error}"[:500], raw=raw_text(value),
                ts_init=record_time(timestamp_ms), origin=lineage,
            ))]
        entry.pending += (value, topic, partition, offset, -1 if stream_time is None else stream_time, 0)
        if not output.rejections:
            clock.observe(to_us(tick.ts_event))
        clock.schedule(key.decode(), processor.deadline())
        emissions = self._emissions(tick, key, output)
        if clock.deadlines:
            for other in clock.due():
                emissions += self._advance(other, clock, tick, value, transaction, topic, partition, offset)
        return emissions

    def _advance(self, other: str, clock: PartitionClock, tick: Tick, value: bytes, transaction: StoreTransaction,
                 topic: str, partition: int, offset: int) -> list[Emission]:
        """Bring instrument ``other`` to the stream time ``tick`` (another instrument's) moved the partition to."""
        key = other.encode()
        entry = self.states.acquire_stored(key, transaction)
        if entry is None:  # its state is gone (reset): nothing to close
            return []
        now = clock.stream_time
        assert now is not None  # noqa: S101 - due() is empty without a stream time
        lineage = lineage_of(topic, partition, offset)
        try:
            output = entry.processor.advance(now, tick, lineage)
        except Exception:  # noqa: BLE001 - a bug must not stop the stream
            log.exception("stream-time advance failed for %s at %s[%d]@%d", other, topic, partition, offset)
            self.states.rebuild(entry.processor.instrument, key)
            return []
        entry.pending += (value, topic, partition, offset, now, 1)
        clock.schedule(other, entry.processor.deadline())
        return self._emissions(tick, key, output, latency=False)

    # -- internals -------------------------------------------------------------------------

    def _emissions(self, tick: Tick, key: bytes, output: StepOutput, latency: bool = True) -> list[Emission]:
        outputs = self.outputs
        hot = self.hot
        produced = hot.produced
        snapshots = output.snapshots
        topic = outputs.indicators
        emissions = [Emission(topic, key, encode_derived(snapshot)) for snapshot in snapshots]
        tracked = key in hot.symbols or hot.tracks(key)
        if snapshots:
            produced[topic.name] = produced.get(topic.name, 0) + len(snapshots)
            if tracked:
                for snapshot in snapshots:
                    hot.latest[(snapshot.symbol, snapshot.venue, snapshot.timeframe)] = (snapshot.price, snapshot.values)
        if output.candles:
            for candle in output.candles:
                topic = outputs.candles[candle.timeframe]
                emissions.append(Emission(topic, key, encode_derived(candle)))
                produced[topic.name] = produced.get(topic.name, 0) + 1
        if output.signals:
            signals = hot.signals
            topic = outputs.signals
            for signal in output.signals:
                emissions.append(Emission(topic, key, encode_derived(signal)))
                labels = (signal.rule, signal.side, signal.timeframe)
                signals[labels] = signals.get(labels, 0) + 1
                if tracked:
                    per_symbol = (signal.symbol, signal.venue, signal.timeframe, signal.rule, signal.side)
                    hot.symbol_signals[per_symbol] = hot.symbol_signals.get(per_symbol, 0) + 1
            produced[topic.name] = produced.get(topic.name, 0) + len(output.signals)
        if output.summaries:
            topic = outputs.aggregates_daily
            for summary in output.summaries:
                emissions.append(Emission(topic, key, encode_derived(summary)))
            produced[topic.name] = produced.get(topic.name, 0) + len(output.summaries)
        if output.outcomes:
            topic = outputs.outcomes
            for outcome in output.outcomes:
                emissions.append(Emission(topic, key, encode_derived(outcome)))
            produced[topic.name] = produced.get(topic.name, 0) + len(output.outcomes)
        if output.rejections:
            for rejection in output.rejections:
                emissions.append(self._dead_letter(rejection))
        elif emissions and latency:
            hot.observe_latency(max(0.0, self.now() - tick.ts_init.timestamp()))
        if output.out_of_order:
            hot.out_of_order += 1
        return emissions

    def _dead_letter(self, letter: DeadLetter) -> Emission:
        hot = self.hot
        hot.dead_letters[letter.reason] = hot.dead_letters.get(letter.reason, 0) + 1
        if letter.reason != reasons.PROCESSING_FAILED:
            log.debug("dead letter %s at %s: %s", letter.reason, letter.origin, letter.detail)
        topic = self.outputs.dead_letters
        hot.produced[topic.name] = hot.produced.get(topic.name, 0) + 1
        return Emission(topic, letter.source.encode(), encode(letter))
