"""The built-in simulated feed: BTC-like prices for several symbols, seedable and reproducible.

Price model per symbol (pure, :class:`PricePath`): a geometric random walk whose
volatility switches between regimes (calm / normal / stormy, a Markov chain in event
time) plus occasional jumps (Poisson, ~one every 30 minutes of event time, ±1.5 % typical
size). Annualised volatilities 35 % / 65 % / 160 % bracket what Bitcoin shows.

Event time comes from the injected wall clock by default, or from a simulated clock
(``start + n · step``) that makes a seeded run byte-for-byte reproducible; in that mode
``ts_init`` equals ``ts_event`` so replaying the same command yields the same ticks.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from processors.ingest.reasons import RecordRejected
from processors.ingest.sources.base import Accepted, Outcome, Rejected
from processors.ingest.validation import TimeBounds, build_tick

SECONDS_PER_YEAR = 365 * 86_400


@dataclass(frozen=True)
class Regime:
    name: str
    annual_volatility: float
    mean_duration_s: float


REGIMES = (
    Regime("calm", 0.35, 3_600.0),
    Regime("normal", 0.65, 7_200.0),
    Regime("stormy", 1.60, 900.0),
)
JUMP_RATE_PER_S = 1 / 1_800
JUMP_SIZE_SIGMA = 0.015
START_PRICES = {"BTC": 65_000.0, "ETH": 3_500.0, "SOL": 150.0}


def start_price(symbol: str) -> float:
    return START_PRICES.get(symbol.split("-")[0], 100.0)


class PricePath:
    """One symbol's price process; ``step(dt)`` advances it ``dt`` seconds of event time."""

    def __init__(self, price: float, rng: random.Random) -> None:
        self.price = price
        self.rng = rng
        self.regime = 1

    def step(self, dt_s: float) -> float:
        dt = max(dt_s, 1e-6)
        if self.rng.random() < dt / REGIMES[self.regime].mean_duration_s:
            self.regime = self.rng.choice([i for i in range(len(REGIMES)) if i != self.regime])
        sigma = REGIMES[self.regime].annual_volatility * math.sqrt(dt / SECONDS_PER_YEAR)
        log_return = self.rng.gauss(-0.5 * sigma * sigma, sigma)
        if self.rng.random() < dt * JUMP_RATE_PER_S:
            log_return += self.rng.gauss(0.0, JUMP_SIZE_SIGMA)
        self.price *= math.exp(max(-0.5, min(0.5, log_return)))
        return self.price

    def trade_size(self) -> float:
        """Base-currency size of a trade: log-normal notional around $2 000."""
        notional = math.exp(self.rng.gauss(math.log(2_000.0), 1.2))
        return round(notional / self.price, 8)


def round_price(price: float) -> float:
    return round(price, 2) if price >= 1 else round(price, 8)


@dataclass(frozen=True)
class SimulatorConfig:
    symbols: tuple[str, ...]
    seed: int | None = None
    rate_per_s: float = 1.0  # over all symbols; 0 = as fast as the broker takes
    count: int | None = None
    start: datetime | None = None  # simulated clock when set
    step: timedelta = timedelta(seconds=1)
    volume: bool = True


class SimulatorSource:
    """Round-robin over the symbols, ``rate_per_s`` ticks per second in total."""

    name = "simulator"

    def __init__(
        self,
        config: SimulatorConfig,
        bounds: TimeBounds,
        now: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not config.symbols:
            raise ValueError("the simulator needs at least one symbol")
        self.config = config
        self.symbols: tuple[str, ...] | None = config.symbols
        self.bounds = bounds
        self.now = now
        self.monotonic = monotonic
        self.sleep = sleep
        deterministic = config.seed is not None and config.start is not None
        self.run_tag = f"s{config.seed}" if deterministic else uuid.uuid4().hex[:12]
        seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**63)
        self.paths = {symbol: PricePath(start_price(symbol), random.Random(f"{seed}:{symbol}"))  # noqa: S311 - a seedable simulation
                      for symbol in config.symbols}

    async def stream(self) -> AsyncIterator[Outcome]:
        config = self.config
        last_event: dict[str, datetime] = {}
        began = self.monotonic()
        index = 0
        while config.count is None or index < config.count:
            if config.rate_per_s > 0:
                delay = began + index / config.rate_per_s - self.monotonic()
                if delay > 0:
                    await self.sleep(delay)
            elif index % 256 == 0:
                await self.sleep(0)  # let signal handlers and the metrics thread breathe
            symbol = config.symbols[index % len(config.symbols)]
            if config.start is not None:
                ts_event = config.start + index * config.step
                ts_init = ts_event
            else:
                ts_event = ts_init = self.now()
            yield self._tick(index, symbol, ts_event, ts_init, last_event)
            index += 1

    def _tick(self, index: int, symbol: str, ts_event: datetime, ts_init: datetime,
              last_event: dict[str, datetime]) -> Outcome:
        path = self.paths[symbol]
        previous = last_event.get(symbol)
        dt = (ts_event - previous).total_seconds() if previous else 1.0
        last_event[symbol] = ts_event
        price = round_price(path.step(dt))
        source_id = f"sim-{self.run_tag}-{index}"
        try:
            tick = build_tick(
                source=self.name, venue=self.name, source_id=source_id, symbol=symbol, price=price,
                volume=path.trade_size() if self.config.volume else None,
                ts_event=ts_event, ts_init=ts_init, bounds=self.bounds,
            )
        except RecordRejected as rejected:  # e.g. a simulated clock set in the future
            return Rejected(rejected.reason, f"{source_id}: {rejected.detail}",
                            f'{{"symbol": "{symbol}", "price": {price}, "timestamp": "{ts_event.isoformat()}"}}')
        return Accepted(tick)
