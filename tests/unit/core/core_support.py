"""Helpers for the core tests: ticks from compact specs, running a series through the pipeline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from processors.core.pipeline import PipelineConfig, StepOutput, SymbolProcessor
from schemas.events import Lineage, Tick
from schemas.instruments import Instrument

T0 = datetime(2024, 3, 9, 23, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 + seconds (T0 is 2024-03-09 23:00:00 UTC; +3600 s is the next UTC midnight)."""
    return T0 + timedelta(seconds=seconds)


def tick(seconds: float, price: float, volume: float | None = 1.0, symbol: str = "BTC-USD", n: int = 0,
         venue: str = "test") -> Tick:
    moment = at(seconds)
    return Tick(symbol=symbol, venue=venue, price=price, volume=volume, ts_event=moment, ts_init=moment + timedelta(milliseconds=3),
                source="test", source_id=f"{symbol}-{n}-{seconds}")


def lineage(offset: int, partition: int = 0) -> Lineage:
    return Lineage(topic="ticks", partition=partition, offset=offset)


def run(config: PipelineConfig, ticks: Iterable[Tick], symbol: str = "BTC-USD") -> list[StepOutput]:
    processor = SymbolProcessor(config, Instrument(symbol, "test"))
    return [processor.process(t, lineage(i)) for i, t in enumerate(ticks)]


def series_ticks(prices: Sequence[float], step_s: float = 1.0, start_s: float = 0.0,
                 volume: float | None = 1.0, symbol: str = "BTC-USD") -> list[Tick]:
    return [tick(start_s + i * step_s, p, volume, symbol, i) for i, p in enumerate(prices)]


def dumps(output: StepOutput) -> list[str]:
    """Every event of an output as JSON text, in a fixed order (for byte-for-byte comparison)."""
    events = [*output.snapshots, *output.candles, *output.signals, *output.summaries, *output.rejections]
    return [type(e).__name__ + e.model_dump_json() for e in events] + [f"out_of_order={output.out_of_order}"]
