"""Strategy files: TOML and YAML, every problem listed at once with file, strategy, key and column."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from processors.core.strategies.engine import CompiledStrategies
from processors.core.strategies.file import (
    StrategyFileError,
    candle_timeframes_named,
    load_strategies,
    parse_duration,
    parse_strategies,
)

TIMEFRAMES = ("1m", "5m", "1h")
ISSUE_EXAMPLE = """
[strategies.trend_pullback]
timeframe = "5m"          # evaluated on each closed 5m candle; "tick" allowed
buy  = "crosses_above(ema(9), ema(21)) and rsi(14) < 70 and close > sma(50)@1h"
sell = "crosses_below(ema(9), ema(21)) or rsi(14) > 80"
confirm = 1               # the condition must hold on N consecutive evaluations
cooldown = "15m"          # per symbol and side
symbols = ["BTC-USD", "ETH-USD"]   # optional; default all
"""
SAME_IN_YAML = """
strategies:
  trend_pullback:
    timeframe: 5m
    params: {fast: 9, slow: 21}
    buy: crosses_above(ema(fast), ema(slow)) and rsi(14) < 70 and close > sma(50)@1h
    sell: crosses_below( ema(fast),ema(slow) ) or rsi(14) > 80
    cooldown: 15m
    symbols: [eth/usd, btc-usd]
"""


def problems_of(text: str, syntax: str = "toml", **options: object) -> list[str]:
    """The problems of the message, in file order, without their ``my.toml:LINE:`` (see lines_of)."""
    return [problem for _line, problem in lines_of(text, syntax, **options)]


def lines_of(text: str, syntax: str = "toml", **options: object) -> list[tuple[int | None, str]]:
    with pytest.raises(StrategyFileError) as caught:
        parse_strategies(text, syntax=syntax, candle_timeframes=TIMEFRAMES, source="my.toml", **options)  # type: ignore[arg-type]
    message = str(caught.value)
    assert re.match(r"my\.toml: invalid strategy file \((1 problem|\d+ problems)\):\n", message)
    found = []
    for line in message.splitlines()[1:]:
        if line.startswith("  ") and not line.startswith("    "):
            match = re.match(r"  my\.toml:(?:(\d+):)? (.*)$", line)
            assert match is not None, line
            found.append((int(match.group(1)) if match.group(1) else None, match.group(2)))
    return found


def test_the_issue_example_and_its_yaml_twin_are_the_same_strategy() -> None:
    (toml,) = parse_strategies(ISSUE_EXAMPLE, syntax="toml", candle_timeframes=TIMEFRAMES)
    (yaml,) = parse_strategies(SAME_IN_YAML, syntax="yaml", candle_timeframes=TIMEFRAMES)
    assert toml.name == yaml.name == "trend_pullback"
    assert (toml.buy, toml.sell, toml.timeframe, toml.cooldown_ms) == (yaml.buy, yaml.sell, "5m", 900_000)
    assert toml.symbols == ("BTC-USD", "ETH-USD") and yaml.symbols == ("ETH-USD", "BTC-USD")
    assert toml.version == yaml.version  # parameters, spelling and symbol order do not change the version
    assert yaml.buy_source.startswith("crosses_above(ema(fast)")  # the text as written is kept for people
    assert yaml.params == (("fast", 9), ("slow", 21))


def test_a_changed_number_changes_the_version_and_overrides_resolve_again() -> None:
    (base,) = parse_strategies(SAME_IN_YAML, syntax="yaml", candle_timeframes=TIMEFRAMES)
    (swept,) = parse_strategies(SAME_IN_YAML, syntax="yaml", candle_timeframes=TIMEFRAMES,
                                overrides={"trend_pullback": {"fast": 5}})
    assert swept.buy_text == "crosses_above(ema(5), ema(21)) and rsi(14) < 70 and close > sma(50)@1h"
    assert swept.version != base.version
    assert problems_of(SAME_IN_YAML, "yaml", overrides={"trend_pullback": {"fastest": 5}, "other": {"x": 1}}) == [
        "strategies.other: overridden but not defined",
        "strategies.trend_pullback.params.fastest: overridden but not declared (declared: fast, slow)",
    ]


def test_every_problem_is_listed_at_once() -> None:
    text = """
[strategies.one]
timeframe = "4h"
buy = "rsi(14) < 30 and emma(3) > 1"
confirm = 0
cooldown = "5 minutes"
surprise = true

[strategies.two]
sell = "crosses_above(ema(9) ema(21))"
symbols = ["BTC-USD", "btc/usd", "bad symbol!"]
params = { close = 1, level = inf }

[strategies.three]
timeframe = "5m"
"""
    # In file order, each with its line, the key path as written (list positions from 1), plain words.
    assert lines_of(text) == [
        (3, "strategies.one.timeframe: timeframe 4h is not configured (configured: tick, 1m, 5m, 1h):"
            " add it to the runner's candle timeframes"),
        (4, "strategies.one.buy: column 18: unknown function 'emma' (did you mean ema?): expected one of sma, ema,"
            " wma, rsi, macd, bb, vwap, atr, stoch, adx, plus_di, minus_di, obv, cci, willr, roc, highest, lowest,"
            " donchian, crosses_above, crosses_below, rising, falling"),
        (5, "strategies.one.confirm: must be at least 1, got 0"),
        (6, "strategies.one.cooldown: expected a duration like 90s, 15m or 4h (or 0), got '5 minutes'"),
        (7, "strategies.one.surprise: unknown key 'surprise'; valid keys: timeframe, buy, sell, confirm, cooldown,"
            " symbols, params, description"),
        (10, "strategies.two.sell: column 22: expected ',' or ')' after the arguments of crosses_above, found 'ema'"),
        (11, "strategies.two.symbols[2]: BTC-USD is listed twice"),
        (11, "strategies.two.symbols[3]: 'bad symbol!': symbol may hold only letters, digits and - / . _"),
        (12, "strategies.two.params.close: a parameter name is an identifier that is not a keyword, price field or"
             " function name"),
        (12, "strategies.two.params.level: must be a finite number"),
        (14, "strategies.three: a strategy needs a buy rule, a sell rule or both"),
    ]


def test_a_rule_problem_shows_the_rule_with_a_caret() -> None:
    with pytest.raises(StrategyFileError) as caught:
        parse_strategies('[strategies.s]\nbuy = "rsi(14) < 30 or close@4h > 1"', syntax="toml",
                         candle_timeframes=TIMEFRAMES, source="s.toml")
    assert str(caught.value).endswith(
        "s.toml:2: strategies.s.buy: column 23: timeframe 4h is not configured (configured: tick, 1m, 5m, 1h): add it to the"
        " runner's candle timeframes\n      rsi(14) < 30 or close@4h > 1\n" + " " * (6 + 22) + "^")


@pytest.mark.parametrize(("text", "expected"), [
    ("", "strategies: the file defines no strategy ([strategies.NAME] tables)"),
    ("[rules]\nema_cross = {}", "rules: unknown key 'rules'; valid keys: strategies"),
    ('strategies = "x"', "strategies: expected a table, got 'x'"),
    ('[strategies."bad name"]\nbuy = "close > 1"', 'strategies."bad name": a strategy name is a letter then letters,'
                                                    " digits, _ or - (at most 64)"),
    ('[strategies.s]\nbuy = "close > 1"\nsymbols = []', "strategies.s.symbols: empty: leave symbols out to run on"
                                                        " every symbol"),
    ('[strategies.s]\nbuy = "close > 1"\ncooldown = "400d"', "strategies.s.cooldown: at most 366d"),
    ('[strategies.s]\nbuy = "close > 1"\nconfirm = "2"', "strategies.s.confirm: expected a whole number, got '2'"),
])
def test_file_level_problems(text: str, expected: str) -> None:
    assert expected in problems_of(text)


def test_files_are_read_by_extension(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(ISSUE_EXAMPLE, encoding="utf-8")
    (tmp_path / "b.yml").write_text(SAME_IN_YAML, encoding="utf-8")
    (tmp_path / "c.json").write_text("{}", encoding="utf-8")
    assert load_strategies(tmp_path / "a.toml", candle_timeframes=TIMEFRAMES)[0].version == \
        load_strategies(tmp_path / "b.yml", candle_timeframes=TIMEFRAMES)[0].version
    with pytest.raises(StrategyFileError, match=r"c.json: a strategy file must end in .toml, .yaml or .yml"):
        load_strategies(tmp_path / "c.json", candle_timeframes=TIMEFRAMES)
    with pytest.raises(StrategyFileError, match="cannot read the strategy file"):
        load_strategies(tmp_path / "missing.toml", candle_timeframes=TIMEFRAMES)
    with pytest.raises(StrategyFileError, match=r"a.toml: invalid strategy file \(2 problems\):\n  .*a.toml:3: "
                                                r"strategies.trend_pullback.timeframe: timeframe 5m is not configured"):
        load_strategies(tmp_path / "a.toml", candle_timeframes=("1m",))


@pytest.mark.parametrize(("text", "ms"), [("0", 0), ("250ms", 250), ("90s", 90_000), ("15m", 900_000),
                                          ("4h", 14_400_000), ("1d", 86_400_000)])
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


def test_the_candle_timeframes_a_file_names_for_a_runner_that_builds_them() -> None:
    """What the batch CLI builds: the timeframes strategies run on and read with @tf, in order of first mention;
    whatever is malformed is left for the resolver to report with its place."""
    tables = {
        "a": {"timeframe": "5m", "buy": "close > sma(50)@1h and rsi(14)@1m < 30", "sell": "ema(9)@1h < 3"},
        "b": {"buy": "crosses_above(ema(9), highest(high@15m, 3))", "sell": "macd(12, 26, 9).line@4h[2] > 0"},
        "c": {"timeframe": "tick", "buy": "close > (", "sell": "close > sma(3)@7q"},  # a parse error, a bad tf
        "d": "not a table",
    }
    assert candle_timeframes_named(tables) == ("5m", "1h", "1m", "15m", "4h")
    assert candle_timeframes_named({}) == ()
    definitions = parse_strategies(ISSUE_EXAMPLE, syntax="toml", candle_timeframes=("5m", "1h"))
    assert definitions[0].timeframe == "5m"


def test_all_columns_cover_every_symbol_of_a_strategy_set() -> None:
    text = ('[strategies.btc]\nsymbols = ["BTC-USD"]\nbuy = "ema(9) > sma(50)@1h"\n'
            '[strategies.eth]\nsymbols = ["ETH-USD"]\nbuy = "stoch(14, 3, 3).d < 20 and rsi(14) < 30"\n')
    compiled = CompiledStrategies(parse_strategies(text, syntax="toml", candle_timeframes=("1h",)),
                                  candle_timeframes=("1h",))
    assert compiled.all_columns() == {"tick": ("ema_9", "stoch_14_3_3_d", "rsi_14"), "1h": ("sma_50",)}
    assert compiled.columns("BTC-USD", "tick") == ("ema_9",)
