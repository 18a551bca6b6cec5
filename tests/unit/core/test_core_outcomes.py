"""Signal outcomes (processors/core/outcomes.py through the pipeline) against pandas on the definition.

The definition (docs/core.md, "Scorecards"): for a signal emitted while the pipeline processed the
tick at log position o, at horizon h, the outcome is the first *accepted* tick of the instrument at
a log position > o (≥ o for a close's signal: the close comes before the tick that reached it) whose
event time is ≥ signal time + h; return = side · (p / p_signal − 1) with
side +1 for BUY, −1 for SELL, net = return − fee. A signal with no such tick has no outcome (yet).

The reference below computes exactly that with pandas from the pipeline's own signals and the
accepted ticks, independently of the heap/segment bookkeeping; the pipeline's outcomes must be
equal as a set (ids, prices, times, returns bit for bit) and arrive in log order. Series mix
in-order ticks, late and out-of-order ones, and gaps longer than every horizon. The state is
also carried through JSON and through the segment store (segments kept apart, as the stream
processor's state store keeps them) at every tick, and must give the same events.
"""

from __future__ import annotations

import json
import math
import random

import pandas as pd
from core_support import lineage, tick
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.core.indicators import IndicatorSpec
from processors.core.outcomes import SEGMENT, Pending, PendingOutcomes, horizon_label, horizon_ms
from processors.core.pipeline import PipelineConfig, SymbolProcessor, step
from processors.core.rules import EmaCross, RsiReversal, RuleSpec, SeedRsiEma
from processors.core.strategies.file import parse_strategies
from processors.core.timeutil import to_us
from schemas.events import Tick, make_outcome_id
from schemas.instruments import Instrument

STRATEGIES = parse_strategies(
    '[strategies.fast_cross]\ntimeframe = "tick"\nbuy = "crosses_above(ema(2), ema(5))"\n'
    'sell = "crosses_below(ema(2), ema(5))"\n'
    '[strategies.minute_rsi]\ntimeframe = "1m"\nbuy = "rsi(2) < 40 and close > lowest(low, 3)@5m"\n'
    'sell = "rsi(2) > 60"\n',
    syntax="toml", candle_timeframes=("1m", "5m"))
SHORT = IndicatorSpec(sma=(2,), ema=(2, 3), rsi=(2,))
CONFIGS = [
    PipelineConfig(indicators=SHORT, candle_timeframes=("1m", "5m"), horizons_ms=(1_000, 60_000, 300_000), fee=0.001,
                   rules=RuleSpec(rsi_reversal=RsiReversal(period=2), ema_cross=EmaCross(fast=2, slow=3),
                                  seed_rsi_ema=SeedRsiEma(rsi_period=2, ema_period=2)),
                   strategies=STRATEGIES),
    PipelineConfig(indicators=SHORT, candle_timeframes=(), horizons_ms=(5_000, 90_000), fee=0.0,
                   rules=RuleSpec(rsi_reversal=RsiReversal(period=2), ema_cross=EmaCross(fast=2, slow=3),
                                  macd_cross=None, seed_rsi_ema=None)),
]


@st.composite
def series(draw: st.DrawFn) -> list[Tick]:
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    seconds, price = 0.0, 100.0
    ticks = []
    for n in range(draw(st.integers(1, 400))):
        roll = rng.random()
        if roll < 0.06:
            moment = seconds - rng.uniform(0, 90)  # late or out of order (within grace or not)
        elif roll < 0.08:
            seconds += rng.uniform(300, 5_000)  # a gap longer than every horizon
            moment = seconds
        else:
            seconds += rng.uniform(0, 8)
            moment = seconds
        price = max(1e-6, price * math.exp(rng.gauss(0, 0.01)))
        ticks.append(tick(moment, round(price, 4), 1.0, n=n))
    return ticks


def reference(config: PipelineConfig, ticks: list[Tick], signals: pd.DataFrame, accepted: set[int]) -> pd.DataFrame:
    """The outcomes the definition gives, computed with pandas."""
    frame = pd.DataFrame({"offset": range(len(ticks)), "ts": [to_us(t.ts_event) for t in ticks],
                          "price": [t.price for t in ticks]})
    frame = frame[frame["offset"].isin(accepted)]
    rows = []
    for signal in signals.itertuples():
        for horizon in config.horizons_ms:
            after = (frame["offset"] > signal.offset) | ((frame["offset"] == signal.offset) & (signal.timeframe != "tick"))
            later = frame[after & (frame["ts"] >= signal.ts + horizon * 1000)]
            if later.empty:
                continue
            first = later.iloc[0]
            direction = 1.0 if signal.side == "BUY" else -1.0
            gross = direction * (first["price"] / signal.price - 1.0)
            rows.append({"outcome_id": make_outcome_id(signal.signal_id, horizon_label(horizon)),
                         "signal_id": signal.signal_id, "horizon": horizon_label(horizon),
                         "offset": int(first["offset"]), "price": float(first["price"]),
                         "return_gross": gross, "return_net": gross - config.fee})
    return pd.DataFrame(rows, columns=["outcome_id", "signal_id", "horizon", "offset", "price", "return_gross",
                                       "return_net"])


def run_with_segment_store(config: PipelineConfig, ticks: list[Tick]) -> list[list[str]]:
    """Every tick through a fresh processor loaded from a document + separately stored segments."""
    document: dict[str, object] | None = None
    store: dict[int, str] = {}
    encoded = []
    for offset, item in enumerate(ticks):
        processor = SymbolProcessor(config, Instrument("BTC-USD", "test"), document,
                                    lambda number: json.loads(store[number]) if number in store else None)
        output = processor.process(item, lineage(offset))
        written, dropped = processor.outcomes.changes()
        for number, segment in written.items():
            store[number] = json.dumps(segment)
        for number in dropped:
            store.pop(number, None)
        document = json.loads(json.dumps(processor.state(segments=False)))
        encoded.append([e.model_dump_json() for e in (*output.signals, *output.outcomes)])
    return encoded


@settings(max_examples=40, deadline=None)
@given(ticks=series(), config_index=st.integers(0, len(CONFIGS) - 1))
def test_outcomes_equal_pandas_on_the_definition(ticks: list[Tick], config_index: int) -> None:
    config = CONFIGS[config_index]
    processor = SymbolProcessor(config, Instrument("BTC-USD", "test"))
    signals, outcomes, accepted, direct = [], [], set(), []
    for offset, item in enumerate(ticks):
        output = processor.process(item, lineage(offset))
        if not output.rejections:
            accepted.add(offset)
        signals += [{"signal_id": s.signal_id, "offset": offset, "ts": to_us(s.ts_event), "price": s.price,
                     "side": s.side, "timeframe": s.timeframe} for s in output.signals]
        outcomes += output.outcomes
        direct.append([e.model_dump_json() for e in (*output.signals, *output.outcomes)])
    expected = reference(config, ticks, pd.DataFrame(signals, columns=["signal_id", "offset", "ts", "price", "side", "timeframe"]),
                         accepted)
    got = pd.DataFrame([{"outcome_id": o.outcome_id, "signal_id": o.signal_id, "horizon": o.horizon,
                         "offset": o.lineage.offset, "price": o.price, "return_gross": o.return_gross,
                         "return_net": o.return_net} for o in outcomes], columns=expected.columns)
    key = ["outcome_id"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  expected.sort_values(key).reset_index(drop=True), check_exact=True,
                                  check_dtype=False)
    assert got["outcome_id"].is_unique
    assert list(got["offset"]) == sorted(got["offset"])  # emitted in log order
    by_signal = {s["signal_id"]: s for s in signals}
    for outcome in outcomes:  # the outcome repeats its signal
        signal = by_signal[outcome.signal_id]
        assert (to_us(outcome.signal_ts), outcome.signal_price, outcome.side) == (signal["ts"], signal["price"],
                                                                                   signal["side"])
        assert to_us(outcome.ts_event) >= signal["ts"] + horizon_ms(outcome.horizon) * 1000
    # The same events with the state through JSON at every tick, and with segments stored apart.
    state, through_json = None, []
    for offset, item in enumerate(ticks):
        state, output = step(config, state, item, lineage(offset))
        state = json.loads(json.dumps(state))
        through_json.append([e.model_dump_json() for e in (*output.signals, *output.outcomes)])
    assert through_json == direct
    assert run_with_segment_store(config, ticks) == direct


def test_segments_are_written_as_they_grow_and_deleted_once_every_horizon_is_done() -> None:
    outcomes = PendingOutcomes((60_000, 3_600_000), 0.0)
    for n in range(SEGMENT * 2 + 3):
        outcomes.add(Pending(f"{n:032x}", "s", None, "tick", "BUY", 1.0, n * 1_000_000))
    written, dropped = outcomes.changes()
    assert sorted(written) == [0, 1, 2] and dropped == []  # every segment that grew, not just the last
    assert len(outcomes.mature(1_000 * 1_000_000, 2.0)) == SEGMENT * 2 + 3  # every 1m outcome
    assert outcomes.changes() == ({}, [])  # the 1h horizon still needs them all
    matured = outcomes.mature(3_600 * 1_000_000 + (SEGMENT - 1) * 1_000_000, 0.5)
    assert len(matured) == SEGMENT and {m.return_gross for m in matured} == {-0.5}
    assert outcomes.changes() == ({}, [0])
    assert len(outcomes) == SEGMENT + 3


def test_horizon_texts() -> None:
    assert [horizon_ms(t) for t in ("1m", "5m", "1h", "1d", "90s", "250ms")] == [
        60_000, 300_000, 3_600_000, 86_400_000, 90_000, 250]
    assert [horizon_label(h) for h in (60_000, 90_000, 86_400_000, 250)] == ["1m", "90s", "1d", "250ms"]
    for bad in ("", "0m", "05m", "1w", "m", "-1m", "1.5h", "400d"):
        try:
            horizon_ms(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


@settings(max_examples=300, deadline=None)
@given(horizons=st.lists(st.sampled_from([1, 2, 5, 60, 3_600]), min_size=1, max_size=4, unique=True),
       steps=st.lists(st.one_of(
           st.tuples(st.just("add"), st.integers(0, 4_000), st.sampled_from(["tick", "1m", "5m"]), st.booleans()),
           st.tuples(st.just("mature"), st.integers(0, 8_000), st.floats(0.5, 2.0), st.booleans()),
       ), max_size=80))
def test_outcomes_mature_in_due_then_signal_then_horizon_order_whatever_order_signals_come_in(
        horizons: list[int], steps: list[tuple]) -> None:
    """Signals in any event-time order (one timeframe's out of order too), maturing ticks in any order, the
    state stored and loaded between steps: each outcome comes once, at the first maturing tick at or after its
    due time, in (due, signal, horizon) order — what a plain sorted list of every pending outcome gives."""
    horizons_ms = [h * 1_000 for h in horizons]
    outcomes = PendingOutcomes(horizons_ms, 0.001)
    model: list[tuple[int, int, int]] = []  # (due µs, sequence, horizon position) of every pending outcome
    signals: list[Pending] = []
    for kind, when, extra, reload in steps:
        ts_us = when * 1_000_000
        if kind == "add":
            pending = Pending(f"{len(signals):032x}", "s", None, extra, "BUY" if reload else "SELL", 1.0, ts_us)
            for position, horizon in enumerate(sorted(horizons_ms)):
                model.append((ts_us + horizon * 1_000, len(signals), position))
            signals.append(pending)
            outcomes.add(pending)
        else:
            due = sorted(item for item in model if item[0] <= ts_us)
            model = [item for item in model if item[0] > ts_us]
            matured = outcomes.mature(ts_us, extra)
            assert [(m.signal, m.horizon_ms) for m in matured] == [
                (signals[sequence], sorted(horizons_ms)[position]) for _, sequence, position in due]
            for found in matured:
                change = extra / found.signal.price - 1.0
                assert found.return_gross == (change if found.signal.side == "BUY" else -change)
        assert len(outcomes) == len({sequence for _, sequence, _ in model})
        if reload:
            outcomes = PendingOutcomes.load(json.loads(json.dumps(outcomes.dump())), horizons_ms, 0.001)
