"""Where a run's state warms up from: the backfill's rule, for ``runs start`` and ``strategy deploy``.

A run (docs/runs.md) whose range starts inside the log would start with its indicators
undefined and today's daily summary at zero. So by default its processor starts earlier and
only builds its state from the records before the range (``PROCESS_EMIT_FROM``: they produce
nothing): from the first record whose timestamp is at or after *the midnight before the range's
first tick − 1 day − the strategy's warm-up* — the read start of a backfill of the same range
and strategy (:func:`spark_jobs.backfill.plan.strategy_warmup` for the duration,
:func:`spark_jobs.backfill.ranges.resolve_range` for the offsets; no second copy of either). Its
outputs then equal the backfill's and a run from the log's beginning (to the backfill's 1e-12
tolerance; exactly when the rule reaches the log's beginning), except for a strategy that reads a
cumulative indicator (OBV), which only a warm-up from the log's beginning makes equal.

A shadow that starts at the log's end (``--follow``, ``strategy deploy``) has no tick in its range
yet: the newest tick of each partition dates its start instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from processors.core.timeutil import DAY_US, from_us
from processors.stream.settings import ProcessSettings
from spark_jobs.backfill.plan import Warmup


@dataclass(frozen=True)
class WarmStart:
    """The warm-up the rule chose for a run starting at ``starts``."""

    offsets: dict[int, int]  # per partition, the first offset the run's processor reads (≤ its start)
    starts: dict[int, int]  # per partition, the first offset whose outputs the run produces
    read_from_us: int | None  # every tick with an event time at or after this is read; None: no tick dates the start
    warmup: Warmup
    cumulative: bool  # a [strategies] rule reads a cumulative indicator: only the log's beginning is exact
    log_start: frozenset[int]  # partitions read from their first offset

    @property
    def records(self) -> int:
        """Records read before the range only to build the state (the warm-up's cost)."""
        return sum(self.starts[p] - self.offsets[p] for p in self.starts)

    @property
    def midnight(self) -> datetime | None:
        """The midnight (UTC) before the range's first tick, which the rule counts back from."""
        if self.read_from_us is None:
            return None
        return from_us(self.read_from_us + DAY_US + self.warmup.duration_us)

    def describe(self) -> str:
        """One line for the operator: what the warm-up reads, from where, and why."""
        where = ",".join(f"{p}:{o}" for p, o in sorted(self.offsets.items()))
        whole = set(self.log_start) >= set(self.offsets)
        if self.records == 0 and whole:
            return "warm-up: none needed, the range starts at the log's beginning."
        text = (f"warm-up: {self.records:,} records from {where}"
                + (" (the log's beginning)" if whole else "") + " build the state before the range")
        if self.read_from_us is not None and self.midnight is not None:
            text += (f"; the backfill's rule: ticks since {from_us(self.read_from_us):%Y-%m-%dT%H:%M:%SZ} ="
                     f" midnight {self.midnight:%Y-%m-%d} − 1 day − {_span(self.warmup.duration_us)} of warm-up"
                     f" ({self.warmup.periods} periods of {_span(self.warmup.longest_candle_us) or 'ticks'}"
                     " and the longest scorecard horizon)")
        if self.cumulative:
            text += "; a strategy reads a cumulative indicator (obv): only --warm-from 0 gives outputs equal to live's"
        return text + "."


def _span(us: int) -> str:
    """``1d 6h 45m``: a duration in the units people read (empty for 0)."""
    seconds = us // 1_000_000
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts)


def dating_offsets(starts: Mapping[int, int], ends: Mapping[int, int]) -> dict[int, int]:
    """The records whose event time dates a range's start: the range itself when it has a record in some
    partition, else (a shadow from the log's end) the newest record of every partition (0 when empty).

    Passed to :func:`~spark_jobs.backfill.ranges.resolve_range` as the start with ``ends`` as the end:
    the earliest event time among them is the range's first tick, as in a backfill from those offsets.
    """
    if any(start < ends.get(p, start) for p, start in starts.items()):
        return dict(starts)
    return {p: max(ends.get(p, 0) - 1, 0) for p in starts}


def run_warmup(settings: ProcessSettings) -> tuple[Warmup, bool]:
    """The warm-up of the run's strategy on the processor's timeframes and horizons, and whether it is
    inexact (a cumulative indicator). Raises ``StrategyError`` for a strategy file that does not load."""
    from processors.core.strategy import DEFAULT_STRATEGY, load_strategy
    from processors.stream.topology import pipeline_configs
    from schemas.timeframes import timeframe_ms
    from spark_jobs.backfill.plan import strategies_warmup, strategy_warmup

    strategy = DEFAULT_STRATEGY if settings.strategy_file is None else load_strategy(settings.strategy_file)
    config = pipeline_configs(settings, strategy).for_symbol("CHECK")  # the base config, as the backfill's
    warmup = strategy_warmup(strategy, config, [timeframe_ms(tf) * 1000 for tf in settings.candle_timeframes])
    return warmup, strategies_warmup(config.strategies)[1]


def warm_start(settings: ProcessSettings, starts: Mapping[int, int], ends: Mapping[int, int]) -> WarmStart:
    """Where a run of ``settings``' strategy over ``starts`` → ``ends`` (the log's end for a shadow) warms up
    from. Reads the ticks topic (a few records and the broker's time index); raises ``RangeError``."""
    from spark_jobs.backfill.ranges import RangeRequest, resolve_range
    from spark_jobs.settings import SparkJobSettings

    warmup, cumulative = run_warmup(settings)
    skew_us = round(SparkJobSettings().clock_skew_s * 1e6)  # BACKFILL_CLOCK_SKEW_SECONDS: the backfill's rule
    found = resolve_range(settings, RangeRequest(from_offset=dating_offsets(starts, ends), to_offset=dict(ends)),
                          warmup.duration_us, skew_us)
    offsets = {p: min(found.read_start.get(p, start), start) for p, start in starts.items()}
    return WarmStart(offsets, dict(starts), found.read_from_us, warmup, cumulative, found.log_start & set(offsets))
