"""Signal rules: every rule and side, thresholds at their edges, and "only when both are defined"."""

from __future__ import annotations

from dataclasses import replace

import pytest

from processors.core.rules import (
    EmaCross,
    MacdCross,
    RsiReversal,
    RuleConfigError,
    RuleEngine,
    RuleSpec,
    SeedRsiEma,
)

NAMES = ("ema_12", "ema_26", "rsi_14", "macd", "macd_signal")


NO_RULES = RuleSpec(rsi_reversal=None, ema_cross=None, macd_cross=None, seed_rsi_ema=None)


def engine(**rules: object) -> RuleEngine:
    """Only the given rules enabled."""
    return RuleEngine(replace(NO_RULES, **rules), NAMES)


def values(ema12: float | None = None, ema26: float | None = None, rsi: float | None = None,
           macd: float | None = None, signal: float | None = None) -> list[float | None]:
    return [ema12, ema26, rsi, macd, signal]


def fire(rules: RuleEngine, evaluations: list[tuple[list[float | None], float]]) -> list[list[tuple[str, str]]]:
    state = rules.new_state()
    return [rules.evaluate(state, row, price) for row, price in evaluations]


@pytest.mark.parametrize(("before", "after", "expected"), [
    (29.9, 30.0, [("rsi_reversal", "BUY")]),  # < 30 → ≥ 30
    (29.9, 45.0, [("rsi_reversal", "BUY")]),
    (30.0, 35.0, []),  # was not below 30
    (25.0, 29.99, []),  # still below
    (70.1, 70.0, [("rsi_reversal", "SELL")]),  # > 70 → ≤ 70
    (80.0, 50.0, [("rsi_reversal", "SELL")]),
    (70.0, 60.0, []),  # was not above 70
    (75.0, 70.01, []),
])
def test_rsi_reversal(before: float, after: float, expected: list[tuple[str, str]]) -> None:
    rules = engine(rsi_reversal=RsiReversal())
    assert fire(rules, [(values(rsi=before), 1.0), (values(rsi=after), 1.0)]) == [[], expected]


def test_rsi_reversal_uses_configured_thresholds() -> None:
    rules = engine(rsi_reversal=RsiReversal(14, oversold=20.0, overbought=80.0))
    assert fire(rules, [(values(rsi=25.0), 1.0), (values(rsi=35.0), 1.0)])[1] == []
    assert fire(rules, [(values(rsi=19.0), 1.0), (values(rsi=20.0), 1.0)])[1] == [("rsi_reversal", "BUY")]


@pytest.mark.parametrize(("before", "after", "expected"), [
    ((10.0, 11.0), (11.5, 11.0), [("ema_cross", "BUY")]),  # d: -1 → +0.5
    ((11.0, 11.0), (11.5, 11.0), [("ema_cross", "BUY")]),  # d: 0 → +0.5 (≤ 0 → > 0)
    ((12.0, 11.0), (10.0, 11.0), [("ema_cross", "SELL")]),  # d: +1 → -1
    ((11.0, 11.0), (10.0, 11.0), [("ema_cross", "SELL")]),  # d: 0 → -1 (≥ 0 → < 0)
    ((10.0, 11.0), (11.0, 11.0), []),  # d: -1 → 0 is not a cross up
    ((12.0, 11.0), (11.0, 11.0), []),  # d: +1 → 0 is not a cross down
    ((12.0, 11.0), (13.0, 11.0), []),
])
def test_ema_cross(before: tuple[float, float], after: tuple[float, float], expected: list[tuple[str, str]]) -> None:
    rules = engine(ema_cross=EmaCross())
    assert fire(rules, [(values(*before), 1.0), (values(*after), 1.0)]) == [[], expected]


@pytest.mark.parametrize(("before", "after", "expected"), [
    ((-0.2, 0.1), (0.3, 0.1), [("macd_cross", "BUY")]),
    ((0.3, 0.1), (0.0, 0.1), [("macd_cross", "SELL")]),
    ((0.1, 0.1), (0.2, 0.1), [("macd_cross", "BUY")]),
    ((0.2, 0.1), (0.25, 0.1), []),
])
def test_macd_cross(before: tuple[float, float], after: tuple[float, float], expected: list[tuple[str, str]]) -> None:
    rules = engine(macd_cross=MacdCross())
    rows = [(values(macd=before[0], signal=before[1]), 1.0), (values(macd=after[0], signal=after[1]), 1.0)]
    assert fire(rules, rows) == [[], expected]


def test_seed_rsi_ema_fires_when_the_condition_becomes_true() -> None:
    rules = engine(seed_rsi_ema=SeedRsiEma())
    rows = [
        (values(ema12=100.0, rsi=40.0), 99.0),  # BUY condition false (RSI not < 30)
        (values(ema12=100.0, rsi=25.0), 99.0),  # becomes true → BUY
        (values(ema12=100.0, rsi=20.0), 98.0),  # stays true → nothing
        (values(ema12=100.0, rsi=20.0), 101.0),  # false again (price ≥ EMA)
        (values(ema12=100.0, rsi=20.0), 99.5),  # true again → BUY
        (values(ema12=100.0, rsi=75.0), 101.0),  # SELL condition becomes true → SELL
        (values(ema12=100.0, rsi=75.0), 102.0),  # stays → nothing
        (values(ema12=100.0, rsi=70.0), 102.0),  # RSI not > 70 → false
    ]
    assert fire(rules, rows) == [[], [("seed_rsi_ema", "BUY")], [], [], [("seed_rsi_ema", "BUY")],
                                 [("seed_rsi_ema", "SELL")], [], []]


def test_nothing_fires_unless_both_evaluations_are_defined() -> None:
    rules = RuleEngine(RuleSpec(), NAMES)
    state = rules.new_state()
    # The very first defined evaluation never fires, however extreme it is.
    assert rules.evaluate(state, values(), 1.0) == []
    assert rules.evaluate(state, values(ema12=99.0, ema26=100.0, rsi=10.0, macd=-1.0, signal=0.0), 90.0) == []
    # A gap (undefined) in between: the next defined value has no defined predecessor.
    state = rules.new_state()
    rules.evaluate(state, values(ema12=99.0, ema26=100.0, rsi=10.0, macd=-1.0), 90.0)  # signal undefined
    assert rules.evaluate(state, values(ema12=101.0, ema26=100.0, rsi=35.0, macd=1.0, signal=0.5), 90.0) == [
        ("rsi_reversal", "BUY"), ("ema_cross", "BUY"),
    ]  # macd_cross needs a defined previous difference; seed needs a defined previous condition


def test_seed_rule_needs_a_defined_false_before_it_fires() -> None:
    rules = engine(seed_rsi_ema=SeedRsiEma())
    # Defined and already true at the first evaluation: that is not "becoming" true.
    assert fire(rules, [(values(ema12=100.0), 99.0), (values(ema12=100.0, rsi=10.0), 99.0),
                        (values(ema12=100.0, rsi=10.0), 98.0)]) == [[], [], []]


def test_all_rules_report_in_a_fixed_order() -> None:
    rules = RuleEngine(RuleSpec(), NAMES)
    rows = [(values(10.0, 11.0, 29.0, -1.0, 0.0), 9.0), (values(12.0, 11.0, 31.0, 1.0, 0.0), 9.0)]
    assert fire(rules, rows)[1] == [("rsi_reversal", "BUY"), ("ema_cross", "BUY"), ("macd_cross", "BUY")]


@pytest.mark.parametrize(("spec", "message"), [
    (RuleSpec(rsi_reversal=RsiReversal(period=7)), "rsi_7"),
    (RuleSpec(ema_cross=EmaCross(5, 26)), "ema_5"),
    (RuleSpec(seed_rsi_ema=SeedRsiEma(ema_period=9)), "ema_9"),
])
def test_a_rule_without_its_indicator_is_a_configuration_error(spec: RuleSpec, message: str) -> None:
    with pytest.raises(RuleConfigError, match=message):
        RuleEngine(spec, NAMES)
    with pytest.raises(RuleConfigError, match="enable indicators.macd"):
        RuleEngine(RuleSpec(), ("ema_12", "ema_26", "rsi_14"))


def test_rule_state_loads_back_and_rejects_foreign_shapes() -> None:
    rules = RuleEngine(RuleSpec(), NAMES)
    state = rules.new_state()
    rules.evaluate(state, values(10.0, 11.0, 29.0, -1.0, 0.0), 9.0)
    assert rules.load(list(state)) == state
    for bad in ([None] * 4, [1.0, None, None, "x", None], [None, None, None, None, 1.0], "nope"):
        with pytest.raises(ValueError):
            rules.load(bad)
