"""The subscription file: TOML and YAML, validation at start, filters, secrets by env var name."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.notify.subscriptions import (
    NotifyConfig,
    SlackChannel,
    SubscriptionConfigError,
    TelegramChannel,
    default_config,
    load_config,
    parse_duration,
    resolve_secrets,
)
from tests.unit.notify.factories import make_signal

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"

TOML = """
[channels.desk]
type = "telegram"
bot_token_env = "TG_TOKEN"
chat_id = -100123

[channels.team]
type = "slack"
webhook_url_env = "SLACK_URL"
rate_limit = { per_second = 0.5, burst = 2 }

[[subscriptions]]
name = "btc-reversals"
channel = "desk"
symbols = ["btc/usd"]
rules = ["rsi_reversal"]
sides = ["BUY"]
timeframes = ["1m", "tick"]
cooldown = "15m"

[[subscriptions]]
channel = "team"
"""

YAML = """
channels:
  desk: {type: telegram, bot_token_env: TG_TOKEN, chat_id: -100123}
  team: {type: slack, webhook_url_env: SLACK_URL, rate_limit: {per_second: 0.5, burst: 2}}
subscriptions:
  - name: btc-reversals
    channel: desk
    symbols: [btc/usd]
    rules: [rsi_reversal]
    sides: [BUY]
    timeframes: ["1m", tick]
    cooldown: 15m
  - channel: team
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_and_yaml_give_the_same_validated_config(tmp_path: Path) -> None:
    from_toml = load_config(write(tmp_path, "subs.toml", TOML))
    from_yaml = load_config(write(tmp_path, "subs.yaml", YAML))
    assert from_toml == from_yaml
    first = from_toml.subscriptions[0]
    assert first.symbols == ("BTC-USD",)  # normalized
    assert first.cooldown_s == 900.0
    assert from_toml.subscriptions[1].name == "subscription-2"  # numbered when unnamed
    assert from_toml.subscriptions[1].cooldown_s == 300.0  # default cooldown
    desk = from_toml.channels["desk"]
    assert isinstance(desk, TelegramChannel) and desk.chat_id == "-100123"
    assert desk.effective_rate_limit() is not None and desk.effective_rate_limit().per_second == 1  # type: ignore[union-attr]
    team = from_toml.channels["team"]
    assert isinstance(team, SlackChannel) and team.effective_rate_limit().per_second == 0.5  # type: ignore[union-attr]
    assert from_toml.secret_env_names() == ("SLACK_URL", "TG_TOKEN")


def test_filters_match_only_what_is_asked() -> None:
    config = NotifyConfig.model_validate({
        "channels": {"c": {"type": "console"}},
        "subscriptions": [{"channel": "c", "symbols": ["ETH-USD"], "sides": ["SELL"], "timeframes": ["5m"],
                           "rules": ["ema_cross"]}],
    })
    subscription = config.subscriptions[0]
    assert subscription.matches(make_signal(symbol="ETH-USD", side="SELL", timeframe="5m", rule="ema_cross"))
    assert not subscription.matches(make_signal(symbol="BTC-USD", side="SELL", timeframe="5m", rule="ema_cross"))
    assert not subscription.matches(make_signal(symbol="ETH-USD", side="BUY", timeframe="5m", rule="ema_cross"))
    assert not subscription.matches(make_signal(symbol="ETH-USD", side="SELL", timeframe="1m", rule="ema_cross"))
    assert not subscription.matches(make_signal(symbol="ETH-USD", side="SELL", timeframe="5m", rule="macd_cross"))
    everything = NotifyConfig.model_validate({"channels": {"c": {"type": "console"}},
                                              "subscriptions": [{"channel": "c"}]}).subscriptions[0]
    assert everything.matches(make_signal(symbol="SOL-USD", side="SELL", timeframe="1h", rule="anything"))


@pytest.mark.parametrize(("text", "complaint"), [
    ('[channels.a]\ntype="console"\n[[subscriptions]]\nchannel="b"\n', "names channel 'b', which is not declared"),
    ('[channels.a]\ntype="pager"\n[[subscriptions]]\nchannel="a"\n', "channels.a"),
    ('[channels.a]\ntype="console"\n[channels.b]\ntype="console"\n[[subscriptions]]\nchannel="a"\n',
     "channels without any subscription: b"),
    ('[channels.a]\ntype="console"\n[[subscriptions]]\nchannel="a"\ntimeframes=["7x"]\n', "timeframes"),
    ('[channels.a]\ntype="console"\n[[subscriptions]]\nchannel="a"\nsides=["HOLD"]\n', "sides"),
    ('[channels.a]\ntype="console"\n[[subscriptions]]\nchannel="a"\ncooldown="soon"\n', "not a duration"),
    ('[channels.a]\ntype="console"\n[[subscriptions]]\nchannel="a"\nsymbols=["BTC USD"]\n', "symbols"),
    # Secrets may not be written into the file: Slack's webhook URL comes from an env var only.
    ('[channels.a]\ntype="slack"\nwebhook_url="https://hooks.slack.com/services/X"\n[[subscriptions]]\nchannel="a"\n',
     "webhook_url"),
    ('[channels.a]\ntype="webhook"\n[[subscriptions]]\nchannel="a"\n', "exactly one of 'url' or 'url_env'"),
    ('[channels.a]\ntype="email"\nhost="h"\nfrom="a@b"\nto=["c@d"]\nusername="u"\n[[subscriptions]]\nchannel="a"\n',
     "both 'username' and 'password_env'"),
    ('[channels.A]\ntype="console"\n[[subscriptions]]\nchannel="A"\n', "channels.A"),
    ('[channels.a]\ntype="console"\n[[subscriptions]]\nname="x"\nchannel="a"\n[[subscriptions]]\nname="x"\nchannel="a"\n',
     "unique"),
    ("not = [valid", "not valid TOML"),
])
def test_invalid_files_are_refused_with_a_readable_reason(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(SubscriptionConfigError) as raised:
        load_config(write(tmp_path, "subs.toml", text))
    assert complaint in str(raised.value)
    assert "subs.toml" in str(raised.value)


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(SubscriptionConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(SubscriptionConfigError, match=r"\.toml, \.yaml or \.yml"):
        load_config(write(tmp_path, "subs.json", "{}"))


def test_secrets_come_from_the_named_env_vars_and_missing_ones_are_named_not_shown(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "subs.toml", TOML))
    secrets = resolve_secrets(config, {"TG_TOKEN": "123:tg-token", "SLACK_URL": "https://hooks/x", "OTHER": "y"})
    assert {name: value.get_secret_value() for name, value in secrets.items()} == {
        "TG_TOKEN": "123:tg-token", "SLACK_URL": "https://hooks/x"}
    assert "123:tg-token" not in repr(secrets)
    with pytest.raises(SubscriptionConfigError) as raised:
        resolve_secrets(config, {}, tmp_path / "subs.toml")
    message = str(raised.value)
    # The file, each missing variable with the channel and key that ask for it, and what to do.
    assert f"subscription file {tmp_path / 'subs.toml'} names environment variables that are not set" in message
    assert "  - SLACK_URL: channel 'team' (slack), webhook_url_env" in message
    assert "  - TG_TOKEN: channel 'desk' (telegram), bot_token_env" in message
    assert "subscriptions-console.toml" in message


def test_the_console_example_needs_no_secret_and_delivers_everything_to_the_console() -> None:
    config = load_config(EXAMPLES / "subscriptions-console.toml")
    assert resolve_secrets(config, {}) == {}
    assert {channel.type for channel in config.channels.values()} == {"console"}
    assert config.subscriptions[0].cooldown_s == 0


def test_default_is_every_signal_on_the_console() -> None:
    config = default_config()
    assert list(config.channels) == ["console"]
    assert config.channels["console"].type == "console"
    assert config.subscriptions[0].matches(make_signal(symbol="ANY", rule="whatever", side="SELL"))
    assert config.subscriptions[0].cooldown_s == 0


@pytest.mark.parametrize(("value", "seconds"), [(30, 30.0), ("45", 45.0), ("90s", 90.0), ("15m", 900.0),
                                                ("1.5h", 5400.0), ("1d", 86400.0), ("250ms", 0.25)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["-5", "5 minutes", True, None, -1])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize("name", ["subscriptions.toml", "subscriptions.yaml"])
def test_documented_examples_are_valid(name: str) -> None:
    config = load_config(EXAMPLES / name)
    assert {channel.type for channel in config.channels.values()} == {
        "console", "webhook", "slack", "discord", "telegram", "email", "browser"}
