"""The simulated feed: reproducible, realistic enough, paced, bounded."""

from __future__ import annotations

import asyncio
import math
import random
import statistics
from datetime import UTC, datetime, timedelta

from processors.ingest.sources.base import Accepted
from processors.ingest.sources.simulator import PricePath, SimulatorConfig, SimulatorSource
from processors.ingest.validation import TimeBounds

START = datetime(2024, 1, 1, tzinfo=UTC)


class FakeClock:
    """Monotonic time that only moves when the source sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def collect(config: SimulatorConfig, clock: FakeClock | None = None) -> list[Accepted]:
    clock = clock or FakeClock()
    source = SimulatorSource(config, TimeBounds(), now=lambda: datetime.now(UTC),
                             monotonic=clock.monotonic, sleep=clock.sleep)

    async def run() -> list[Accepted]:
        return [outcome async for outcome in source.stream()]  # type: ignore[misc]

    return asyncio.run(run())


def test_seed_and_simulated_clock_reproduce_the_same_ticks():
    config = SimulatorConfig(symbols=("BTC-USD", "ETH-USD"), seed=11, rate_per_s=0, count=500, start=START)
    first, second = collect(config), collect(config)
    assert [o.tick for o in first] == [o.tick for o in second]
    other = collect(SimulatorConfig(symbols=("BTC-USD", "ETH-USD"), seed=12, rate_per_s=0, count=500, start=START))
    assert [o.tick.price for o in other] != [o.tick.price for o in first]


def test_simulated_clock_steps_round_robin_and_ids_are_unique():
    ticks = [o.tick for o in collect(SimulatorConfig(
        symbols=("BTC-USD", "ETH-USD", "SOL-USD"), seed=1, rate_per_s=0, count=9, start=START,
        step=timedelta(seconds=2)))]
    assert [t.symbol for t in ticks[:3]] == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert [t.ts_event for t in ticks] == [START + timedelta(seconds=2 * i) for i in range(9)]
    assert all(t.ts_init == t.ts_event for t in ticks)  # reproducible byte for byte
    assert len({t.source_id for t in ticks}) == 9 and ticks[0].source_id == "sim-s1-0"


def test_wall_clock_run_uses_injected_now_and_random_run_tag():
    fixed = datetime(2024, 3, 3, 3, 3, tzinfo=UTC)
    clock = FakeClock()
    source = SimulatorSource(SimulatorConfig(symbols=("BTC-USD",), seed=5, rate_per_s=0, count=3), TimeBounds(),
                             now=lambda: fixed, monotonic=clock.monotonic, sleep=clock.sleep)

    async def run() -> list[Accepted]:
        return [outcome async for outcome in source.stream()]  # type: ignore[misc]

    ticks = [o.tick for o in asyncio.run(run())]
    assert {t.ts_event for t in ticks} == {fixed} and not ticks[0].source_id.startswith("sim-s5-")


def test_rate_paces_ticks_in_event_loop_time():
    clock = FakeClock()
    collect(SimulatorConfig(symbols=("BTC-USD",), seed=3, rate_per_s=4.0, count=21, start=START), clock)
    assert math.isclose(clock.now, 20 / 4.0)  # tick n is due at n / rate


def test_volume_is_optional_and_non_negative():
    with_volume = collect(SimulatorConfig(symbols=("BTC-USD",), seed=2, rate_per_s=0, count=200, start=START))
    assert all(o.tick.volume is not None and o.tick.volume >= 0 for o in with_volume)
    without = collect(SimulatorConfig(symbols=("BTC-USD",), seed=2, rate_per_s=0, count=5, start=START, volume=False))
    assert all(o.tick.volume is None for o in without)


def test_price_path_is_btc_like_over_a_simulated_day():
    path = PricePath(65_000.0, random.Random(42))  # noqa: S311
    prices = [path.step(1.0) for _ in range(86_400)]
    assert all(math.isfinite(p) and p > 0 for p in prices)
    returns = [math.log(b / a) for a, b in zip(prices, prices[1:], strict=False)]
    annualized = statistics.pstdev(returns) * math.sqrt(365 * 86_400)
    assert 0.2 < annualized < 2.5  # Bitcoin-like volatility, not a flat line nor chaos
    assert 30_000 < prices[-1] < 130_000


def test_regimes_switch_and_jumps_happen():
    path = PricePath(100.0, random.Random(7))  # noqa: S311
    regimes = set()
    biggest = 0.0
    previous = path.price
    for _ in range(200_000):
        price = path.step(1.0)
        regimes.add(path.regime)
        biggest = max(biggest, abs(math.log(price / previous)))
        previous = price
    assert regimes == {0, 1, 2}
    assert biggest > 0.01  # a jump, far beyond a one-second diffusion step (~1e-4)
