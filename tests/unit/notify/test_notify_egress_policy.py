"""Where a channel may send: the address policy and the configuration rules (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from processors.notify.channels.egress import refusal
from processors.notify.subscriptions import NotifyConfig


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
    ("169.254.169.254", "link-local (cloud metadata)"), ("fe80::1", "link-local"),
    ("100.64.0.1", "not globally routable"), ("192.0.2.1", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
    ("2002:7f00:1::", "loopback"), ("2002:a9fe:a9fe::", "link-local (cloud metadata)"),  # 6to4
    ("64:ff9b::a9fe:a9fe", "link-local (cloud metadata)"),  # NAT64
    ("0.0.0.0", "unspecified or multicast"), ("::", "unspecified or multicast"),  # noqa: S104
    ("224.0.0.1", "unspecified or multicast"), ("not-an-ip", "not an IP address"),
])
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    assert refusal(address, allow_private_network=False) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "151.101.1.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(address, allow_private_network=False) is None


def test_allow_private_network_allows_private_but_never_unspecified_or_multicast() -> None:
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00::1"):
        assert refusal(address, allow_private_network=True) is None
    assert refusal("0.0.0.0", allow_private_network=True) is not None  # noqa: S104
    assert refusal("ff02::1", allow_private_network=True) is not None


def config(channel: dict[str, object]) -> NotifyConfig:
    return NotifyConfig.model_validate({"channels": {"ch": channel}, "subscriptions": [{"channel": "ch"}]})


def refused(channel: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as raised:
        config(channel)
    return str(raised.value)


def test_http_urls_need_allow_private_network() -> None:
    assert "https://" in refused({"type": "webhook", "url": "http://hooks.example.com/x"})
    assert "https://" in refused({"type": "webhook", "url": "ftp://hooks.example.com/x"})
    assert config({"type": "webhook", "url": "http://10.0.0.5/x", "allow_private_network": True})
    assert config({"type": "webhook", "url": "https://hooks.example.com/x"})


def test_telegram_host_is_pinned_unless_overridden() -> None:
    base = {"type": "telegram", "bot_token_env": "TOKEN", "chat_id": 42}
    assert str(config(base).channels["ch"].api_base) == "https://api.telegram.org/"  # type: ignore[union-attr]
    assert "allow_custom_api_base" in refused({**base, "api_base": "https://evil.example.com"})
    assert config({**base, "api_base": "https://bot-api.internal.example", "allow_custom_api_base": True})
    assert "https://" in refused({**base, "api_base": "http://10.0.0.2:8081", "allow_custom_api_base": True})


def test_smtp_defaults_to_starttls_and_refuses_auth_in_clear() -> None:
    mail = {"type": "email", "host": "smtp.example.com", "from": "a@example.com", "to": ["b@example.com"]}
    assert config(mail).channels["ch"].starttls is True  # type: ignore[union-attr]
    assert "clear connection" in refused({**mail, "starttls": False, "username": "u", "password_env": "SMTP_PW"})
    assert config({**mail, "username": "u", "password_env": "SMTP_PW"})
    assert config({**mail, "starttls": False})  # a trusted relay without authentication


def test_secret_headers_come_from_the_environment() -> None:
    hook = {"type": "webhook", "url": "https://hooks.example.com/x"}
    for name in ("Authorization", "X-Api-Key", "X-Auth-Token", "Cookie", "X-Secret"):
        assert "headers_env" in refused({**hook, "headers": {name: "Bearer abc"}})
    ok = config({**hook, "headers": {"X-Team": "desk"}, "headers_env": {"Authorization": "HOOK_AUTH"}})
    assert ok.secret_env_names() == ("HOOK_AUTH",)
    assert "both" in refused({**hook, "headers": {"X-Team": "a"}, "headers_env": {"x-team": "TEAM"}})
