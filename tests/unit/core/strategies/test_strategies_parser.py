"""The rule language's parser and resolver: precedence, canonical text, errors with columns, no eval."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_support import expressions

from processors.core.strategies import ir
from processors.core.strategies.parser import ParseError, parse
from processors.core.strategies.resolve import Context, resolve_rule

CONFIGURED = ("1m", "5m", "1h")


def resolve(text: str, timeframe: str = "5m", params: dict[str, int | float] | None = None
            ) -> tuple[ir.Condition | None, list[tuple[int, str]]]:
    context = Context(timeframe, CONFIGURED, params or {})
    result = resolve_rule(text, context)
    return result, [(p.column, p.message) for p in context.problems]


def canonical(text: str, timeframe: str = "5m", params: dict[str, int | float] | None = None) -> str:
    result, problems = resolve(text, timeframe, params)
    assert result is not None, problems
    return ir.to_text(result, timeframe)


@pytest.mark.parametrize(("text", "expected"), [
    ("crosses_above(ema(9),ema(21)) and rsi(14)<70 and close>sma(50)@1h",
     "crosses_above(ema(9), ema(21)) and rsi(14) < 70 and close > sma(50)@1h"),
    ("close > 1 or close < 2 and volume > 3", "close > 1 or close < 2 and volume > 3"),
    ("(close > 1 or close < 2) and volume > 3", "(close > 1 or close < 2) and volume > 3"),
    ("not close > 1 and close < 5", "not close > 1 and close < 5"),
    ("not (close > 1 and close < 5)", "not (close > 1 and close < 5)"),
    ("close - (open - low) > high - low - 1", "close - (open - low) > high - low - 1"),
    ("-close * 2 + 3 / -(high) >= 0", "-close * 2 + 3 / -high >= 0"),
    ("price@5m > price", "close > close"),  # price is close; @ its own timeframe is implicit
    ("macd(12,26,9).hist[1] < 0 and macd(12, 26, 9).hist > 0", "macd(12, 26, 9).hist[1] < 0 and macd(12, 26, 9).hist > 0"),
    ("(close + 1)[2] > close", "(close + 1)[2] > close"),
    ("rising(rsi(14), 3) or falling(close@1h, 2)", "rising(rsi(14), 3) or falling(close@1h, 2)"),
    ("highest(high, 20)@1h <= close and lowest(rsi(7), 5) > 30", "highest(high, 20)@1h <= close and lowest(rsi(7), 5) > 30"),
    ("bb(20, 2.5).upper < close and stoch(14,3,3).d > 80 and donchian(20).lower < low",
     "bb(20, 2.5).upper < close and stoch(14, 3, 3).d > 80 and donchian(20).lower < low"),
    ("vwap() > 1e-8 and obv() != 0 and atr(14) / close * 100 > 2.5",
     "vwap() > 1e-08 and obv() != 0 and atr(14) / close * 100 > 2.5"),
    ("adx(14) > 25 and plus_di(14) > minus_di(14) and cci(20) < -100 and willr(14) < -80 and roc(10) > 0 and wma(9) > 0",
     "adx(14) > 25 and plus_di(14) > minus_di(14) and cci(20) < -100 and willr(14) < -80 and roc(10) > 0 and wma(9) > 0"),
])
def test_canonical_text(text: str, expected: str) -> None:
    assert canonical(text) == expected


def test_parameters_are_substituted() -> None:
    params = {"fast": 9, "slow": 21, "level": 70.5}
    assert canonical("crosses_above(ema(fast), ema(slow)) and rsi(14) < level", params=params) == \
        "crosses_above(ema(9), ema(21)) and rsi(14) < 70.5"


@pytest.mark.parametrize(("text", "column", "fragment"), [
    ("", 1, "the rule is empty"),
    ("rsi(14) <", 10, "expected an operand"),
    ("rsi(14) < 30 30", 14, "expected an operator"),
    ("crosses_above(ema(9) ema(21))", 22, "expected ',' or ')' after the arguments of crosses_above"),
    ("(close > 1", 11, "expected ')' to close the '(' at column 1"),
    ("close > 1)", 10, "unbalanced ')'"),
    ("close > 1 and", 14, "expected an operand"),
    ("close < 1 < 2", 11, "comparisons do not chain"),
    ("close > 1 $ 2", 11, "unexpected character '$'"),
    ("close@ > 1", 7, "expected a timeframe after '@'"),
    ("close[x] > 1", 7, "expected a whole number of evaluations inside [ ]"),
    ("macd(12,26,9). > 0", 16, "expected a line name after '.'"),
    ("close > and", 9, "found the keyword 'and'"),
])
def test_syntax_errors_say_where_and_what_was_expected(text: str, column: int, fragment: str) -> None:
    result, problems = resolve(text)
    assert result is None
    assert problems[0][0] == column, problems
    assert fragment in problems[0][1], problems


@pytest.mark.parametrize(("text", "column", "fragment"), [
    ("emma(3) > close", 1, "unknown function 'emma' (did you mean ema?)"),
    ("clse > 1", 1, "unknown name 'clse' (did you mean close?)"),
    ("rsi > 30", 1, "rsi is a function: call it"),
    ("macd(12, 26, 9) > 0", 1, "macd has several lines"),
    ("ema(12).line > 0", 9, "ema has no line '.line'"),
    ("stoch(14, 3, 3).x > 1", 17, "stoch has no line '.x': its lines are .k, .d"),
    ("ema(12, 26) > 0", 1, "ema takes 1 argument"),
    ("ema(2.5) > 0", 5, "n must be a whole number"),
    ("ema(0) > 0", 5, "n must be between 1 and 10000"),
    ("sma(20000) > 0", 5, "between 1 and 10000"),
    ("bb(20, 0).upper > 0", 8, "k must be above 0"),
    ("macd(26, 12, 9).line > 0", 1, "fast period (26) must be shorter"),
    ("ema(close) > 0", 5, "expected a number or a parameter"),
    ("close[0] > 1", 7, "from 1 to 1000"),
    ("close[5000] > 1", 7, "history is bounded"),
    ("rising(close, 5000)", 15, "history is bounded"),
    ("close@4h > 1", 7, "timeframe 4h is not configured (configured: tick, 1m, 5m, 1h)"),
    ("close@7m > 1", 7, "does not divide a UTC day"),
    ("close@tick > 1", 7, "@tick is not allowed"),
    ("(close + 1)@1h > 1", 12, "@timeframe applies to an indicator or a price field"),
    ("highest(close@1h, 3) > 1", 9, "put @1h after the whole call"),
    ("highest(close + 1, 3) > 1", 9, "must be a price field or an indicator"),
    ("rsi(14)", 1, "expected a condition (true or false)"),
    ("rsi(14) and close > 1", 1, "expected a condition on the left of 'and'"),
    ("not rsi(14)", 5, "expected a condition after 'not'"),
    ("(close > 1) + 1 > 0", 2, "expected a number on the left of '+'"),
    ("crosses_above(close > 1, 2)", 15, "expected a number as the first argument of crosses_above"),
    ("crosses_above(close)", 1, "crosses_above takes 2 arguments"),
    ("close > 1e999", 9, "numbers must be finite"),
])
def test_semantic_errors_say_where_and_what_was_expected(text: str, column: int, fragment: str) -> None:
    result, problems = resolve(text)
    assert result is None
    assert any(c == column and fragment in message for c, message in problems), problems


def test_every_problem_of_a_rule_is_reported() -> None:
    _, problems = resolve("emma(3) > 1 and clse < 2 and ema(0) > 1 and close@4h > 1")
    assert [column for column, _ in problems] == [1, 17, 34, 51]


_, CONDITIONS = expressions([ir.PriceField("close", "5m"), ir.PriceField("volume", "5m"),
                             ir.PriceField("low", "1h"), ir.Indicator("ema", (9,), None, "5m"),
                             ir.Indicator("macd", (12, 26, 9), "signal", "1h"),
                             ir.Indicator("highest", (20,), None, "5m", ir.Indicator("rsi", (14,), None, "5m")),
                             ir.Indicator("bb", (20, 2.5), "upper", "1m")], max_depth=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition=CONDITIONS)
def test_canonical_text_parses_back_to_the_same_ir(condition: ir.Condition) -> None:
    text = ir.to_text(condition, "5m")
    again, problems = resolve(text)
    assert again == condition, (text, problems)
    assert ir.to_text(again, "5m") == text


TOKENS = ["close", "rsi", "ema", "macd", "stoch", "highest", "crosses_above", "rising", "and", "or", "not", "(",
          ")", ",", ".", "line", "k", "@", "1h", "tick", "[", "]", "1", "14", "2.5", "1e-3", "<", ">=", "==", "+",
          "-", "*", "/", "x", "'", "$"]


@settings(max_examples=800, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("abcelosrinmtdhwv_0123456789.,()[]@<>=!+-*/ \t'\"_:;{}#$\\")),
                    max_size=60)
       | st.text(max_size=60)
       | st.lists(st.sampled_from(TOKENS), max_size=25).map("".join)
       | st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join))
def test_any_text_either_resolves_or_reports_problems(text: str) -> None:
    result, problems = resolve(text)
    assert (result is None) == bool(problems)
    assert all(1 <= column <= len(text) + 1 for column, _ in problems)


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "().__class__", "eval('1')", "lambda: 1"])
def test_python_is_not_evaluated(text: str) -> None:
    with pytest.raises(ParseError):
        parse(text)


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    result, problems = resolve("(" * 5000 + "close > 1" + ")" * 5000)
    assert result is None
    assert problems == [(1, "the rule is nested too deeply")]
