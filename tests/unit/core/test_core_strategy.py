"""The strategy file: defaults, examples, per-symbol overrides and clear validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.core.indicators import IndicatorSpec
from processors.core.pipeline import PipelineConfig
from processors.core.rules import RuleSpec
from processors.core.strategy import (
    DEFAULT_STRATEGY,
    PipelineConfigs,
    StrategyError,
    load_strategy,
    parse_strategy,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


def test_the_default_strategy_is_the_contract() -> None:
    assert DEFAULT_STRATEGY.indicators.spec() == IndicatorSpec()
    assert DEFAULT_STRATEGY.rules.spec() == RuleSpec()
    assert parse_strategy("", syntax="toml").model_dump() == DEFAULT_STRATEGY.model_dump()
    assert parse_strategy("", syntax="yaml").model_dump() == DEFAULT_STRATEGY.model_dump()


def test_the_spelled_out_example_equals_the_defaults() -> None:
    example = load_strategy(EXAMPLES / "strategy.toml")
    assert example.indicators == DEFAULT_STRATEGY.indicators
    assert example.rules == DEFAULT_STRATEGY.rules


def test_the_yaml_example_loads_with_its_overrides() -> None:
    example = load_strategy(EXAMPLES / "strategy.yaml")
    assert example.rules.spec().seed_rsi_ema is None
    assert example.for_symbol("BTC-USD").rules.ema_cross.fast == 9
    sol = example.for_symbol("SOL-USD")
    assert sol.indicators.rsi == [7, 14] and sol.rules.rsi_reversal.period == 7
    assert sol.rules.ema_cross.fast == 9  # inherited from the base
    assert example.for_symbol("ETH-USD").indicators.bollinger.period == 30
    assert example.indicator_names()[-1] == "rsi_7"  # an override's extra column comes last


def test_overrides_merge_deeply_and_normalize_symbols() -> None:
    strategy = parse_strategy(
        '[rules.rsi_reversal]\noversold = 25\n[symbols."eth/usd".rules.rsi_reversal]\noverbought = 80\n',
        syntax="toml",
    )
    eth = strategy.for_symbol("ETH-USD").rules.rsi_reversal
    assert (eth.oversold, eth.overbought, eth.period) == (25.0, 80.0, 14)
    assert strategy.for_symbol("BTC-USD").rules.rsi_reversal.overbought == 70.0


def test_pipeline_configs_per_symbol() -> None:
    strategy = parse_strategy('[symbols."SOL-USD".indicators]\nsma = [10]\n', syntax="toml")
    configs = PipelineConfigs(strategy, candle_timeframes=("1m", "5m"), grace_ms=2_000)
    sol, btc = configs.for_symbol("SOL-USD"), configs.for_symbol("BTC-USD")
    assert isinstance(sol, PipelineConfig) and sol.indicators.sma == (10,)
    assert btc.indicators.sma == (20, 50) and btc.candle_timeframes == ("1m", "5m") and btc.grace_ms == 2_000
    assert configs.for_symbol("SOL-USD") is sol  # built once


@pytest.mark.parametrize(("text", "syntax", "expected"), [
    ("colour = 1\n", "toml", "my.strategy:1: colour: unknown key 'colour'; valid keys: indicators, rules, name,"
                             " description, symbols"),
    ("[indicators]\nsma = [20, 20]\n", "toml", "sma periods repeat"),
    ("[indicators]\nrsi = [0]\n", "toml", "my.strategy:2: indicators.rsi[1]: must be at least 1, got 0"),
    ("[indicators.macd]\nfast = 30\n", "toml", "indicators.macd: fast (30) must be shorter than slow (26)"),
    ("[indicators.bollinger]\ndeviations = -1\n", "toml", "indicators.bollinger.deviations"),
    ("[rules.rsi_reversal]\noversold = 80\n", "toml", "oversold (80.0) must be below overbought (70.0)"),
    ("[rules.ema_cross]\nenabled = \"yes\"\n", "toml", "my.strategy:2: rules.ema_cross.enabled: expected true or false, got 'yes'"),
    ("[rules.ema_cross]\nfast = 5\n", "toml", "rule ema_cross needs ema_5, which is not computed: add 5 to indicators.ema"),
    ("[indicators.macd]\nenabled = false\n", "toml", "rule macd_cross needs macd"),
    ('[symbols."BTC USD"]\n', "toml", "my.strategy:1: symbols.\"BTC USD\": symbol may hold only"),
    ('[symbols."btc-usd"]\n[symbols."BTC/USD"]\n', "toml", "BTC-USD is overridden twice"),
    ('[symbols."ETH-USD".rules.rsi_reversal]\nperiod = 7\n', "toml",
     "symbols.ETH-USD: rule rsi_reversal needs rsi_7"),
    ('[symbols."ETH-USD"]\nname = "x"\n', "toml", "my.strategy:2: symbols.ETH-USD.name: unknown key 'name'; valid keys: indicators, rules"),
    ("[indicators\n", "toml", "not valid TOML"),
    ("indicators: [1, 2\n", "yaml", "not valid YAML"),
    ("- 1\n- 2\n", "yaml", "must be a table/mapping at the top level"),
])
def test_invalid_strategies_fail_with_a_located_message(text: str, syntax: str, expected: str) -> None:
    with pytest.raises(StrategyError) as error:
        parse_strategy(text, syntax=syntax, source="my.strategy")
    assert expected in str(error.value)
    assert str(error.value).startswith("my.strategy:")


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(StrategyError) as error:
        parse_strategy("a = 1\nb = 2\n[rules.ema_cross]\nfast = 'x'\n", syntax="toml")
    assert str(error.value).splitlines() == [
        "<strategy>: invalid strategy file (3 problems):",
        "  <strategy>:1: a: unknown key 'a'; valid keys: indicators, rules, name, description, symbols, strategies",
        "  <strategy>:2: b: unknown key 'b'; valid keys: indicators, rules, name, description, symbols, strategies",
        "  <strategy>:4: rules.ema_cross.fast: expected a whole number, got 'x'",
    ]


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="must end in .toml, .yaml or .yml"):
        load_strategy(tmp_path / "strategy.json")
    with pytest.raises(StrategyError, match="cannot read the strategy file"):
        load_strategy(tmp_path / "missing.toml")
    path = tmp_path / "s.yml"
    path.write_text("rules:\n  macd_cross: {enabled: false}\n")
    assert load_strategy(path).rules.spec().macd_cross is None
