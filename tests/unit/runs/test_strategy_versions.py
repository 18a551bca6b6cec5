"""A strategy's version: equal definitions, equal versions; a changed number or timeframe set, another."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.core.config_file import ConfigFileError
from processors.core.strategies.versions import strategy_file_text, strategy_version

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


def version(text: str | None, syntax: str | None = "toml", timeframes: tuple[str, ...] = ("1m",)) -> str:
    return strategy_version(text, syntax=None if text is None else syntax, candle_timeframes=timeframes)


def test_the_default_spelled_out_is_the_default_and_a_custom_one_is_not():
    default = version(None)
    text, syntax = strategy_file_text(EXAMPLES / "strategy.toml")
    assert version(text, syntax) == default
    assert version("") == default, "an empty file means the default"
    text, syntax = strategy_file_text(EXAMPLES / "strategy.yaml")
    assert version(text, syntax) != default


def test_renaming_or_reformatting_keeps_the_version_and_a_number_changes_it():
    base = '[rules.rsi_reversal]\noversold = 30.0\n'
    assert version(base) == version('# comment\nname = "other"\n[rules.rsi_reversal]\noversold   =   30\n')
    assert version(base) != version('[rules.rsi_reversal]\noversold = 40.0\n')


def test_the_timeframes_are_part_of_the_version():
    assert version(None, timeframes=("1m",)) != version(None, timeframes=("1m", "1h"))
    assert version(None, timeframes=("1h", "1m")) == version(None, timeframes=("1m", "1h"))


def test_a_rule_language_file_has_a_version_too():
    text, syntax = strategy_file_text(EXAMPLES / "strategies.toml")
    found = version(text, syntax, ("1m", "5m", "1h"))
    assert len(found) == 16 and found != version(text.replace("oversold = 30", "oversold = 25"), syntax, ("1m", "5m", "1h"))


def test_a_file_that_is_not_a_strategy_is_refused():
    with pytest.raises(ConfigFileError):
        version("[rules.rsi_reversal]\noversold = 'x'\n")
