"""The examples of docs/core.md ("Strategies") and docs/examples/strategies.toml parse, compile and run.

Each is fed like a runner would: ticks through today's pipeline (which closes 1m, 5m and 1h
candles), the candles of each step to ``on_candles``, then the tick to ``on_tick`` — over the
held-in sample data and a synthetic 8-hour series. Every example file must fire at least once.
"""

from __future__ import annotations

import csv
import math
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from processors.core.pipeline import PipelineConfig, SymbolProcessor
from processors.core.strategies import ir
from processors.core.strategies.engine import ClosedCandle, CompiledStrategies
from processors.core.strategies.file import load_strategies, parse_strategies
from processors.core.timeutil import to_us
from schemas.events import Lineage, Tick
from schemas.instruments import Instrument

REPO = Path(__file__).resolve().parents[4]
TIMEFRAMES = ("1m", "5m", "1h")
EXAMPLE = re.compile(r"```(toml|yaml)\n(# example: [^\n]*\n.*?)```", re.DOTALL)


def doc_examples() -> list[tuple[str, str, str]]:
    text = (REPO / "docs" / "core.md").read_text(encoding="utf-8")
    found = [(body.splitlines()[0].removeprefix("# example: "), syntax, body) for syntax, body in EXAMPLE.findall(text)]
    assert len(found) >= 4
    return found


def sample_ticks() -> Iterator[Tick]:
    with (REPO / "tests" / "data" / "ticks_sample.csv").open(encoding="utf-8") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            moment = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
            yield Tick(symbol=row["symbol"], venue="test", price=float(row["price"]), volume=float(row["volume"]), ts_event=moment,
                       ts_init=moment, source="file", source_id=str(i))


def synthetic_ticks() -> Iterator[Tick]:
    rng = random.Random(20)  # noqa: S311 - test data
    start = datetime(2024, 3, 11, 6, 0, tzinfo=UTC)
    prices = {"BTC-USD": 64_000.0, "ETH-USD": 3_400.0}
    for i in range(14_400):  # 8 hours, one tick per symbol every 4 s
        symbol = "BTC-USD" if i % 2 else "ETH-USD"
        prices[symbol] = round(prices[symbol] * math.exp(rng.gauss(0.0, 1.5e-3)), 2)
        moment = start + timedelta(seconds=2 * i)
        yield Tick(symbol=symbol, venue="test", price=prices[symbol], volume=round(rng.lognormvariate(-2, 1), 6), ts_event=moment,
                   ts_init=moment, source="test", source_id=str(i))


def run(definitions: tuple[ir.StrategyDefinition, ...], ticks: Iterator[Tick]) -> list[tuple[str, str, str]]:
    compiled = CompiledStrategies(definitions, candle_timeframes=TIMEFRAMES)
    config = PipelineConfig(candle_timeframes=TIMEFRAMES)
    processors: dict[str, SymbolProcessor] = {}
    states = {}
    fired = []
    for offset, tick in enumerate(ticks):
        if tick.symbol not in processors:
            processors[tick.symbol] = SymbolProcessor(config, Instrument(tick.symbol, tick.venue))
            states[tick.symbol] = compiled.new_state(tick.symbol)
        out = processors[tick.symbol].process(tick, Lineage(topic="ticks", partition=0, offset=offset))
        closed = [ClosedCandle(c.timeframe, to_us(c.ts_open), to_us(c.ts_close), c.open, c.high, c.low, c.close,
                               c.volume) for c in out.candles]
        found = [*compiled.on_candles(states[tick.symbol], closed)]
        if not out.out_of_order and not out.rejections:
            found += compiled.on_tick(states[tick.symbol], to_us(tick.ts_event), tick.price, tick.volume or 0.0)
        fired += [(tick.symbol, f.strategy.name, f.side) for f in found]
    return fired


@pytest.mark.parametrize(("title", "syntax", "body"), doc_examples(), ids=lambda value: str(value)[:40])
def test_each_example_of_the_docs_runs(title: str, syntax: str, body: str) -> None:
    definitions = parse_strategies(body, syntax=syntax, candle_timeframes=TIMEFRAMES, source=title)
    run(definitions, sample_ticks())
    assert run(definitions, synthetic_ticks()), f"{title}: no signal in 8 hours"


def test_the_example_file_runs() -> None:
    definitions = load_strategies(REPO / "docs" / "examples" / "strategies.toml", candle_timeframes=TIMEFRAMES)
    assert len(definitions) == 7
    fired = run(definitions, synthetic_ticks())
    assert {name for _, name, _ in fired} >= {"rsi_reversal", "ema_cross", "trend_pullback", "band_reversion"}
    assert not {symbol for symbol, name, _ in fired if name == "band_reversion"} - {"BTC-USD", "ETH-USD"}
