"""Signal rules: BUY/SELL on transitions of indicator values (MISSION.md, the contract).

Every rule compares the current evaluation with the previous one of the same symbol and
timeframe and fires only when both are defined:

- ``rsi_reversal``: BUY when RSI goes from < oversold to ≥ oversold; SELL when it goes
  from > overbought to ≤ overbought.
- ``ema_cross``: d = EMA(fast) − EMA(slow); BUY when d goes from ≤ 0 to > 0, SELL when
  from ≥ 0 to < 0.
- ``macd_cross``: the same on d = macd − macd_signal.
- ``seed_rsi_ema``: BUY when (RSI < oversold and price < EMA) becomes true, SELL when
  (RSI > overbought and price > EMA) becomes true; "becomes true" means the previous
  (defined) evaluation was false.

The rule state is a fixed list of five JSON values (previous RSI, previous EMA
difference, previous MACD difference, previous seed BUY and SELL conditions), whatever
rules are enabled, so enabling a rule never changes the state layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from processors.core.indicators import Value
from processors.core.plain import StateFormatError, as_list

RULE_NAMES = ("rsi_reversal", "ema_cross", "macd_cross", "seed_rsi_ema")
BUY = "BUY"
SELL = "SELL"
RuleState = list[float | bool | None]
Fired = tuple[str, str]  # (rule, side)

_RSI, _EMA, _MACD, _SEED_BUY, _SEED_SELL = range(5)


class RuleConfigError(ValueError):
    """A rule refers to an indicator that is not computed; the message says what to add."""


@dataclass(frozen=True, slots=True)
class RsiReversal:
    period: int = 14
    oversold: float = 30.0
    overbought: float = 70.0


@dataclass(frozen=True, slots=True)
class EmaCross:
    fast: int = 12
    slow: int = 26


@dataclass(frozen=True, slots=True)
class MacdCross:
    pass


@dataclass(frozen=True, slots=True)
class SeedRsiEma:
    rsi_period: int = 14
    ema_period: int = 12
    oversold: float = 30.0
    overbought: float = 70.0


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """The enabled rules with their parameters (``None`` disables a rule)."""

    rsi_reversal: RsiReversal | None = field(default_factory=RsiReversal)
    ema_cross: EmaCross | None = field(default_factory=EmaCross)
    macd_cross: MacdCross | None = field(default_factory=MacdCross)
    seed_rsi_ema: SeedRsiEma | None = field(default_factory=SeedRsiEma)

    def enabled(self) -> tuple[str, ...]:
        return tuple(name for name in RULE_NAMES if getattr(self, name) is not None)


class RuleEngine:
    """The rules of one :class:`RuleSpec`, bound to the positions of an indicator name list."""

    def __init__(self, spec: RuleSpec, names: tuple[str, ...]) -> None:
        self.spec = spec

        def position(rule: str, indicator: str, hint: str) -> int:
            if indicator not in names:
                raise RuleConfigError(f"rule {rule} needs {indicator}, which is not computed: {hint}")
            return names.index(indicator)

        self._rsi: tuple[int, float, float] | None = None
        if spec.rsi_reversal is not None:
            r = spec.rsi_reversal
            where = position("rsi_reversal", f"rsi_{r.period}", f"add {r.period} to indicators.rsi")
            self._rsi = (where, r.oversold, r.overbought)
        self._ema: tuple[int, int] | None = None
        if spec.ema_cross is not None:
            e = spec.ema_cross
            self._ema = (
                position("ema_cross", f"ema_{e.fast}", f"add {e.fast} to indicators.ema"),
                position("ema_cross", f"ema_{e.slow}", f"add {e.slow} to indicators.ema"),
            )
        self._macd: tuple[int, int] | None = None
        if spec.macd_cross is not None:
            hint = "enable indicators.macd"
            self._macd = (position("macd_cross", "macd", hint), position("macd_cross", "macd_signal", hint))
        self._seed: tuple[int, int, float, float] | None = None
        if spec.seed_rsi_ema is not None:
            s = spec.seed_rsi_ema
            self._seed = (
                position("seed_rsi_ema", f"rsi_{s.rsi_period}", f"add {s.rsi_period} to indicators.rsi"),
                position("seed_rsi_ema", f"ema_{s.ema_period}", f"add {s.ema_period} to indicators.ema"),
                s.oversold,
                s.overbought,
            )

    @staticmethod
    def new_state() -> RuleState:
        return [None, None, None, None, None]

    def evaluate(self, state: RuleState, values: list[Value], price: float) -> list[Fired]:
        """The rules that fire on this evaluation, in :data:`RULE_NAMES` order; updates ``state``."""
        fired: list[Fired] = []
        if self._rsi is not None:
            where, oversold, overbought = self._rsi
            rsi = values[where]
            before = state[_RSI]
            if rsi is not None and before is not None:
                if before < oversold <= rsi:
                    fired.append(("rsi_reversal", BUY))
                elif before > overbought >= rsi:
                    fired.append(("rsi_reversal", SELL))
            state[_RSI] = rsi
        if self._ema is not None:
            _cross(fired, "ema_cross", state, _EMA, values[self._ema[0]], values[self._ema[1]])
        if self._macd is not None:
            _cross(fired, "macd_cross", state, _MACD, values[self._macd[0]], values[self._macd[1]])
        if self._seed is not None:
            rsi_at, ema_at, oversold, overbought = self._seed
            rsi, ema = values[rsi_at], values[ema_at]
            if rsi is not None and ema is not None:
                buy = rsi < oversold and price < ema
                sell = rsi > overbought and price > ema
                if buy and state[_SEED_BUY] is False:
                    fired.append(("seed_rsi_ema", BUY))
                if sell and state[_SEED_SELL] is False:
                    fired.append(("seed_rsi_ema", SELL))
                state[_SEED_BUY] = buy
                state[_SEED_SELL] = sell
        return fired

    @staticmethod
    def load(plain: object) -> RuleState:
        """Validate and copy a rule state read back from JSON."""
        rsi, ema, macd, seed_buy, seed_sell = state = as_list(plain, 5, "rule state")
        for number in (rsi, ema, macd):
            if number is not None and type(number) is not float:
                raise StateFormatError(f"rule state: expected a number or null, got {number!r}")
        for flag in (seed_buy, seed_sell):
            if flag is not None and type(flag) is not bool:
                raise StateFormatError(f"rule state: expected true, false or null, got {flag!r}")
        state = state.copy()
        return state


def _cross(fired: list[Fired], rule: str, state: RuleState, slot: int, first: Value, second: Value) -> None:
    """Sign change of ``first − second`` between the previous and this evaluation."""
    if first is None or second is None:
        state[slot] = None
        return
    difference = first - second
    before = state[slot]
    if before is not None:
        if before <= 0.0 < difference:
            fired.append((rule, BUY))
        elif before >= 0.0 > difference:
            fired.append((rule, SELL))
    state[slot] = difference
