"""Live candles and quiet feeds: forming candles, throttled updates and closing windows by partition stream time.

The rule under test (docs/core.md, "Live candles and quiet feeds"): a partition's stream time is the
highest event time accepted on it; an instrument's windows close when it passes their end + grace,
whoever's tick moved it; forming candles and running summaries go out at most once per
``live_update_ms`` of stream time per instrument, and the final event of a window or day is never
lost. Everything is a function of the partition's records in order: a replay, or a run split
anywhere with its states passed through JSON, gives byte-equal outputs.
"""

from __future__ import annotations

import json
import random

import orjson
from core_support import at, lineage, tick
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.core.pipeline import PipelineConfig, StepOutput, SymbolProcessor
from processors.core.strategies.file import parse_strategies
from processors.core.stream_time import PartitionClock, process_in_partition
from processors.core.timeutil import to_us
from schemas.events import Candle, DailySummary, Event, Tick, encode
from schemas.instruments import Instrument

LIVE = PipelineConfig(candle_timeframes=("1m", "5m"), grace_ms=5_000, live_update_ms=1_000)
QUIET = PipelineConfig(candle_timeframes=("1m", "5m"), grace_ms=5_000)  # no live updates: the batch runners'


def events(output: StepOutput) -> list[Event]:
    return [*output.candles, *output.snapshots, *output.signals, *output.summaries, *output.outcomes,
            *output.rejections]


class Partition:
    """An in-memory runner of one partition: what the stream processor does per record, without Kafka."""

    def __init__(self, config: PipelineConfig, stored: bytes | None = None) -> None:
        self.config = config
        self.processors: dict[str, SymbolProcessor] = {}
        self.clocks: dict[str, PartitionClock] = {}  # by venue
        if stored is not None:  # a restart: every state and the clocks from JSON text
            plain = orjson.loads(stored)
            self.clocks = {venue: PartitionClock.load(clock) for venue, clock in plain["clocks"].items()}
            for key, state in plain["states"].items():
                symbol, venue = key.split("@")
                self.processors[key] = SymbolProcessor(config, Instrument(symbol, venue), state)

    def processor(self, key: str) -> SymbolProcessor:
        found = self.processors.get(key)
        if found is None:
            symbol, venue = key.split("@")
            found = self.processors[key] = SymbolProcessor(self.config, Instrument(symbol, venue))
        return found

    def feed(self, item: Tick, offset: int) -> list[tuple[str, StepOutput]]:
        key = f"{item.symbol}@{item.venue}"
        clock = self.clocks.setdefault(item.venue, PartitionClock())
        return process_in_partition(clock, key, self.processor(key), item, lineage(offset), self.processor)

    def dump(self) -> bytes:
        return orjson.dumps({"clocks": {venue: clock.dump() for venue, clock in sorted(self.clocks.items())},
                             "states": {key: p.state() for key, p in sorted(self.processors.items())}})


def run(config: PipelineConfig, ticks: list[Tick], split: int | None = None) -> list[bytes]:
    """Every output of the partition, encoded, in emission order (``split``: restart from JSON there)."""
    partition = Partition(config)
    out: list[bytes] = []
    for offset, item in enumerate(ticks):
        if offset == split:
            partition = Partition(config, partition.dump())
        for key, output in partition.feed(item, offset):
            out += [key.encode() + b" " + encode(event) for event in events(output)]
    return out


def candles_of(outputs: list[tuple[str, StepOutput]], symbol: str) -> list[Candle]:
    return [c for key, output in outputs if key.startswith(symbol + "@") for c in output.candles]


# -- the rule, example by example ------------------------------------------------------------------

def test_a_quiet_symbols_window_is_closed_by_another_symbols_tick_once_stream_time_passes_end_plus_grace():
    partition = Partition(LIVE)
    partition.feed(tick(10, 100.0, symbol="ETH-USD"), 0)  # 23:00:10, window [23:00, 23:01)
    partition.feed(tick(20, 101.0, symbol="ETH-USD"), 1)
    offset = 2
    for seconds in range(21, 65):  # BTC ticks up to 23:01:04: stream time below end + grace (23:01:05)
        assert candles_of(partition.feed(tick(seconds, 50.0), offset), "ETH-USD") == []
        offset += 1
    outputs = partition.feed(tick(65, 50.0), offset)  # 23:01:05: reaches end + grace
    [final] = candles_of(outputs, "ETH-USD")
    assert final.final and final.ts_open == at(0) and final.ts_close == at(60)
    assert (final.open, final.high, final.low, final.close, final.trade_count) == (100.0, 101.0, 100.0, 101.0, 2)
    # it carries its last tick (offset 1), not the BTC record that moved the stream time (docs/core.md)
    assert final.lineage == lineage(1) and final.ts_event == at(60)
    eth = [output for key, output in outputs if key.startswith("ETH-USD@")]
    assert [s.timeframe for s in eth[0].snapshots] == ["1m"]  # its indicators ran on the closed candle
    # the ETH window is closed now: an ETH tick of it is late, though ETH's own latest tick is older
    [(_, late)] = partition.feed(tick(30, 99.0, symbol="ETH-USD"), offset + 1)
    assert [r.reason for r in late.rejections] == ["late"] and not late.candles


def test_without_live_updates_a_candle_closed_by_stream_time_brings_its_running_summary():
    partition = Partition(QUIET)  # LIVE_UPDATE_INTERVAL=0: running summaries follow the smallest candle's closes
    partition.feed(tick(10, 100.0, symbol="ETH-USD"), 0)
    for n, seconds in enumerate(range(11, 66)):
        outputs = partition.feed(tick(seconds, 50.0, n=n), n + 1)
    eth = [output for key, output in outputs if key.startswith("ETH-USD@")]
    assert [(c.final, c.timeframe) for c in eth[0].candles] == [(True, "1m")]
    assert [(s.final, s.tick_count) for s in eth[0].summaries] == [(False, 1)]
    assert all(c.final for _, output in outputs for c in output.candles)  # no forming candle without live updates


def test_each_venue_of_a_partition_has_its_own_stream_time():
    """A feed that runs behind (the composite index written back late, a slower venue) is not late."""
    partition = Partition(LIVE)
    partition.feed(tick(10, 100.0, symbol="ETH-USD", venue="slow"), 0)
    for n in range(120):  # the fast venue runs two minutes ahead
        partition.feed(tick(n, 50.0, n=n, venue="fast"), n + 1)
    outputs = partition.feed(tick(30, 101.0, symbol="ETH-USD", venue="slow"), 200)  # 90 s behind the fast venue
    [(key, output)] = outputs
    assert key == "ETH-USD@slow" and not output.rejections  # accepted
    assert [c.final for c in output.candles] == [False, False]  # its 1m and 5m windows still forming
    outputs = partition.feed(tick(66, 9.0, symbol="SOL-USD", venue="slow"), 201)  # the slow venue's time moves
    [final] = candles_of(outputs, "ETH-USD")
    assert final.final and final.trade_count == 2 and final.lineage == lineage(200)  # its last tick's


def test_without_a_stream_time_only_the_symbols_own_ticks_close_its_windows():
    eth = SymbolProcessor(QUIET, Instrument("ETH-USD", "test"))
    assert eth.process(tick(10, 100.0, symbol="ETH-USD"), lineage(0)).candles == []
    assert eth.process(tick(30, 99.0, symbol="ETH-USD"), lineage(1)).candles == []  # still open: no one closed it
    [final] = eth.process(tick(70, 98.0, symbol="ETH-USD"), lineage(2)).candles
    assert final.final and final.close == 99.0


def test_forming_candles_and_the_running_summary_go_out_at_most_once_a_second_of_stream_time():
    partition = Partition(LIVE)
    sent: list[tuple[float, Event]] = []
    for n in range(50):  # a tick every 0.1 s for 5 s
        for _, output in partition.feed(tick(n / 10, 100.0 + n, symbol="BTC-USD", n=n), n):
            sent += [(n / 10, e) for e in (*output.candles, *output.summaries)]
    forming = [(t, e) for t, e in sent if isinstance(e, Candle)]
    assert all(not e.final for _, e in forming)
    assert [t for t, e in forming if e.timeframe == "1m"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [t for t, e in sent if isinstance(e, DailySummary)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    last_candle = next(e for t, e in reversed(forming) if e.timeframe == "1m")
    assert (last_candle.close, last_candle.trade_count, last_candle.ts_event) == (140.0, 41, at(4.0))
    assert all(not e.final for _, e in sent if isinstance(e, DailySummary))


def test_the_last_update_is_never_lost_the_windows_final_state_goes_out_as_final():
    partition = Partition(LIVE)
    outputs = []
    for n in range(20):  # 23:00:50.0 … 23:00:59.5, every 0.5 s: half of the changes are throttled
        outputs += partition.feed(tick(50 + n / 2, 100.0 + n, n=n), n)
    # the last change (23:00:59.5) waits for the throttle; ETH's ticks then move the stream time on
    outputs += partition.feed(tick(60.2, 7.0, symbol="ETH-USD"), 20)  # due: the pending update goes out
    btc = candles_of(outputs, "BTC-USD")
    assert btc[-1].timeframe == "5m" and not btc[-1].final and btc[-1].close == 119.0 and btc[-1].trade_count == 20
    outputs = partition.feed(tick(65, 7.0, symbol="ETH-USD"), 21)  # 1m end + grace: the final candle
    [final] = candles_of(outputs, "BTC-USD")
    assert final.final and final.timeframe == "1m" and final.close == 119.0 and final.trade_count == 20


def test_a_quiet_symbols_day_is_closed_by_stream_time_past_midnight_plus_grace():
    partition = Partition(LIVE)
    partition.feed(tick(3_000, 10.0, symbol="ETH-USD"), 0)  # 23:50
    summaries = []
    for n, seconds in enumerate((3_590, 3_601, 3_604, 3_605, 3_606)):  # BTC across midnight (+3600 s)
        for key, output in partition.feed(tick(seconds, 20.0, n=n), n + 1):
            summaries += [(seconds, key, s) for s in output.summaries]
    eth_final = [(seconds, s) for seconds, key, s in summaries if key.startswith("ETH-USD@") and s.final]
    assert [(seconds, s.date.isoformat(), s.tick_count) for seconds, s in eth_final] == [(3_605, "2024-03-09", 1)]
    [(_, late)] = partition.feed(tick(3_599, 11.0, symbol="ETH-USD"), 9)  # its day is closed
    assert [r.reason for r in late.rejections] == ["late"]


def test_strategies_and_candle_indicators_see_only_closed_candles_whatever_the_live_interval():
    strategies = parse_strategies('[strategies.minute]\ntimeframe = "1m"\nbuy = "rsi(2) < 40"\nsell = "rsi(2) > 60"\n',
                                  syntax="toml", candle_timeframes=("1m",))
    rng = random.Random(3)
    ticks = [tick(n * 7.0, round(100 * (1 + rng.gauss(0, 0.01)), 2), n=n) for n in range(600)]
    by_interval = {}
    for interval in (0, 1_000, 60_000):
        config = PipelineConfig(candle_timeframes=("1m",), strategies=strategies, live_update_ms=interval)
        outs: list[StepOutput] = []
        partition = Partition(config)
        for offset, item in enumerate(ticks):
            outs += [o for _, o in partition.feed(item, offset)]
        by_interval[interval] = (
            [encode(s) for o in outs for s in o.signals],
            [encode(s) for o in outs for s in o.snapshots],
            [encode(c) for o in outs for c in o.candles if c.final],
        )
    assert by_interval[0] == by_interval[1_000] == by_interval[60_000]
    assert by_interval[0][0]  # the strategy fired


# -- the batch runners agree on final candles ------------------------------------------------------

def interleaved(seed: int, count: int) -> list[Tick]:
    """Three instruments on one partition, in event order across them, one of them often quiet."""
    rng = random.Random(seed)
    seconds, ticks = 0.0, []
    for n in range(count):
        seconds += rng.choice([0.2, 1.0, 4.0, 30.0, 200.0])
        symbol = rng.choice(["BTC-USD", "BTC-USD", "ETH-USD", "SOL-USD"] if rng.random() < 0.9 else ["SOL-USD"])
        ticks.append(tick(seconds, round(100 + rng.gauss(0, 3), 2), rng.choice([None, 1.5]), symbol=symbol, n=n))
    return ticks


def test_closes_equal_the_per_instrument_runners_byte_for_byte_in_an_event_ordered_partition():
    """What the closes emit does not depend on who closed them (tests/unit/core/test_core_close_determinism.py):
    the stream processor with live updates writes the per-instrument runner's final candles, snapshots and
    signals, byte for byte and in the same order per instrument, the end of input included."""
    ticks = interleaved(11, 3_000)
    keys = ("BTC-USD", "ETH-USD", "SOL-USD")
    live: dict[str, list[bytes]] = {s: [] for s in keys}
    partition = Partition(LIVE)
    for offset, item in enumerate(ticks):
        for key, output in partition.feed(item, offset):
            live[key.split("@")[0]] += [encode(e) for e in (*output.candles, *output.snapshots, *output.signals)
                                        if not isinstance(e, Candle) or e.final]
    batch: dict[str, list[bytes]] = {s: [] for s in keys}
    processors = {s: SymbolProcessor(QUIET, Instrument(s, "test")) for s in keys}
    for offset, item in enumerate(ticks):
        output = processors[item.symbol].process(item, lineage(offset))
        batch[item.symbol] += [encode(e) for e in (*output.candles, *output.snapshots, *output.signals)]
    for symbol in keys:
        last = max(offset for offset, t in enumerate(ticks) if t.symbol == symbol)
        for runner, found in ((partition.processors[f"{symbol}@test"], live), (processors[symbol], batch)):
            output = runner.flush(ticks[last], lineage(last))
            found[symbol] += [encode(e) for e in (*output.candles, *output.snapshots, *output.signals)]

    def by_kind(events: list[bytes]) -> tuple[list[bytes], ...]:
        return tuple([e for e in events if marker in e] for marker in (b'"trade_count"', b'"values"', b'"signal_id"'))

    for symbol in keys:
        assert by_kind(live[symbol]) == by_kind(batch[symbol]), symbol
    assert sum(len(events) for events in batch.values()) > 1_000


# -- determinism -----------------------------------------------------------------------------------

def test_a_replay_of_the_partition_gives_byte_equal_outputs():
    ticks = interleaved(5, 2_000)
    first, second = run(LIVE, ticks), run(LIVE, ticks)
    assert first == second
    assert any(b'"final":false' in line for line in first) and any(b'"final":true' in line for line in first)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), split=st.floats(0, 1))
def test_a_run_restarted_anywhere_from_its_json_state_gives_byte_equal_outputs(seed: int, split: float):
    rng = random.Random(seed)
    ticks = interleaved(seed, 300)
    for index in rng.sample(range(len(ticks)), 15):  # some late and out-of-order ticks
        moved = ticks[index]
        ticks[index] = tick((to_us(moved.ts_event) - to_us(at(0))) / 1e6 - rng.uniform(0, 60), moved.price,
                            symbol=moved.symbol, n=10_000 + index)
    assert run(LIVE, ticks, split=int(split * len(ticks))) == run(LIVE, ticks)


# -- the clock -------------------------------------------------------------------------------------

def test_the_partition_clock_hands_out_due_instruments_earliest_deadline_first_then_by_key():
    clock = PartitionClock()
    clock.schedule("B@x", 30)
    clock.schedule("A@x", 30)
    clock.schedule("C@x", 10)
    clock.schedule("D@x", 50)
    clock.schedule("C@x", 20)  # moved: the old entry is stale
    assert clock.due() == []  # no stream time yet
    clock.observe(40)
    clock.observe(35)  # never goes back
    assert clock.stream_time == 40
    restored = PartitionClock.load(json.loads(json.dumps(clock.dump())))
    assert clock.due() == restored.due() == ["C@x", "A@x", "B@x"]
    assert clock.deadlines == {"D@x": 50} and clock.due() == []
    clock.schedule("D@x", None)
    clock.observe(60)
    assert clock.due() == []
