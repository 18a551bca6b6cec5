"""Incremental technical indicators: SMA, EMA, RSI (Wilder), MACD, Bollinger bands, VWAP.

Dependency-free and O(1) per price (amortized): every runner (stream processor, batch
CLI, Spark backfill, replay) feeds prices one at a time through :attr:`IndicatorEngine.update`
and gets the same values. Definitions are the contract of MISSION.md (TA-Lib is the
reference; see docs/core.md for the comparison):

- ``sma_n``: mean of the last n prices.
- ``ema_n``: k = 2/(n+1), seeded with the SMA of the first n prices, then ``ema += k·(p − ema)``.
- ``rsi_n`` (Wilder): first average gain/loss = mean of the first n changes, then
  ``avg = (avg·(n−1) + x)/n``; ``100·G/(G+L)``, and 50 when G and L are both 0.
- ``macd`` = EMA(fast) − EMA(slow), each seeded as above; ``macd_signal`` = EMA(signal)
  of macd seeded with the mean of the first ``signal`` macd values; ``macd_hist`` = macd − signal.
- ``bb_upper/bb_middle/bb_lower``: SMA(n) ± deviations·σ, σ the population standard deviation.
- ``vwap``: Σ(price·volume)/Σ(volume) since the UTC midnight of the price (None without volume).

State is an :class:`IndicatorState`: a handful of floats plus one ring buffer of the last
N + 1 prices (N = the longest SMA/Bollinger window), so it never grows. It converts to and
from a JSON-compatible list exactly (:meth:`IndicatorEngine.dump`, :meth:`IndicatorEngine.load`).

Numerics: window sums and the Bollinger variance are updated in O(1) and re-derived
exactly from the ring buffer (``math.fsum``; corrected two-pass variance) every 128 prices
and whenever cancellation threatens: a window sum that fell below 1/1000 of its peak since the last exact derivation (a spike left the window),
or a variance below 1/10⁴ of the shifted sum of squares it is computed from. The variance
uses sums of (x − shift)² with ``shift`` a recent price, so BTC-level prices lose no
digits (x − shift is exact for prices within a factor 2 of the shift). Errors therefore
never accumulate for more than 128 prices, stay below about 1e-11 relative (see
tests/unit/core/test_core_indicator_numerics.py) and the variance is never negative.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from processors.core.generated import compile_function
from processors.core.plain import StateFormatError, as_floats, as_int, as_list

Value = float | None
STATE_LENGTH = 18  # items in the plain form of an IndicatorState
CANCELLATION = 1e-3  # re-derive a window sum exactly when it falls below this share of its peak
VARIANCE_CANCELLATION = 1e-4  # … and the variance when Σ(x−mean)² falls below this share of Σ(x−shift)²
RESYNC_EVERY = 128  # and re-derive all of them every this many prices, so rounding never piles up


@dataclass(frozen=True, slots=True)
class MacdSpec:
    """MACD periods; the default is the classic 12/26/9."""

    fast: int = 12
    slow: int = 26
    signal: int = 9

    def __post_init__(self) -> None:
        if min(self.fast, self.slow, self.signal) < 1:
            raise ValueError("MACD periods must be at least 1")
        if self.fast >= self.slow:
            raise ValueError(f"MACD fast period ({self.fast}) must be shorter than the slow one ({self.slow})")


@dataclass(frozen=True, slots=True)
class BollingerSpec:
    """Bollinger bands: SMA(period) ± deviations·σ (population σ)."""

    period: int = 20
    deviations: float = 2.0

    def __post_init__(self) -> None:
        if self.period < 1:
            raise ValueError("Bollinger period must be at least 1")
        if not (math.isfinite(self.deviations) and self.deviations > 0):
            raise ValueError("Bollinger deviations must be a positive number")


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """Which indicators to compute, with their periods. The default is the contract's set."""

    sma: tuple[int, ...] = (20, 50)
    ema: tuple[int, ...] = (12, 26)
    rsi: tuple[int, ...] = (14,)
    macd: MacdSpec | None = field(default_factory=MacdSpec)
    bollinger: BollingerSpec | None = field(default_factory=BollingerSpec)
    vwap: bool = True

    def __post_init__(self) -> None:
        for family, periods in (("sma", self.sma), ("ema", self.ema), ("rsi", self.rsi)):
            if any(period < 1 for period in periods):
                raise ValueError(f"{family} periods must be at least 1")
            if len(set(periods)) != len(periods):
                raise ValueError(f"{family} periods must not repeat")

    def names(self) -> tuple[str, ...]:
        """Output names in output order (``sma_20, sma_50, ema_12, … vwap`` by default)."""
        names = [f"sma_{n}" for n in self.sma]
        names += [f"ema_{n}" for n in self.ema]
        names += [f"rsi_{n}" for n in self.rsi]
        if self.macd is not None:
            names += ["macd", "macd_signal", "macd_hist"]
        if self.bollinger is not None:
            names += ["bb_upper", "bb_middle", "bb_lower"]
        if self.vwap:
            names.append("vwap")
        return tuple(names)

    def key(self) -> str:
        """A short text that changes whenever the state layout changes (stored with the state)."""
        macd = "-" if self.macd is None else f"{self.macd.fast}/{self.macd.slow}/{self.macd.signal}"
        bands = "-" if self.bollinger is None else f"{self.bollinger.period}x{self.bollinger.deviations!r}"
        return f"s{list(self.sma)}e{list(self.ema)}r{list(self.rsi)}m{macd}b{bands}v{int(self.vwap)}"


class IndicatorState:
    """The mutable running state of one symbol on one timeframe. Owned by one engine."""

    __slots__ = (
        "count", "ring", "pos", "sums", "peaks", "shift", "s1", "s2", "s2_peak", "m2",
        "emas", "signal", "gains", "losses", "prev", "day", "pv", "volume",
    )

    def __init__(self, windows: int, ring_size: int, emas: int, rsis: int) -> None:
        self.count = 0  # prices seen
        self.ring = [0.0] * (ring_size + 1) if ring_size else []  # last prices; newest at pos - 1
        self.pos = 0
        self.sums = [0.0] * windows  # running sum per distinct SMA/Bollinger window
        self.peaks = [0.0] * windows  # largest running sum since the last exact derivation
        self.shift = 0.0  # Bollinger: a recent price; s1 = Σ(x − shift), s2 = Σ(x − shift)² over the window
        self.s1 = 0.0
        self.s2 = 0.0
        self.s2_peak = 0.0  # largest s2 since the last exact derivation
        self.m2 = 0.0  # Σ(x − mean)² of the Bollinger window as last used (population variance · n)
        self.emas = [0.0] * emas  # seed sum while warming up, then the EMA
        self.signal = 0.0  # MACD signal: seed sum while warming up, then the EMA of macd
        self.gains = [0.0] * rsis  # RSI: sum of gains while warming up, then Wilder's average
        self.losses = [0.0] * rsis
        self.prev = 0.0  # previous price (RSI changes)
        self.day: int | None = None  # VWAP anchor: UTC day number
        self.pv = 0.0  # Σ price·volume since the anchor
        self.volume = 0.0  # Σ volume since the anchor


Update = Callable[["IndicatorState", float, float, int], list[Value]]


class IndicatorEngine:
    """The compiled plan for one :class:`IndicatorSpec`; stateless and shareable.

    Callers keep one :class:`IndicatorState` per symbol and timeframe and call
    :meth:`update` once per price in event order.
    """

    def __init__(self, spec: IndicatorSpec) -> None:
        self.spec = spec
        self.names = spec.names()
        lengths = set(spec.sma)
        if spec.bollinger is not None:
            lengths.add(spec.bollinger.period)
        self._windows = tuple(sorted(lengths))
        self._window_slots = tuple(enumerate(self._windows))
        self._ring_size = max(self._windows, default=0)
        slot = {n: j for j, n in enumerate(self._windows)}
        self._sma = tuple((slot[n], n) for n in spec.sma)
        ema_periods = list(spec.ema)
        if spec.macd is not None:
            ema_periods += [n for n in (spec.macd.fast, spec.macd.slow) if n not in ema_periods]
        self._ema_periods = tuple(ema_periods)
        self._ema = tuple((j, n, 2.0 / (n + 1)) for j, n in enumerate(ema_periods))
        self._ema_out = tuple((j, n) for j, n in enumerate(spec.ema))  # outputs: the first len(spec.ema)
        self._rsi = tuple((j, n, n - 1) for j, n in enumerate(spec.rsi))
        self._macd: tuple[int, int, int, int, float] | None = None
        if spec.macd is not None:
            m = spec.macd
            self._macd = (
                ema_periods.index(m.fast), ema_periods.index(m.slow), m.slow, m.signal, 2.0 / (m.signal + 1)
            )
        self._bands: tuple[int, int, float] | None = None
        if spec.bollinger is not None:
            b = spec.bollinger
            self._bands = (slot[b.period], b.period, b.deviations)
        self._vwap = spec.vwap
        self.warmup = max(
            [*spec.sma, *spec.ema, *(n + 1 for n in spec.rsi), 1]
            + ([spec.macd.slow + spec.macd.signal - 1] if spec.macd else [])
            + ([spec.bollinger.period] if spec.bollinger else [])
        )
        """Prices needed until every configured indicator is defined (VWAP aside)."""

        self.update: Update = self._generate()
        """Fold one price in and return every indicator value in :attr:`names` order.

        ``update(state, price, volume, day)``: ``volume`` is 0.0 when unknown; ``day`` is the UTC
        day number of the price (VWAP anchor). ``None`` marks a value that is not defined yet.
        Called once per price, in event order. This is the hot path: the function is generated
        for the spec (:meth:`_generate`), :meth:`reference_update` unrolled — the same operations
        in the same order, every period and factor a literal, no loops, no appends.
        """

        self.named: Callable[[list[Value]], dict[str, Value]] = _compiled_named(self.names)
        """``named(values)``: :meth:`update`'s values as a dict by :attr:`names` (a snapshot's ``values``), as
        ``dict(zip(names, values, strict=True))`` gives it (a list of another length raises ``ValueError``)."""

    def _generate(self) -> Update:
        """:meth:`reference_update` for this spec as straight-line source, compiled once (numbers only:
        periods, factors and thresholds by ``repr``, nothing else of the spec reaches the source)."""
        lines: list[str] = []

        def add(depth: int, text: str) -> None:
            lines.append("    " * (depth + 2) + text)

        outputs: list[str] = []
        add(0, "count = state.count + 1")
        add(0, "state.count = count")
        add(0, "sums = state.sums")
        add(0, f"resync = count % {RESYNC_EVERY!r} == 0")
        add(0, "ring = state.ring")
        if self._ring_size:
            add(0, "pos = state.pos")
            add(0, "ring[pos] = price")
            add(0, "peaks = state.peaks")
            for j, n in self._window_slots:
                add(0, f"total = sums[{j}] + (price - ring[pos - {n}])")
                add(0, f"if resync or total < peaks[{j}] * {CANCELLATION!r}:")
                add(1, f"total = _fsum(_window(ring, pos, {n}))")
                add(1, f"peaks[{j}] = total")
                add(0, f"elif total > peaks[{j}]:")
                add(1, f"peaks[{j}] = total")
                add(0, f"sums[{j}] = total")
        for j, n in self._sma:
            outputs.append(f"o{len(outputs)}")
            add(0, f"{outputs[-1]} = sums[{j}] / {n} if count >= {n} else None")
        add(0, "emas = state.emas")
        for j, n, k in self._ema:
            add(0, f"if count > {n}:")
            add(1, f"ema = emas[{j}]")
            add(1, f"emas[{j}] = ((price - ema) * {k!r}) + ema")
            add(0, f"elif count == {n}:")
            add(1, f"emas[{j}] = (emas[{j}] + price) / {n}")
            add(0, "else:")
            add(1, f"emas[{j}] += price")
        for j, n in self._ema_out:
            outputs.append(f"o{len(outputs)}")
            add(0, f"{outputs[-1]} = emas[{j}] if count >= {n} else None")
        if self._rsi:
            rsi = [f"o{len(outputs) + i}" for i in range(len(self._rsi))]
            outputs += rsi
            add(0, "changes = count - 1")
            add(0, "if changes:")
            add(1, "change = price - state.prev")
            add(1, "gains, losses = state.gains, state.losses")
            for (j, n, n_less_one), out in zip(self._rsi, rsi, strict=True):
                add(1, f"if changes > {n}:")
                add(2, f"gain = gains[{j}] * {n_less_one}")
                add(2, f"loss = losses[{j}] * {n_less_one}")
                add(1, "else:")
                add(2, f"gain = gains[{j}]")
                add(2, f"loss = losses[{j}]")
                add(1, "if change < 0.0:")
                add(2, "loss -= change")
                add(1, "else:")
                add(2, "gain += change")
                add(1, f"if changes >= {n}:")
                add(2, f"gain /= {n}")
                add(2, f"loss /= {n}")
                add(1, f"gains[{j}] = gain")
                add(1, f"losses[{j}] = loss")
                add(1, f"if changes < {n}:")
                add(2, f"{out} = None")
                add(1, "else:")
                add(2, "both = gain + loss")
                add(2, f"{out} = 100.0 * (gain / both) if both else 50.0")
            add(0, "else:")
            for out in rsi:
                add(1, f"{out} = None")
            add(0, "state.prev = price")
        if self._macd is not None:
            fast, slow, slow_n, signal_n, k = self._macd
            line, signal_out, hist = (f"o{len(outputs) + i}" for i in range(3))
            outputs += (line, signal_out, hist)
            add(0, f"if count >= {slow_n}:")
            add(1, f"macd = emas[{fast}] - emas[{slow}]")
            add(1, f"seen = count - {slow_n} + 1")
            add(1, f"if seen > {signal_n}:")
            add(2, "signal = state.signal")
            add(2, f"state.signal = signal = ((macd - signal) * {k!r}) + signal")
            add(2, f"{line}, {signal_out}, {hist} = macd, signal, macd - signal")
            add(1, f"elif seen == {signal_n}:")
            add(2, f"state.signal = signal = (state.signal + macd) / {signal_n}")
            add(2, f"{line}, {signal_out}, {hist} = macd, signal, macd - signal")
            add(1, "else:")
            add(2, "state.signal += macd")
            add(2, f"{line}, {signal_out}, {hist} = macd, None, None")
            add(0, "else:")
            add(1, f"{line} = {signal_out} = {hist} = None")
        if self._bands is not None:
            j, n, width = self._bands
            upper, middle, lower = (f"o{len(outputs) + i}" for i in range(3))
            outputs += (upper, middle, lower)
            add(0, f"if count >= {n}:")
            add(1, f"mean = sums[{j}] / {n}")
            add(1, f"exact = count == {n} or resync")
            add(1, "if not exact:")
            add(2, "shift = state.shift")
            add(2, "entering = price - shift")
            add(2, f"outgoing = ring[state.pos - {n}] - shift")
            add(2, "s1 = state.s1 + (entering - outgoing)")
            add(2, "s2 = state.s2 + (entering * entering - outgoing * outgoing)")
            add(2, f"m2 = s2 - s1 * s1 / {n}")
            add(2, f"if m2 < state.s2_peak * {VARIANCE_CANCELLATION!r}:")
            add(3, "exact = True")
            add(2, "else:")
            add(3, "state.s1, state.s2 = s1, s2")
            add(3, "if s2 > state.s2_peak:")
            add(4, "state.s2_peak = s2")
            add(1, "if exact:")
            add(2, f"window = _window(ring, state.pos, {n})")
            add(2, "state.shift = price")
            add(2, "deviations = [x - price for x in window]")
            add(2, "state.s1 = _fsum(deviations)")
            add(2, "state.s2 = state.s2_peak = _fsum(d * d for d in deviations)")
            add(2, "m2 = _exact_m2(window, mean)")
            add(1, "state.m2 = m2")
            add(1, f"deviation = {width!r} * _sqrt(m2 / {n})")
            add(1, f"{upper}, {middle}, {lower} = mean + deviation, mean, mean - deviation")
            add(0, "else:")
            add(1, f"{upper} = {middle} = {lower} = None")
        if self._ring_size:
            add(0, f"state.pos = state.pos + 1 if state.pos < {self._ring_size} else 0")
        if self._vwap:
            outputs.append(f"o{len(outputs)}")
            add(0, "if day != state.day:")
            add(1, "state.day = day")
            add(1, "state.pv = 0.0")
            add(1, "state.volume = 0.0")
            add(0, "if volume > 0.0:")
            add(1, "state.pv += price * volume")
            add(1, "state.volume += volume")
            add(0, f"{outputs[-1]} = state.pv / state.volume if state.volume > 0.0 else None")
        add(0, f"return [{', '.join(outputs)}]")
        for number in (*(n for _, n in self._window_slots), *(k for _, _, k in self._ema),
                       *((self._bands[2],) if self._bands else ()), *((self._macd[4],) if self._macd else ())):
            if not math.isfinite(number):
                raise ValueError(f"indicator parameter {number!r} is not finite")
        return _compiled_update("\n".join(["def _make(_fsum, _sqrt, _window, _exact_m2):",
                                           "    def update(state, price, volume, day):", *lines,
                                           "    return update"]) + "\n")

    def new_state(self) -> IndicatorState:
        return IndicatorState(len(self._windows), self._ring_size, len(self._ema_periods), len(self._rsi))

    def reference_update(self, state: IndicatorState, price: float, volume: float, day: int) -> list[Value]:
        """:attr:`update` written as loops over the spec (what the generated one is tested against, bit for bit)."""
        count = state.count + 1
        state.count = count
        sums = state.sums

        # Sliding windows (SMA, Bollinger) over one ring buffer of the last N + 1 prices:
        # after writing the new price at ``pos``, ring[pos - n] is the price leaving window n.
        resync = count % RESYNC_EVERY == 0
        ring = state.ring
        if ring:
            pos = state.pos
            ring[pos] = price
            peaks = state.peaks
            for j, n in self._window_slots:
                total = sums[j] + (price - ring[pos - n])
                if resync or total < peaks[j] * CANCELLATION:
                    total = math.fsum(_window(ring, pos, n))
                    peaks[j] = total
                elif total > peaks[j]:
                    peaks[j] = total
                sums[j] = total

        values: list[Value] = []
        for j, n in self._sma:
            values.append(sums[j] / n if count >= n else None)

        # EMAs (also the MACD legs): seed sum until n prices, then the recurrence.
        emas = state.emas
        for j, n, k in self._ema:
            if count > n:
                ema = emas[j]
                emas[j] = ((price - ema) * k) + ema
            elif count == n:
                emas[j] = (emas[j] + price) / n
            else:
                emas[j] += price
        for j, n in self._ema_out:
            values.append(emas[j] if count >= n else None)

        # Wilder RSI over price changes: sums of the first n changes, then smoothing.
        if self._rsi:
            changes = count - 1
            if changes:
                change = price - state.prev
                gains, losses = state.gains, state.losses
                for j, n, n_less_one in self._rsi:
                    if changes > n:
                        gain = gains[j] * n_less_one
                        loss = losses[j] * n_less_one
                    else:
                        gain = gains[j]
                        loss = losses[j]
                    if change < 0.0:
                        loss -= change
                    else:
                        gain += change
                    if changes >= n:
                        gain /= n
                        loss /= n
                    gains[j] = gain
                    losses[j] = loss
                    if changes < n:
                        values.append(None)
                    else:
                        both = gain + loss
                        values.append(100.0 * (gain / both) if both else 50.0)
            else:
                values += [None] * len(self._rsi)
            state.prev = price

        if self._macd is not None:
            fast, slow, slow_n, signal_n, k = self._macd
            if count >= slow_n:
                macd = emas[fast] - emas[slow]
                seen = count - slow_n + 1
                if seen > signal_n:
                    signal = state.signal
                    state.signal = signal = ((macd - signal) * k) + signal
                    values += (macd, signal, macd - signal)
                elif seen == signal_n:
                    state.signal = signal = (state.signal + macd) / signal_n
                    values += (macd, signal, macd - signal)
                else:
                    state.signal += macd
                    values += (macd, None, None)
            else:
                values += (None, None, None)

        if self._bands is not None:
            j, n, width = self._bands
            if count >= n:
                mean = sums[j] / n
                exact = count == n or resync
                if not exact:
                    # Shifted sums: x − shift is exact for prices within 2× of the shift (Sterbenz),
                    # so high price levels cost no digits; cancellation is caught below.
                    shift = state.shift
                    entering = price - shift
                    outgoing = ring[state.pos - n] - shift
                    s1 = state.s1 + (entering - outgoing)
                    s2 = state.s2 + (entering * entering - outgoing * outgoing)
                    m2 = s2 - s1 * s1 / n
                    if m2 < state.s2_peak * VARIANCE_CANCELLATION:
                        exact = True
                    else:
                        state.s1, state.s2 = s1, s2
                        if s2 > state.s2_peak:
                            state.s2_peak = s2
                if exact:
                    window = _window(ring, state.pos, n)
                    state.shift = price
                    deviations = [x - price for x in window]
                    state.s1 = math.fsum(deviations)
                    state.s2 = state.s2_peak = math.fsum(d * d for d in deviations)
                    m2 = _exact_m2(window, mean)
                state.m2 = m2
                deviation = width * math.sqrt(m2 / n)
                values += (mean + deviation, mean, mean - deviation)
            else:
                values += (None, None, None)
        if ring:
            state.pos = state.pos + 1 if state.pos < self._ring_size else 0

        if self._vwap:
            if day != state.day:
                state.day = day
                state.pv = 0.0
                state.volume = 0.0
            if volume > 0.0:
                state.pv += price * volume
                state.volume += volume
            values.append(state.pv / state.volume if state.volume > 0.0 else None)
        return values

    # -- state as a plain JSON-compatible value -------------------------------------------

    def dump(self, state: IndicatorState) -> list[object]:
        """The state as a JSON-compatible list (copies; floats round-trip exactly through JSON)."""
        return [
            state.count, list(state.ring), state.pos, list(state.sums), list(state.peaks),
            state.shift, state.s1, state.s2, state.s2_peak, state.m2, list(state.emas), state.signal, list(state.gains),
            list(state.losses), state.prev, state.day, state.pv, state.volume,
        ]

    def load(self, plain: list[object]) -> IndicatorState:
        """Rebuild a state from :meth:`dump` output (never aliases ``plain``'s lists)."""
        what = "indicator state"
        state = IndicatorState.__new__(IndicatorState)
        (count, ring, pos, sums, peaks, shift, s1, s2, s2_peak, m2, emas, signal, gains, losses, prev,
         day, pv, volume) = as_list(plain, STATE_LENGTH, what)
        windows, rsis = len(self._windows), len(self._rsi)
        state.count = as_int(count, what)
        state.pos = as_int(pos, what)
        state.day = None if day is None else as_int(day, what)
        state.ring = as_floats(ring, self._ring_size + 1 if self._ring_size else 0, what)
        state.sums = as_floats(sums, windows, what)
        state.peaks = as_floats(peaks, windows, what)
        state.emas = as_floats(emas, len(self._ema_periods), what)
        state.gains = as_floats(gains, rsis, what)
        state.losses = as_floats(losses, rsis, what)
        try:  # float() is the cheap check here: this runs for every tick of a state-store runner
            state.shift, state.s1, state.s2 = float(shift), float(s1), float(s2)
            state.s2_peak, state.m2, state.signal = float(s2_peak), float(m2), float(signal)
            state.prev, state.pv, state.volume = float(prev), float(pv), float(volume)
        except (TypeError, ValueError) as error:
            raise StateFormatError(f"{what}: {error}") from None
        return state


@functools.lru_cache(maxsize=64)
def _compiled_update(source: str) -> Update:
    """The update function of :meth:`IndicatorEngine._generate`'s source, compiled once per distinct source (the
    engines of a runner's per-symbol configs share it: it holds no state)."""
    make = compile_function(source, "<indicators>", "_make")  # numbers of the spec only (_generate)
    update: Update = make(math.fsum, math.sqrt, _window, _exact_m2)
    update.source = source  # type: ignore[attr-defined] # for people reading a traceback or a test failure
    return update


@functools.lru_cache(maxsize=64)
def _compiled_named(names: tuple[str, ...]) -> Callable[[list[Value]], dict[str, Value]]:
    """``{names[0]: values[0], …}`` as one dict display (half the CPU of ``dict(zip(…))``; names by ``repr``)."""
    local = [f"v{i}" for i in range(len(names))]
    unpack = f"    {', '.join(local)}{',' if len(local) == 1 else ''} = values" if local else "    () = values"
    source = "\n".join(["def named(values):", unpack,
                        "    return {" + ", ".join(f"{name!r}: {v}" for name, v in zip(names, local, strict=True)) + "}"])
    named: Callable[[list[Value]], dict[str, Value]] = compile_function(source + "\n", "<indicator names>", "named")
    return named


def _window(ring: list[float], pos: int, n: int) -> list[float]:
    """The last n prices of the ring (oldest first); ``pos`` is the slot of the newest."""
    start = pos - n + 1
    if start >= 0:
        return ring[start : pos + 1]
    return ring[start:] + ring[: pos + 1]


def _exact_m2(values: list[float], mean: float) -> float:
    """Σ(x − mean)² by the corrected two-pass formula with exact sums; never negative."""
    deviations = [x - mean for x in values]
    m2 = math.fsum(d * d for d in deviations) - math.fsum(deviations) ** 2 / len(values)
    return m2 if m2 > 0.0 else 0.0

