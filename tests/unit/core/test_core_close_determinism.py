"""Determinism of a close: whoever closes a window, its events are the same bytes.

The rule (docs/core.md, "Live candles and quiet feeds" → "What a close emits"): everything a close
emits — the final candle, its timeframe's snapshot and signals (ids included), the strategies'
signals on it, the running or final daily summary, and later the outcomes of those signals — is a
function of the window (or day) and its own ticks: it carries the ``ts_init`` and ``lineage`` of the
last tick folded into it, never of the record that happened to close it. The windows ending at one
instant close together and the tick whose own time closes them comes after the close. So the same
ticks closed by the instrument's own next tick, by another instrument's tick moving the partition's
stream time, or by the end of a finite input give identical events, and the per-instrument runners
(batch, backfill) write what the stream processor writes.
"""

from __future__ import annotations

import random
from collections import defaultdict

from core_support import lineage, tick
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.core.pipeline import PipelineConfig, StepOutput, SymbolProcessor
from processors.core.strategies.file import parse_strategies
from processors.core.stream_time import PartitionClock, process_in_partition
from processors.core.timeutil import to_us
from schemas.events import Tick, encode
from schemas.instruments import Instrument

KINDS = ("candles", "snapshots", "signals", "summaries", "outcomes", "rejections")
STRATEGIES = parse_strategies(
    '[strategies.minute]\ntimeframe = "1m"\nbuy = "rsi(2) < 40"\nsell = "rsi(2) > 60"\n'
    '[strategies.five]\ntimeframe = "5m"\nbuy = "close > sma(2)"\nsell = "close < sma(2)"\n',
    syntax="toml", candle_timeframes=("1m", "5m"))
# no live updates (LIVE_UPDATE_INTERVAL=0): what the batch and backfill runners run, and what the
# stream processor writes with that setting
CONFIG = PipelineConfig(candle_timeframes=("1m", "5m"), grace_ms=5_000, strategies=STRATEGIES,
                        horizons_ms=(60_000, 300_000), fee=0.001)

Streams = dict[str, dict[str, list[bytes]]]  # instrument → kind → encoded events in emission order


def add(streams: Streams, key: str, output: StepOutput) -> None:
    for kind in KINDS:
        streams[key][kind] += [encode(event) for event in getattr(output, kind)]


def new_streams() -> Streams:
    return defaultdict(lambda: {kind: [] for kind in KINDS})


def key_of(item: Tick) -> str:
    return f"{item.symbol}@{item.venue}"


def partition_run(ticks: list[Tick], config: PipelineConfig = CONFIG) -> Streams:
    """The stream processor's logic on one partition (stream time per venue), then the end of input."""
    streams = new_streams()
    processors: dict[str, SymbolProcessor] = {}
    clocks: dict[str, PartitionClock] = defaultdict(PartitionClock)

    def processor_of(key: str) -> SymbolProcessor:
        if key not in processors:
            symbol, venue = key.split("@")
            processors[key] = SymbolProcessor(config, Instrument(symbol, venue))
        return processors[key]

    last: dict[str, tuple[Tick, int]] = {}
    for offset, item in enumerate(ticks):
        key = key_of(item)
        last[key] = (item, offset)
        for other, output in process_in_partition(clocks[item.venue], key, processor_of(key), item, lineage(offset),
                                                  processor_of):
            add(streams, other, output)
    for key, (item, offset) in sorted(last.items()):
        add(streams, key, processors[key].flush(item, lineage(offset)))
    return streams


def own_time_run(ticks: list[Tick], config: PipelineConfig = CONFIG, *, stream_times: bool = False) -> Streams:
    """Each instrument alone, in log order (the batch CLI, the backfill), then the end of input.

    ``stream_times``: each tick comes with its venue's stream time on the partition before it (the highest
    event time of the venue's earlier ticks in bounds) and every instrument is brought to the partition's
    last stream time before the end — no advance between an instrument's own ticks.
    """
    streams = new_streams()
    processors: dict[str, SymbolProcessor] = {}
    stream_time: dict[str, int] = {}
    last: dict[str, tuple[Tick, int]] = {}
    for offset, item in enumerate(ticks):
        key = key_of(item)
        processor = processors.get(key)
        if processor is None:
            processor = processors[key] = SymbolProcessor(config, Instrument(item.symbol, item.venue))
        before = stream_time.get(item.venue) if stream_times else None
        output = processor.process(item, lineage(offset), before)
        add(streams, key, output)
        if stream_times and not output.rejections:
            moment = to_us(item.ts_event)
            stream_time[item.venue] = max(moment, stream_time.get(item.venue, moment))
        last[key] = (item, offset)
    for key, (item, offset) in sorted(last.items()):
        processor = processors[key]
        if stream_times:
            add(streams, key, processor.advance(stream_time[item.venue], item, lineage(offset)))
        add(streams, key, processor.flush(item, lineage(offset)))
    return streams


def eth_minute(prices: list[float]) -> list[Tick]:
    """ETH ticks of the window [23:00, 23:01), then nothing of ETH."""
    return [tick(5 + 9 * n, price, symbol="ETH-USD", n=n) for n, price in enumerate(prices)]


def closing_events(streams: Streams, key: str = "ETH-USD@test") -> dict[str, list[bytes]]:
    """What ETH's window close emitted: its final candles, snapshots and signals."""
    found = streams[key]
    return {kind: list(found[kind]) for kind in ("candles", "snapshots", "signals")}


# -- by example ------------------------------------------------------------------------------------

def test_one_window_closed_by_its_own_tick_by_another_instruments_tick_or_by_the_end_of_input():
    prices = [100.0, 101.5, 99.0, 102.0, 98.5, 103.0]
    window = eth_minute(prices)
    own = own_time_run([*window, tick(66, 104.0, symbol="ETH-USD", n=99)])  # ETH's own tick at end + grace + 1 s
    other = partition_run([*window, tick(65, 50.0, symbol="BTC-USD")])  # BTC moves the stream time to end + grace
    ended = own_time_run(window)  # the input ends: flush

    def window_close(streams: Streams) -> list[bytes]:  # the events of the 1m window [23:00, 23:01)'s close
        events = closing_events(streams)
        return [event for kind in ("candles", "snapshots", "signals") for event in events[kind]
                if b'"timeframe":"1m"' in event and b'"ts_event":"2024-03-09T23:01:00Z"' in event]

    by_own, by_other, by_end = window_close(own), window_close(other), window_close(ended)
    assert by_own == by_other == by_end
    assert len(by_own) >= 2  # its candle and its snapshot
    # every one of them carries the window's last tick (offset 5), not the record that closed it
    assert all(b'"offset":5}' in event for event in by_own)


def test_the_close_comes_before_the_tick_that_reaches_it_so_that_tick_may_score_its_signals():
    """A quiet instrument's next tick scores the outcomes of the signals its window's close emitted,
    whether the stream time or that tick's own time closed it."""
    config = PipelineConfig(candle_timeframes=("1m",), grace_ms=5_000, strategies=parse_strategies(
        '[strategies.up]\ntimeframe = "1m"\nbuy = "close > 101"\nsell = "close < 99"\n', syntax="toml",
        candle_timeframes=("1m",)), horizons_ms=(60_000,))
    minutes = [tick(10, 100.0, symbol="ETH-USD"), tick(70, 102.0, symbol="ETH-USD", n=1)]  # closes 100, then 102: BUY
    later = tick(190, 110.0, symbol="ETH-USD", n=7)  # 23:03:10, past 23:02 + 60 s: scores the 1m horizon
    log = [*minutes, tick(125, 50.0, symbol="BTC-USD"), later]
    own = own_time_run(log, config)  # each alone: the 23:01 window is closed by that very tick
    other = partition_run(log, config)  # the stream time: by BTC at 23:02:05
    assert own["ETH-USD@test"]["signals"] == other["ETH-USD@test"]["signals"]
    assert [b'"side":"BUY"' in s for s in own["ETH-USD@test"]["signals"]] == [True]
    assert own["ETH-USD@test"]["outcomes"] == other["ETH-USD@test"]["outcomes"]
    assert [b'"horizon":"1m"' in o for o in own["ETH-USD@test"]["outcomes"]] == [True]


def test_windows_of_several_ends_closed_in_one_step_emit_what_one_close_per_end_emits():
    """One record's stream time may reach several window ends (a 1m and a later 5m end): the events are
    those of closing them one end at a time, as a stream time moving in small steps does."""
    ticks = [tick(5 + 20 * n, 100.0 + (n % 5) * (-1) ** n, symbol="ETH-USD", n=n) for n in range(40)]  # 23:00 … 23:13
    one_jump = partition_run([*ticks, tick(3_000, 50.0, symbol="BTC-USD")])
    small_steps = partition_run([*ticks, *(tick(800 + 30 * n, 50.0, symbol="BTC-USD", n=n) for n in range(80))])
    for kind in ("candles", "snapshots", "signals", "summaries"):
        assert one_jump["ETH-USD@test"][kind] == small_steps["ETH-USD@test"][kind], kind


# -- by property -----------------------------------------------------------------------------------

def event_ordered(seed: int, count: int) -> list[Tick]:
    """Instruments of one venue on one partition in event order across them (ties allowed), some quiet
    for minutes, across a UTC midnight."""
    rng = random.Random(seed)
    seconds, ticks = 3_000.0, []
    for n in range(count):
        seconds += rng.choice([0.0, 0.3, 1.0, 4.0, 7.0, 30.0, 200.0])
        symbol = rng.choice(["BTC-USD", "BTC-USD", "ETH-USD", "SOL-USD"])
        ticks.append(tick(seconds, round(100 + rng.gauss(0, 3), 2), rng.choice([None, 1.5]), symbol=symbol, n=n))
    return ticks


def disordered(seed: int, count: int) -> list[Tick]:
    """The same with some ticks moved back in time: out of order within grace, late for their instrument,
    or on time for their instrument but late for their partition."""
    rng = random.Random(seed)
    ticks = event_ordered(seed, count)
    for index in rng.sample(range(len(ticks)), count // 10):
        moved = ticks[index]
        back = rng.choice([1.0, 4.0, 20.0, 90.0])
        ticks[index] = tick((to_us(moved.ts_event) - to_us(tick(0, 1.0).ts_event)) / 1e6 - back, moved.price,
                            symbol=moved.symbol, n=10_000 + index)
    return ticks


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_in_an_event_ordered_partition_the_per_instrument_runner_writes_what_the_stream_processor_writes(seed: int):
    ticks = event_ordered(seed, 400)
    assert own_time_run(ticks) == partition_run(ticks)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_given_the_partitions_stream_time_the_per_instrument_runner_writes_what_the_stream_processor_writes(
        seed: int):
    """Any order: a per-instrument runner that knows each record's stream time (a prefix maximum of the
    partition's event times) equals the stream processor, which advances quiet instruments in between."""
    ticks = disordered(seed, 400)
    assert own_time_run(ticks, stream_times=True) == partition_run(ticks)
