"""Indicator engine and pipeline step throughput, against talipp, in one run.

    .venv/bin/python -m bench.bench_indicators [--ticks 200000] [--rounds 5] [--json FILE]

1. **engine** — :class:`processors.core.indicators.IndicatorEngine` with the default set
   (SMA20, SMA50, EMA12, EMA26, RSI14, MACD 12/26/9, BB(20, 2), VWAP), one price at a time.
2. **talipp** — the same eight indicators from talipp (``SMA(20)``, ``SMA(50)``, ``EMA(12)``,
   ``EMA(26)``, ``RSI(14)``, ``MACD(12, 26, 9)``, ``BB(20, 2)``, ``VWAP()`` fed OHLCV bars whose
   four prices are the tick price), one ``add`` per indicator per tick.
3. **process** — :meth:`SymbolProcessor.process` (tick timeframe + 1m candles, rules, daily
   aggregate, pydantic events), state kept in memory (the batch CLI's way).
4. **step** — :func:`processors.core.pipeline.step` per tick: state loaded from and dumped to
   its JSON-compatible form every tick (what a state-store runner pays).
5. **step + orjson** — the same plus ``orjson.dumps``/``loads`` of the state every tick
   (Quix Streams' state serializer).

All runs see the same seeded BTC-like series (random walk, cents, lognormal sizes, 250 ms
apart). Rates are ticks per CPU second of this process (``time.process_time``), so other
work on a shared machine does not count against either side; rounds alternate
engine/talipp and the best round of each is reported. Before timing, the engine's
and talipp's values are checked to agree, so both do the same work.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
from talipp.indicators import BB, EMA, MACD, RSI, SMA, VWAP
from talipp.ohlcv import OHLCV

from bench.common import BenchOutput, Figure, Measure
from processors.core.indicators import IndicatorEngine, IndicatorSpec
from processors.core.pipeline import PipelineConfig, SymbolProcessor, step
from schemas.events import Lineage, Tick
from schemas.instruments import Instrument

START = datetime(2024, 3, 9, 12, 0, tzinfo=UTC)


def series(count: int, seed: int = 7) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    price, rows = 64_000.0, []
    for _ in range(count):
        price = round(price * math.exp(rng.gauss(0.0, 3e-4)), 2)
        rows.append((price, round(rng.lognormvariate(-3.0, 1.0), 6)))
    return rows


def run_engine(rows: list[tuple[float, float]]) -> list[float | None]:
    engine = IndicatorEngine(IndicatorSpec())
    state = engine.new_state()
    update = engine.update
    values: list[float | None] = []
    for price, volume in rows:
        values = update(state, price, volume, 19_791)
    return values


def talipp_set() -> tuple[list[object], VWAP]:
    return [SMA(20), SMA(50), EMA(12), EMA(26), RSI(14), MACD(12, 26, 9), BB(20, 2.0)], VWAP()


def run_talipp(rows: list[tuple[float, float]]) -> tuple[list[object], VWAP]:
    indicators, vwap = talipp_set()
    adders = [indicator.add for indicator in indicators]
    add_bar = vwap.add
    for price, volume in rows:
        for add in adders:
            add(price)
        add_bar(OHLCV(price, price, price, price, volume))
    return indicators, vwap


def check_agreement(rows: list[tuple[float, float]]) -> None:
    """The two libraries compute the same things on this series (last values, 1e-9 relative)."""
    ours = dict(zip(IndicatorEngine(IndicatorSpec()).names, run_engine(rows), strict=True))
    (sma20, sma50, ema12, ema26, rsi, macd, bands), vwap = run_talipp(rows)
    theirs = {
        "sma_20": sma20[-1], "sma_50": sma50[-1], "ema_12": ema12[-1], "ema_26": ema26[-1], "rsi_14": rsi[-1],
        "macd": macd[-1].macd, "macd_signal": macd[-1].signal, "bb_upper": bands[-1].ub, "bb_middle": bands[-1].cb,
        "bb_lower": bands[-1].lb, "vwap": vwap[-1],
    }
    for name, value in theirs.items():
        scale = ours["ema_26"] if name.startswith("macd") else abs(value)
        assert abs(ours[name] - value) <= 1e-9 * scale, (name, ours[name], value)


def ticks_of(rows: list[tuple[float, float]]) -> list[Tick]:
    return [Tick(symbol="BTC-USD", venue="bench", price=price, volume=volume, ts_event=START + timedelta(milliseconds=250 * i),
                 ts_init=START + timedelta(milliseconds=250 * i), source="bench", source_id=str(i))
            for i, (price, volume) in enumerate(rows)]


def run_process(items: list[Tick]) -> None:
    processor = SymbolProcessor(PipelineConfig(), Instrument("BTC-USD", "bench"))
    for offset, tick in enumerate(items):
        processor.process(tick, Lineage(topic="ticks", partition=0, offset=offset))


def run_step(items: list[Tick], serialize: bool) -> None:
    config = PipelineConfig()
    state = None
    for offset, tick in enumerate(items):
        if serialize and state is not None:
            state = orjson.loads(orjson.dumps(state))
        state, _ = step(config, state, tick, Lineage(topic="ticks", partition=0, offset=offset))


def rate(count: int, work: Callable[[], object]) -> float:
    """Ticks per CPU second of this process (other load on the shared machine does not count)."""
    began = time.process_time()
    work()
    return count / (time.process_time() - began)


def measure(ticks: int, step_ticks: int, rounds: int) -> dict[str, object]:
    """Every figure of this benchmark (rates in ticks per CPU second; best round of each)."""
    rows = series(ticks)
    check_agreement(rows[:5_000])
    engine, talipp = [], []
    for _ in range(rounds):
        engine.append(rate(len(rows), lambda: run_engine(rows)))
        talipp.append(rate(len(rows), lambda: run_talipp(rows)))
    items = ticks_of(series(step_ticks, seed=11))
    process, stepped, serialized = [], [], []
    for _ in range(max(1, rounds // 2)):
        process.append(rate(len(items), lambda: run_process(items)))
        stepped.append(rate(len(items), lambda: run_step(items, serialize=False)))
        serialized.append(rate(len(items), lambda: run_step(items, serialize=True)))
    return {
        "engine_ticks_per_s": max(engine),
        "talipp_ticks_per_s": max(talipp),
        "engine_over_talipp": max(engine) / max(talipp),
        "engine_over_talipp_median_rounds": sorted(e / t for e, t in zip(engine, talipp, strict=True))[
            len(engine) // 2],
        "process_ticks_per_s": max(process),
        "step_ticks_per_s": max(stepped),
        "step_orjson_ticks_per_s": max(serialized),
        "ticks": ticks,
        "rounds": rounds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
    }


def run(quick: bool) -> BenchOutput:
    """The common entry point of ``bench/run_all.py``: figures beside talipp, measured in this run."""
    ticks, step_ticks, rounds = (20_000, 5_000, 3) if quick else (200_000, 30_000, 7)
    found = measure(ticks, step_ticks, rounds)
    unit, how = "ticks per CPU second", f"best of {rounds} alternating rounds; rates per CPU second of the process"
    talipp = Measure(label="talipp 2.x, same 8 indicators (SMA20/50, EMA12/26, RSI14, MACD, BB, VWAP)",
                     value=float(found["talipp_ticks_per_s"]))  # type: ignore[arg-type]

    step_how = (f"best of {max(1, rounds // 2)} rounds of {step_ticks:,} ticks vs talipp's best of {rounds}; "
                "rates per CPU second of the process")

    def figure(name: str, label: str, key: str, goal: float | None = None) -> Figure:
        return Figure(name=name, unit=unit, better="higher", how=how if key.startswith("engine") else step_how,
                      goal=goal, baseline=talipp, ours=Measure(label=label, value=float(found[key])))  # type: ignore[arg-type]

    return BenchOutput(
        params={"ticks": ticks, "step_ticks": step_ticks, "rounds": rounds},
        figures=[
            figure("indicator engine", "stockstream engine, same 8 indicators", "engine_ticks_per_s", goal=5.0),
            figure("pipeline step, state in memory (batch CLI)",
                   "SymbolProcessor.process: tick + 1m candles, rules, daily, pydantic events", "process_ticks_per_s"),
            figure("pipeline step, state as a dict per tick", "step(): state loaded and dumped every tick",
                   "step_ticks_per_s"),
            figure("pipeline step, state through orjson per tick (state-store cost)",
                   "step() + orjson dumps/loads of the state every tick", "step_orjson_ticks_per_s"),
        ],
        details={key: value for key, value in found.items() if key not in ("machine",)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=200_000, help="prices per indicator round")
    parser.add_argument("--step-ticks", type=int, default=30_000, help="ticks per pipeline round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    figures = measure(args.ticks, args.step_ticks, args.rounds)
    print(f"machine: {figures['machine']}, load average {figures['load_average'][0]:.1f}")  # type: ignore[index]
    print(f"{'what':<32}{'ticks per CPU s':>16}")
    print(f"{'engine (8 indicators)':<32}{figures['engine_ticks_per_s']:>16,.0f}")
    print(f"{'talipp (same 8)':<32}{figures['talipp_ticks_per_s']:>16,.0f}")
    print(f"{'engine / talipp':<32}{figures['engine_over_talipp']:>15.1f}x"
          f"  (median of per-round ratios {figures['engine_over_talipp_median_rounds']:.1f}x)")
    print(f"{'process (in memory)':<32}{figures['process_ticks_per_s']:>16,.0f}")
    print(f"{'step (state dict per tick)':<32}{figures['step_ticks_per_s']:>16,.0f}")
    print(f"{'step + orjson per tick':<32}{figures['step_orjson_ticks_per_s']:>16,.0f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
    sys.exit(0 if figures["engine_over_talipp"] >= 5 else 1)  # type: ignore[operator]


if __name__ == "__main__":
    main()
