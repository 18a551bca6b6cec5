"""Regenerate ``ticks_sample.csv``: the held-in test series (deterministic; do not edit the CSV by hand).

Three symbols interleaved in event-time order from 23:40 to 00:20 UTC (so it spans a UTC
midnight), BTC/ETH/SOL-like price levels as geometric random walks with occasional
jumps, lognormal trade sizes, timestamps with and without fractional seconds, ``Z`` and
``+00:00``. Every row is valid and in order per symbol, so any runner must use them all.

    .venv/bin/python tests/data/make_ticks_sample.py > tests/data/ticks_sample.csv
"""

from __future__ import annotations

import math
import random
import sys
from datetime import UTC, datetime, timedelta

SYMBOLS = {"BTC-USD": (64_250.0, 2.5e-4, 0.05), "ETH-USD": (3_412.5, 3e-4, 0.8), "SOL-USD": (151.25, 4e-4, 12.0)}
START = datetime(2024, 3, 9, 23, 40, tzinfo=UTC)
END = datetime(2024, 3, 10, 0, 20, tzinfo=UTC)


def main() -> None:
    rng = random.Random(20240309)  # noqa: S311 - test data, not crypto
    prices = {symbol: level for symbol, (level, _, _) in SYMBOLS.items()}
    moment = START
    rows = ["timestamp,symbol,price,volume"]
    while moment < END:
        moment += timedelta(microseconds=rng.randrange(50_000, 1_500_000))
        symbol = rng.choice(list(SYMBOLS))
        _, sigma, size = SYMBOLS[symbol]
        shock = rng.gauss(0.0, sigma) + (rng.choice((-1, 1)) * 20 * sigma if rng.random() < 0.004 else 0.0)
        prices[symbol] *= math.exp(shock)
        price = round(prices[symbol], 2)
        volume = round(size * rng.lognormvariate(0.0, 1.0), 6)
        moment -= timedelta(microseconds=moment.microsecond % 1000)  # millisecond resolution
        if rng.random() < 0.8:
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}"
        else:  # a whole second, later than the previous row
            moment += timedelta(microseconds=(1_000_000 - moment.microsecond) % 1_000_000)
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
        stamp += "Z" if rng.random() < 0.7 else "+00:00"
        rows.append(f"{stamp},{symbol},{price:.2f},{volume}")
    sys.stdout.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
