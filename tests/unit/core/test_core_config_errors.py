"""One error renderer for every configuration file: file:line, the key path as written, the valid
choices, no library wording (issue 20). Bad strategy and subscription files, TOML and YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.core.config_errors import render_path
from processors.core.config_lines import toml_lines, yaml_lines
from processors.core.strategies.file import StrategyFileError, load_strategies
from processors.core.strategy import StrategyError, load_strategy
from processors.notify.subscriptions import SubscriptionConfigError, load_config

LIBRARY_WORDING = ("Input tag", "Value error", "Extra inputs are not permitted", "Input should be", "validation error",
                   "<unicode string>", "pydantic", "Tuple should", "type=")


def refused(loader, tmp_path: Path, name: str, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises((SubscriptionConfigError, StrategyError, StrategyFileError)) as raised:
        loader(path)
    message = str(raised.value)
    assert not [words for words in LIBRARY_WORDING if words in message], message
    return [line.replace(str(path), name) for line in message.splitlines()]


SUBSCRIPTIONS_TOML = """\
[channels.pager]
type = "pagerduty"

[channels.desk]
type = "console"

[[subscriptions]]
channel = "desk"
cooldown = "5 minutes"

[[subscriptions]]
channel = "desk"
sides = ["BUY", "buy"]
surprise = 1
"""


def test_a_subscription_file_with_the_issues_mistakes(tmp_path: Path) -> None:
    assert refused(load_config, tmp_path, "subs.toml", SUBSCRIPTIONS_TOML) == [
        "subs.toml: invalid subscription file (4 problems):",
        "  subs.toml:2: channels.pager.type: 'pagerduty' is not a valid type; choose one of: console, webhook, slack,"
        " discord, telegram, email, browser",
        "  subs.toml:9: subscriptions[1].cooldown: '5 minutes' is not a duration like 30s, 15m, 1h or 1d",
        "  subs.toml:13: subscriptions[2].sides[2]: 'buy' is not one of: BUY, SELL",
        "  subs.toml:14: subscriptions[2].surprise: unknown key 'surprise'; valid keys: name, channel, symbols, rules,"
        " sides, timeframes, cooldown",
    ]  # and no "Tuple should have at least 1 item" for a file that has two subscriptions


def test_the_same_mistakes_in_yaml_have_their_lines_too(tmp_path: Path) -> None:
    text = """\
channels:
  pager: {type: pagerduty}
  desk:
    type: console
subscriptions:
  - channel: desk
    cooldown: 5 minutes
  - channel: desk
    sides:
      - BUY
      - buy
"""
    assert refused(load_config, tmp_path, "subs.yaml", text) == [
        "subs.yaml: invalid subscription file (3 problems):",
        "  subs.yaml:2: channels.pager.type: 'pagerduty' is not a valid type; choose one of: console, webhook, slack,"
        " discord, telegram, email, browser",
        "  subs.yaml:7: subscriptions[1].cooldown: '5 minutes' is not a duration like 30s, 15m, 1h or 1d",
        "  subs.yaml:11: subscriptions[2].sides[2]: 'buy' is not one of: BUY, SELL",
    ]


def test_cross_checks_point_at_the_key_that_is_wrong(tmp_path: Path) -> None:
    text = """\
[channels.desk]
type = "console"

[channels.spare]
type = "browser"

[[subscriptions]]
name = "a"
channel = "desk"

[[subscriptions]]
name = "a"
channel = "dsk"
"""
    assert refused(load_config, tmp_path, "subs.toml", text) == [
        "subs.toml: invalid subscription file (3 problems):",
        "  subs.toml:4: channels.spare: channels without any subscription: spare (add a [[subscriptions]] naming it,"
        " or remove it)",
        "  subs.toml:12: subscriptions[2].name: subscription names must be unique: 'a' is used twice",
        "  subs.toml:13: subscriptions[2].channel: subscription 'a' names channel 'dsk', which is not declared"
        " (declared: desk, spare)",
    ]


def test_a_missing_discriminator_and_bad_names_say_what_is_expected(tmp_path: Path) -> None:
    text = '[channels.Desk]\ntype = "console"\n[channels.other]\nkind = "console"\n[[subscriptions]]\nchannel = "Desk"\n'
    lines = refused(load_config, tmp_path, "subs.toml", text)
    assert "  subs.toml:1: channels.Desk: 'Desk' is not valid here: expected a name of lower-case letters, digits, _" \
           " and - (at most 48), like team-slack" in lines
    assert "  subs.toml:3: channels.other: missing 'type'; choose one of: console, webhook, slack, discord, telegram," \
           " email, browser" in lines


def test_yaml_syntax_errors_name_the_file_line_and_column(tmp_path: Path) -> None:
    assert refused(load_config, tmp_path, "subs.yaml", "channels:\n  desk: {type: console\nsubscriptions: []\n") == [
        "subs.yaml:3:14: not valid YAML: expected ',' or '}', but got ':' (while parsing a flow mapping at line 2)"]
    assert refused(load_config, tmp_path, "subs.toml", "[channels.desk]\ntype = console\n") == [
        "subs.toml:2:8: not valid TOML: Invalid value"]


def test_strategy_files_unknown_rule_lists_the_valid_ones(tmp_path: Path) -> None:
    text = "[rules]\nnosuchrule = {}\n\n[rules.rsi_reversal]\noversold = \"low\"\n"
    assert refused(load_strategy, tmp_path, "strategy.toml", text) == [
        "strategy.toml: invalid strategy file (2 problems):",
        "  strategy.toml:2: rules.nosuchrule: unknown key 'nosuchrule'; valid keys: rsi_reversal, ema_cross,"
        " macd_cross, seed_rsi_ema",
        "  strategy.toml:5: rules.rsi_reversal.oversold: expected a number, got 'low'",
    ]


def test_strategy_overrides_are_located_under_their_symbol(tmp_path: Path) -> None:
    text = """\
rules:
  rsi_reversal: {oversold: 20}
symbols:
  ETH-USD:
    rules:
      ema_cross: {fast: x, nope: 1}
  "bad sym!": {}
"""
    assert refused(load_strategy, tmp_path, "strategy.yaml", text) == [
        "strategy.yaml: invalid strategy file (3 problems):",
        "  strategy.yaml:6: symbols.ETH-USD.rules.ema_cross.fast: expected a whole number, got 'x'",
        "  strategy.yaml:6: symbols.ETH-USD.rules.ema_cross.nope: unknown key 'nope'; valid keys:"
        " enabled, fast, slow",
        "  strategy.yaml:7: symbols.\"bad sym!\": symbol may hold only letters, digits and - / . _",
    ]


def test_rule_language_files_use_the_same_renderer(tmp_path: Path) -> None:
    text = '[strategies.s]\nbuy = "close > 1"\nconfirm = 0\ncolour = "red"\n'
    lines = refused(lambda path: load_strategies(path, candle_timeframes=("1m",)), tmp_path, "rules.toml", text)
    assert lines == [
        "rules.toml: invalid strategy file (2 problems):",
        "  rules.toml:3: strategies.s.confirm: must be at least 1, got 0",
        "  rules.toml:4: strategies.s.colour: unknown key 'colour'; valid keys: timeframe, buy, sell, confirm,"
        " cooldown, symbols, params, description",
    ]


@pytest.mark.parametrize(("path", "text"), [
    (("subscriptions", 0, "cooldown"), "subscriptions[1].cooldown"),
    (("symbols", "btc/usd", "rules"), 'symbols."btc/usd".rules'),
    (("a", 2, 0), "a[3][1]"),
    ((), ""),
])
def test_paths_are_written_as_the_user_wrote_them(path: tuple[str | int, ...], text: str) -> None:
    assert render_path(path) == text


def test_lines_of_keys_in_toml_and_yaml() -> None:
    toml = '# c\n[a]\nx = 1\ny = """\nz = 2\n"""\n[[b]]\nk = [\n 1,\n]\n[[b]]\nk = 2\n[b.c]\nd = 1\n"e.f".g = 3\n'
    lines = toml_lines(toml)
    assert lines[("a", "x")] == 3 and ("a", "z") not in lines
    assert lines[("b", 0, "k")] == 8 and lines[("b", 1, "k")] == 12 and lines[("b", 1, "c", "d")] == 14
    assert lines[("b", 1, "c", "e.f", "g")] == 15
    yaml = "a:\n  x: 1\nb:\n  - k: 1\n  - k: [1, 2]\nc: &r [*r]\n"
    lines = yaml_lines(yaml)
    assert lines[("a", "x")] == 2 and lines[("b", 1, "k")] == 5 and lines[("b", 1)] == 5 and lines[("c",)] == 6
