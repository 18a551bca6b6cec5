"""Compiled strategies vs today's rule engine per tick, and the batch engine vs talipp, in one run.

    .venv/bin/python -m bench.bench_strategies [--ticks 100000] [--rounds 5] [--json FILE]

Pure and in-process (no Kafka): CPU per tick of the work a processor does between "tick accepted"
and "events built". Every variant sees the same seeded BTC-like series; rounds alternate the
variants and the best round of each is kept; times are CPU time of this process
(``time.process_time``), so other load on the shared machine does not count against either side.

Variants (µs of CPU per tick):

- **today** — ``IndicatorEngine`` (the 8 default indicators) + ``dict(zip(names, values))`` (the
  snapshot's values) + ``RuleEngine.evaluate`` (the 4 rules): what the pipeline runs per tick now.
- **default, provided** — the same ``IndicatorEngine`` and dict, then the 4 built-in strategies
  compiled with the engine's values handed in (``provided``): the phase-2 shape.
- **default, shared nodes** — the compiled engine computes the 8 indicators itself (``outputs``) on
  shared nodes, evaluates the 4 built-ins, and ``values()`` gives the snapshot's values.
- **built-ins alone** vs **rules alone** — the 4 strategies and their 4 indicators (EMA 12/26, RSI 14,
  MACD) compiled, vs ``IndicatorEngine`` with just those + ``RuleEngine``.
- **20 strategies, provided** — today's engine and dict + 20 strategies over 10 distinct
  indicators (bench/data/strategies-20.toml; the 8 default ones provided, the others computed).
- **batch: 20 strategies** (ticks per CPU second) — the compiled engine alone running the 20
  strategies (computing all 10 indicators), vs **talipp** computing the same 10 indicators (no
  strategies), after checking both give the same indicator values.

``details.processor_estimate`` adds the measured per-tick differences to the processor's CPU per
record of the latest ``make bench`` report in bench/results, scaled by how much slower the
indicator engine alone ran here than in that report (a different run and load: an estimate).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import time
from collections.abc import Callable
from pathlib import Path

from talipp.indicators import ADX, ATR, BB, EMA, MACD, OBV, RSI, SMA, Stoch
from talipp.ohlcv import OHLCV

from bench.common import REPO, BenchOutput, Figure, Measure
from processors.core.indicators import IndicatorEngine, IndicatorSpec, MacdSpec
from processors.core.rules import RuleEngine, RuleSpec
from processors.core.strategies.builtin import builtin_strategies, indicator_outputs
from processors.core.strategies.engine import CompiledStrategies
from processors.core.strategies.file import load_strategies
from processors.core.timeutil import DAY_US

TWENTY = REPO / "bench" / "data" / "strategies-20.toml"
START_US = 1_710_028_800_000_000  # 2024-03-10 00:00 UTC
Row = tuple[int, float, float]


def series(count: int, seed: int = 7) -> list[Row]:
    """(event time µs, price, volume): a BTC-like random walk on a cent grid, 250 ms apart."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data
    price, rows = 64_000.0, []
    for i in range(count):
        price = round(price * math.exp(rng.gauss(0.0, 3e-4)), 2)
        rows.append((START_US + 250_000 * i, price, round(rng.lognormvariate(-3.0, 1.0), 6)))
    return rows


def twenty() -> CompiledStrategies:
    return CompiledStrategies(load_strategies(TWENTY, candle_timeframes=()), candle_timeframes=())


# -- the variants: each returns the number of signals (so no work is optimised away) -------------------


def today(rows: list[Row]) -> int:
    engine = IndicatorEngine(IndicatorSpec())
    state = engine.new_state()
    rules = RuleEngine(RuleSpec(), engine.names)
    rule_state = rules.new_state()
    update, evaluate, names, fired = engine.update, rules.evaluate, engine.names, 0
    for ts, price, volume in rows:
        values = update(state, price, volume, ts // DAY_US)
        dict(zip(names, values, strict=True))
        fired += len(evaluate(rule_state, values, price))
    return fired


def provided(definitions: CompiledStrategies) -> Callable[[list[Row]], int]:
    def variant(rows: list[Row]) -> int:
        engine = IndicatorEngine(IndicatorSpec())
        state = engine.new_state()
        strategy_state = definitions.new_state("BTC-USD")
        update, on_tick, names, fired = engine.update, definitions.on_tick, engine.names, 0
        for ts, price, volume in rows:
            values = update(state, price, volume, ts // DAY_US)
            dict(zip(names, values, strict=True))
            fired += len(on_tick(strategy_state, ts, price, volume, values))
        return fired
    return variant


def shared(definitions: CompiledStrategies) -> Callable[[list[Row]], int]:
    def variant(rows: list[Row]) -> int:
        state = definitions.new_state("BTC-USD")
        on_tick, values, fired = definitions.on_tick, definitions.values, 0
        for ts, price, volume in rows:
            fired += len(on_tick(state, ts, price, volume))
            values(state, "tick")
        return fired
    return variant


def alone(definitions: CompiledStrategies) -> Callable[[list[Row]], int]:
    def variant(rows: list[Row]) -> int:
        state = definitions.new_state("BTC-USD")
        on_tick, fired = definitions.on_tick, 0
        for ts, price, volume in rows:
            fired += len(on_tick(state, ts, price, volume))
        return fired
    return variant


def engine_only(rows: list[Row]) -> int:
    """IndicatorEngine alone (the 8 default indicators): the yardstick to compare loads between runs."""
    engine = IndicatorEngine(IndicatorSpec())
    state = engine.new_state()
    update = engine.update
    for ts, price, volume in rows:
        update(state, price, volume, ts // DAY_US)
    return 0


def rules_alone(rows: list[Row]) -> int:
    engine = IndicatorEngine(IndicatorSpec(sma=(), ema=(12, 26), rsi=(14,), macd=MacdSpec(), bollinger=None,
                                           vwap=False))
    state = engine.new_state()
    rules = RuleEngine(RuleSpec(), engine.names)
    rule_state = rules.new_state()
    update, evaluate, fired = engine.update, rules.evaluate, 0
    for ts, price, volume in rows:
        fired += len(evaluate(rule_state, update(state, price, volume, ts // DAY_US), price))
    return fired


def talipp_ten() -> tuple[list[object], list[object]]:
    """talipp's versions of the 20 strategies' 10 indicators: (price-fed, bar-fed)."""
    return ([SMA(50), EMA(9), EMA(21), RSI(14), MACD(12, 26, 9), BB(20, 2.0)],
            [ATR(14), Stoch(14, 3), ADX(14, 14), OBV()])


def talipp(rows: list[Row]) -> int:
    by_price, by_bar = talipp_ten()
    price_adders = [indicator.add for indicator in by_price]  # type: ignore[attr-defined]
    bar_adders = [indicator.add for indicator in by_bar]  # type: ignore[attr-defined]
    for _, price, volume in rows:
        for add in price_adders:
            add(price)
        bar = OHLCV(price, price, price, price, volume)
        for add in bar_adders:
            add(bar)
    return 0


def check_agreement(rows: list[Row]) -> None:
    """The compiled engine and talipp compute the same 10 indicators on this series (1e-9)."""
    compiled = twenty()
    state = compiled.new_state("BTC-USD")
    for ts, price, volume in rows:
        compiled.on_tick(state, ts, price, volume)
    ours = compiled.values(state, "tick")
    (sma, ema9, ema21, rsi, macd, bands), (atr, stoch, adx, obv) = talipp_ten()
    for _, price, volume in rows:
        for indicator in (sma, ema9, ema21, rsi, macd, bands):
            indicator.add(price)  # type: ignore[attr-defined]
        for indicator in (atr, stoch, adx, obv):
            indicator.add(OHLCV(price, price, price, price, volume))  # type: ignore[attr-defined]
    theirs = {
        "sma_50": sma[-1], "ema_9": ema9[-1], "ema_21": ema21[-1], "rsi_14": rsi[-1],  # type: ignore[index]
        "macd_12_26_9_line": macd[-1].macd, "macd_12_26_9_signal": macd[-1].signal,  # type: ignore[index]
        "bb_20_2_upper": bands[-1].ub, "bb_20_2_lower": bands[-1].lb, "atr_14": atr[-1],  # type: ignore[index]
        "stoch_14_3_1_k": stoch[-1].k, "stoch_14_3_1_d": stoch[-1].d, "adx_14": adx[-1].adx,  # type: ignore[index]
        "plus_di_14": adx[-1].plus_di, "minus_di_14": adx[-1].minus_di, "obv": obv[-1],  # type: ignore[index]
    }
    for name, value in theirs.items():
        scale = abs(ours["ema_21"]) if name.startswith("macd") else max(abs(value), 1.0)  # type: ignore[arg-type]
        assert abs(ours[name] - value) <= 1e-9 * scale, (name, ours[name], value)  # type: ignore[operator]


def cpu_us_per_tick(rows: list[Row], work: Callable[[list[Row]], int]) -> float:
    began = time.process_time()
    work(rows)
    return (time.process_time() - began) / len(rows) * 1e6


def processor_reference() -> dict[str, object] | None:
    """From the newest full report in bench/results: the processor's CPU per record (exactly-once) and,
    from the same report, the indicator engine's CPU per tick (to compare that run's load with this one's)."""
    for path in sorted((REPO / "bench" / "results").glob("20*.json"), reverse=True):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found: dict[str, object] = {}
        for bench in report.get("benches", []):
            for figure in ((bench.get("output") or {}).get("figures") or []):
                if figure.get("name") == "stream processor CPU per record, exactly-once":
                    found["us_per_record"] = figure["ours"]["value"]
                if figure.get("name") == "indicator engine":
                    found["engine_us_per_tick"] = 1e6 / figure["ours"]["value"]
        if "us_per_record" in found and "engine_us_per_tick" in found:
            machine = report.get("machine") or {}
            return {"file": str(path.relative_to(REPO)), **found,
                    "load_average_at_start": machine.get("load_average_at_start")}
    return None


def measure(ticks: int, rounds: int) -> dict[str, object]:
    rows = series(ticks)
    check_agreement(rows[:5_000])
    default = indicator_outputs(IndicatorSpec())
    builtins = builtin_strategies()
    twenty_definitions = load_strategies(TWENTY, candle_timeframes=())
    variants: dict[str, Callable[[list[Row]], int]] = {
        "today": today,
        "default_provided": provided(CompiledStrategies(builtins, candle_timeframes=(), provided={"tick": default})),
        "default_shared": shared(CompiledStrategies(builtins, candle_timeframes=(), outputs={"tick": default})),
        "builtins_alone": alone(CompiledStrategies(builtins, candle_timeframes=())),
        "rules_alone": rules_alone,
        "twenty_provided": provided(CompiledStrategies(twenty_definitions, candle_timeframes=(),
                                                       provided={"tick": default})),
        "twenty_batch": alone(CompiledStrategies(twenty_definitions, candle_timeframes=())),
        "talipp_ten": talipp,
        "engine_only": engine_only,
    }
    signals = {name: work(rows[:2_000]) for name, work in variants.items()}
    assert signals["today"] == signals["default_provided"] == signals["default_shared"] == signals["rules_alone"] \
        == signals["builtins_alone"], signals  # the same signals: the same work
    timings: dict[str, list[float]] = {name: [] for name in variants}
    loads = [os.getloadavg()]
    for _ in range(rounds):
        for name, work in variants.items():
            timings[name].append(cpu_us_per_tick(rows, work))
        loads.append(os.getloadavg())
    best = {name: min(values) for name, values in timings.items()}
    reference = processor_reference()
    estimate = None
    if reference is not None:
        base = float(reference["us_per_record"])  # type: ignore[arg-type]
        # This run's CPU per tick is inflated by the machine's load (shared caches and cores): scale the
        # differences by how much slower the indicator engine ran here than in the reference report.
        slowdown = best["engine_only"] / float(reference["engine_us_per_tick"])  # type: ignore[arg-type]
        default_us = base + (best["default_provided"] - best["today"]) / slowdown
        twenty_us = base + (best["twenty_provided"] - best["today"]) / slowdown
        estimate = {"reference": reference, "slowdown_vs_reference": slowdown,
                    "default_strategies_us_per_record": default_us, "twenty_strategies_us_per_record": twenty_us,
                    "default_over_today": default_us / base, "twenty_over_today": twenty_us / base,
                    "how": "the reference processor's CPU per record plus this run's per-tick difference to"
                           " 'today', divided by this run's slowdown of the indicator engine vs the reference"}
    return {
        "us_per_tick_best": best,
        "us_per_tick_rounds": timings,
        "batch_ticks_per_s": {"twenty_batch": 1e6 / best["twenty_batch"], "talipp_ten": 1e6 / best["talipp_ten"]},
        "signals_on_2000_ticks": signals,
        "processor_estimate": estimate,
        "ticks": ticks,
        "rounds": rounds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": loads,
    }


def run(quick: bool) -> BenchOutput:
    """The common entry point of ``bench/run_all.py``."""
    ticks, rounds = (20_000, 3) if quick else (100_000, 5)
    found = measure(ticks, rounds)
    return BenchOutput(params={"ticks": ticks, "rounds": rounds}, figures=figures(found),
                       details={key: value for key, value in found.items() if key != "machine"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    found = measure(args.ticks, args.rounds)
    best: dict[str, float] = found["us_per_tick_best"]  # type: ignore[assignment]
    loads = found["load_average"]
    print(f"machine: {found['machine']}, load average {loads[0][0]:.1f} → {loads[-1][0]:.1f}")  # type: ignore[index]
    for name, value in best.items():
        print(f"{name:<20}{value:>8.2f} µs CPU/tick")
    batch = found["batch_ticks_per_s"]
    print(f"batch 20 strategies / talipp 10 indicators: {batch['twenty_batch'] / batch['talipp_ten']:.1f}x")  # type: ignore[index]
    if found["processor_estimate"]:
        print(f"processor estimate: {json.dumps(found['processor_estimate'])}")
    if args.json:
        output = {**found, "figures": [figure.model_dump() for figure in figures(found)]}
        args.json.write_text(json.dumps(output, indent=1), encoding="utf-8")


def figures(found: dict[str, object]) -> list[Figure]:
    """Each figure beside its baseline from the same run."""
    rounds = int(found["rounds"])  # type: ignore[call-overload]
    ticks = int(found["ticks"])  # type: ignore[call-overload]
    best: dict[str, float] = found["us_per_tick_best"]  # type: ignore[assignment]
    how = f"best of {rounds} alternating rounds of {ticks:,} ticks; CPU time of the process"
    today_measure = Measure(label="today: IndicatorEngine (8 default indicators) + snapshot dict + RuleEngine",
                            value=best["today"])
    rows = [
        ("default strategies, engine values provided (phase-2 shape)", today_measure, 1.0,
         "IndicatorEngine (8) + dict + the 4 built-in strategies, values provided", "default_provided"),
        ("default strategies on shared nodes", today_measure, None,
         "compiled: the 8 indicators as nodes + the 4 built-ins + values()", "default_shared"),
        ("built-in strategies vs the rule engine, their 4 indicators",
         Measure(label="IndicatorEngine (EMA 12/26, RSI 14, MACD) + RuleEngine", value=best["rules_alone"]), None,
         "compiled: the 4 built-ins and their 4 indicators", "builtins_alone"),
        ("20 strategies over 10 indicators, engine values provided", today_measure, None,
         "IndicatorEngine (8) + dict + 20 compiled strategies (bench/data/strategies-20.toml)", "twenty_provided"),
    ]
    found_figures = [Figure(name=name, unit="µs CPU per tick", better="lower", how=how, goal=goal, baseline=baseline,
                            ours=Measure(label=label, value=best[key])) for name, baseline, goal, label, key in rows]
    found_figures.append(Figure(
        name="batch: 20 strategies vs talipp computing their 10 indicators", unit="ticks per CPU second",
        better="higher", how=how,
        baseline=Measure(label="talipp 2.x: SMA50, EMA9/21, RSI14, MACD, BB, ATR, Stoch, ADX/DI, OBV (no strategies)",
                         value=1e6 / best["talipp_ten"]),
        ours=Measure(label="compiled engine: the same 10 indicators + 20 strategies", value=1e6 / best["twenty_batch"])))
    return found_figures


if __name__ == "__main__":
    main()
