"""One strategy backtested over 1M ticks: ``stockstream backtest --input`` vs vectorbt, same ticks, same run.

    .venv/bin/python -m bench.bench_backtest [--ticks 1000000] [--quick] [--rounds 3]

1. 1,000,000 ticks of one instrument, one second apart (a seeded random walk), written to Parquet.
2. **Ours**: the rule-language strategy ``crosses_above(ema(20), ema(100))`` / ``crosses_below(…)`` on
   ``tick``, fees 0.1 %, long-only all-in, next-tick fills — what ``stockstream backtest --input
   ticks.parquet --strategy FILE`` runs (:func:`spark_jobs.backtest.portfolio.run_portfolio`: the
   vectorized kernel's indicators and rules, the simulation, every metric and buy-and-hold beside
   them). Timed from the ticks in memory to the result (compute), and from the file (read included).
3. **vectorbt 1.2.0** (bench-only, its own venv, see :func:`bench.common.vectorbt_python`): the same
   crossover with ``MA.run(…, ewm=True)`` + ``ma_crossed_above/below``, entries/exits shifted one tick,
   ``Portfolio.from_signals(price=close, fees=0.001, init_cash=1e6)`` and the same metrics read
   (total return, Sharpe, max drawdown, trade count) — from the prices in memory to the metrics.
4. **Equality**: vectorbt's ``from_signals`` on *our* signals (shifted one tick) gives the same number
   of trades (the one open at the end included) and the same final equity (1e-9 relative) as our simulation. (vectorbt's own EMA
   is seeded with the first price, TA-Lib's and ours with the SMA of the first ``n``: its own signals
   differ at the start; how many of them differ is reported.) Capital 1,000,000 on both sides and a
   20/100 crossover: with 9/21 (~23,000 round trips on 1M ticks) fees wore an account of 1 down to dust,
   and vectorbt stopped trading after 3,914 round trips (orders of ~1e-8 units) while ours went on.

Both sides are warmed on 5,000 ticks first (numba compilation); each timing is the median of
``--rounds`` rounds. Writes nothing itself; ``run(quick)`` (``make bench``) returns the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import BenchOutput, Figure, Measure, print_output, vectorbt_python
from spark_jobs.backtest.portfolio import read_ticks, run_portfolio
from spark_jobs.backtest.rulefile import RuleFile
from spark_jobs.backtest.simulate import SimulationConfig

SYMBOL = "BTC-USD"
FEE = 0.001
FAST, SLOW = 20, 100
CAPITAL = 1_000_000.0  # see the docstring: an account fees wear to dust trades differently in vectorbt
STRATEGY = f"""
[strategies.ema_cross]
timeframe = "tick"
params = {{ fast = {FAST}, slow = {SLOW} }}
buy = "crosses_above(ema(fast), ema(slow))"
sell = "crosses_below(ema(fast), ema(slow))"
"""
WARM = 5_000


def log(message: str) -> None:
    print(f"[bench_backtest] {message}", file=sys.stderr, flush=True)


def make_ticks(count: int, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    price = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 2e-4, count)))
    start = pd.Timestamp("2024-01-01T00:00:00Z")
    return pd.DataFrame({"timestamp": start + pd.to_timedelta(np.arange(count), unit="s"), "symbol": SYMBOL,
                         "price": price, "volume": rng.uniform(0.01, 2.0, count)})


def ours(path: Path, rule_file: RuleFile, rounds: int) -> dict[str, Any]:
    config = SimulationConfig(fee=FEE, initial_capital=CAPITAL, close_at_end=False)
    frame = read_ticks(path)
    run_portfolio(frame.iloc[:WARM], [SYMBOL], "tick", config, rule_file=rule_file)  # numba compiled once
    compute, end_to_end = [], []
    result = None
    for _ in range(rounds):
        began = time.perf_counter()
        result = run_portfolio(frame, [SYMBOL], "tick", config, rule_file=rule_file)
        compute.append(time.perf_counter() - began)
        began = time.perf_counter()
        run_portfolio(read_ticks(path), [SYMBOL], "tick", config, rule_file=rule_file)
        end_to_end.append(time.perf_counter() - began)
    assert result is not None
    instrument = result.instruments[0]
    found = {"compute_s": statistics.median(compute), "end_to_end_s": statistics.median(end_to_end),
             "rounds_compute_s": compute, "rounds_end_to_end_s": end_to_end,
             "trades": instrument.simulation.trade_count,  # an open position at the end counts (close_at_end=False)
             "final_equity": instrument.simulation.final_equity,
             "metrics": {key: result.metrics.get(key) for key in ("total_return", "sharpe", "max_drawdown", "trades")},
             "signals": int(np.count_nonzero(instrument.signal))}
    log(f"ours: {len(frame):,} ticks, compute {found['compute_s']:.2f}s, from the file {found['end_to_end_s']:.2f}s, "
        f"{found['trades']} trades, final equity {found['final_equity']:.6f}")
    return found | {"signal": instrument.signal}


VECTORBT_SCRIPT = r"""
import json, resource, statistics, sys, time
import numpy as np, pandas as pd
import vectorbt as vbt

data = np.load(sys.argv[1])
fee, fast_n, slow_n, rounds, cash = (float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                                     float(sys.argv[6]))

def own(close):
    close = pd.Series(close)
    fast = vbt.MA.run(close, fast_n, ewm=True)
    slow = vbt.MA.run(close, slow_n, ewm=True)
    entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
    exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
    portfolio = vbt.Portfolio.from_signals(close, entries, exits, price=close, fees=fee, init_cash=cash, freq="1s")
    return portfolio, (portfolio.total_return(), portfolio.sharpe_ratio(), portfolio.max_drawdown(),
                       portfolio.trades.count()), entries.to_numpy(), exits.to_numpy()

def given(close, signal):
    close = pd.Series(close)
    entries = pd.Series(signal > 0).shift(1, fill_value=False)
    exits = pd.Series(signal < 0).shift(1, fill_value=False)
    return vbt.Portfolio.from_signals(close, entries, exits, price=close, fees=fee, init_cash=cash, freq="1s")

own(data["close"][:5000])
given(data["close"][:5000], data["signal"][:5000])
times = []
for _ in range(rounds):
    began = time.perf_counter()
    portfolio, metrics, entries, exits = own(data["close"])
    times.append(time.perf_counter() - began)
signal = data["signal"]
ours_entries = np.concatenate([[False], signal[:-1] > 0])
ours_exits = np.concatenate([[False], signal[:-1] < 0])
same = given(data["close"], signal)
print(json.dumps({
    "seconds": statistics.median(times), "rounds_s": times, "version": vbt.__version__,
    "own": {"total_return": float(metrics[0]), "sharpe": float(metrics[1]), "max_drawdown": float(metrics[2]),
            "trades": int(metrics[3]), "entries_differing": int(np.count_nonzero(entries != ours_entries)),
            "exits_differing": int(np.count_nonzero(exits != ours_exits))},
    "on_our_signals": {"closed_trades": int(same.trades.closed.count()), "trades": int(same.trades.count()),
                       "final_equity": float(same.final_value())},
    "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def vectorbt(close: np.ndarray, signal: np.ndarray, rounds: int, folder: Path) -> dict[str, Any]:
    python = vectorbt_python(log)
    data = folder / "ticks.npz"
    np.savez(data, close=close, signal=signal)
    done = subprocess.run(  # noqa: S603
        [str(python), "-c", VECTORBT_SCRIPT, str(data), str(FEE), str(FAST), str(SLOW), str(rounds), str(CAPITAL)],
        check=True, capture_output=True, text=True)
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"vectorbt {found['version']}: {found['seconds']:.2f}s; on our signals {found['on_our_signals']}")
    return found


def measure(ticks: int, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "ticks": ticks, "rounds": rounds,
                               "strategy": STRATEGY.strip(), "fee": FEE}
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as scratch:
        folder = Path(scratch)
        path = folder / "ticks.parquet"
        frame = make_ticks(ticks)
        frame.to_parquet(path, index=False)
        strategy = folder / "strategy.toml"
        strategy.write_text(STRATEGY, encoding="utf-8")
        rule_file = RuleFile.read(strategy)
        assert rule_file is not None
        mine = ours(path, rule_file, rounds)
        signal = mine.pop("signal")
        results["ours"] = mine
        theirs = vectorbt(frame["price"].to_numpy(dtype=np.float64), signal, rounds, folder)
        results["vectorbt"] = theirs
        same = theirs["on_our_signals"]
        difference = abs(same["final_equity"] - mine["final_equity"]) / max(abs(mine["final_equity"]), 1e-300)
        results["equality"] = {"trades_equal": same["trades"] == mine["trades"],
                               "max_rel_diff_final_equity": difference,
                               "equal": same["trades"] == mine["trades"] and difference <= 1e-9}
        log(f"equality on our signals: {results['equality']}")
    results["load_average_end"] = os.getloadavg()
    return results


def figures(results: dict[str, Any]) -> list[Figure]:
    mine, theirs = results["ours"], results["vectorbt"]
    return [
        Figure(name="backtest of one strategy, in memory", unit="s", better="lower",
               ours=Measure(label="stockstream backtest (kernel + simulation + metrics), in memory",
                            value=mine["compute_s"]),
               baseline=Measure(label="vectorbt 1.2.0 MA.run + from_signals + metrics, in memory",
                                value=theirs["seconds"]),
               how=f"median of {results['rounds']} rounds each, both warmed; same ticks, same run"),
        Figure(name="backtest of one strategy, from the Parquet file", unit="s",
               better="lower",
               ours=Measure(label="stockstream backtest --input ticks.parquet (read included)",
                            value=mine["end_to_end_s"]),
               baseline=Measure(label="vectorbt 1.2.0, prices already in memory", value=theirs["seconds"]),
               how=f"median of {results['rounds']} rounds each; the baseline does not read the file"),
    ]


def run(quick: bool) -> BenchOutput:
    ticks = 100_000 if quick else 1_000_000
    results = measure(ticks, 3)
    return BenchOutput(params={"ticks": ticks, "rounds": 3, "fee": FEE, "fast": FAST, "slow": SLOW, "capital": CAPITAL},
                       figures=figures(results), details=results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100k ticks")
    parser.add_argument("--out", type=Path, help="also write the BenchOutput JSON here")
    args = parser.parse_args(argv)
    ticks = 100_000 if args.quick else args.ticks
    results = measure(ticks, args.rounds)
    output = BenchOutput(params={"ticks": ticks, "rounds": args.rounds, "fee": FEE, "fast": FAST, "slow": SLOW,
                                 "capital": CAPITAL},
                         figures=figures(results), details=results)
    return print_output(output, args.out)


if __name__ == "__main__":
    sys.exit(main())
