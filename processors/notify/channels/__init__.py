"""Channel senders: one per outside service, all with the same small interface.

A sender's ``send(notification)`` performs one attempt and either returns (the
service accepted it) or raises :class:`~processors.notify.retry.TransientDeliveryError` /
:class:`~processors.notify.retry.PermanentDeliveryError`. Retries, rate limits and the
ledger live in the lane, not here. :func:`build_sender` wires a sender from its
configuration and the secrets the entry point resolved.

Two kinds: the HTTP channels (webhook, Slack, Discord, Telegram) are :class:`AsyncSender` s —
``send`` is a coroutine run on the lane's event loop, many at once over one keep-alive
connection pool; console, email and browser are blocking :class:`Sender` s (the console inline
on the lane's main thread, email and browser on the window's worker threads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

import redis
from pydantic import SecretStr

from processors.notify.channels.browser import BrowserSender
from processors.notify.channels.console import ConsoleSender
from processors.notify.channels.discord import DiscordSender
from processors.notify.channels.egress import Resolver
from processors.notify.channels.email import EmailSender
from processors.notify.channels.http import HttpClient
from processors.notify.channels.slack import SlackSender
from processors.notify.channels.telegram import TelegramSender
from processors.notify.channels.webhook import WebhookSender
from processors.notify.notification import Notification
from processors.notify.settings import NotifySettings
from processors.notify.subscriptions import (
    BrowserChannel,
    ChannelConfig,
    ConsoleChannel,
    DiscordChannel,
    EmailChannel,
    SlackChannel,
    TelegramChannel,
    WebhookChannel,
)


class Sender(Protocol):
    """A blocking sender: one attempt per ``send``."""

    name: str

    def send(self, notification: Notification) -> None: ...

    def close(self) -> None: ...


class AsyncSender(Protocol):
    """A sender whose attempt is a coroutine, run on the lane's event loop."""

    name: str

    async def send(self, notification: Notification) -> None: ...

    async def aclose(self) -> None: ...


def build_sender(name: str, config: ChannelConfig, secrets: Mapping[str, SecretStr], settings: NotifySettings,
                 *, now: Callable[[], datetime], resolve: Resolver | None = None) -> Sender | AsyncSender:
    """The sender for channel ``name``; ``secrets`` maps env var names to their values.

    ``resolve`` replaces the system resolver of the HTTP channels' egress guard (tests only).
    """

    def secret(env_name: str | None) -> str | None:
        return secrets[env_name].get_secret_value() if env_name else None

    timeout = settings.http_timeout_s
    if isinstance(config, ConsoleChannel):
        return ConsoleSender(name)
    if isinstance(config, WebhookChannel | SlackChannel | DiscordChannel | TelegramChannel):
        return _http_sender(name, config, secrets, HttpClient(
            timeout, allow_private_network=config.allow_private_network, resolve=resolve), now)
    if isinstance(config, EmailChannel):
        return EmailSender(name, host=config.host, port=config.port, sender=config.sender, to=config.to,
                           starttls=config.starttls, username=config.username,
                           password=secret(config.password_env), ca_file=config.ca_file, timeout_s=timeout,
                           now=now)
    if isinstance(config, BrowserChannel):
        url, kwargs = settings.redis_connection()
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, **kwargs)
        return BrowserSender(name, client, settings.redis_notifications_channel())
    raise TypeError(f"no sender for channel type {type(config).__name__}")


def _http_sender(name: str, config: WebhookChannel | SlackChannel | DiscordChannel | TelegramChannel,
                 secrets: Mapping[str, SecretStr], client: HttpClient, now: Callable[[], datetime]) -> AsyncSender:
    def secret(env_name: str | None) -> str | None:
        return secrets[env_name].get_secret_value() if env_name else None

    if isinstance(config, WebhookChannel):
        url = str(config.url) if config.url is not None else secret(config.url_env)
        assert url is not None  # noqa: S101 - the config validator requires url or url_env
        headers = {**config.headers, **{header: secrets[env].get_secret_value()
                                        for header, env in config.headers_env.items()}}
        return WebhookSender(name, url, client, hmac_secret=secret(config.hmac_secret_env), headers=headers, now=now)
    if isinstance(config, SlackChannel):
        return SlackSender(name, secrets[config.webhook_url_env].get_secret_value(), client)
    if isinstance(config, DiscordChannel):
        return DiscordSender(name, secrets[config.webhook_url_env].get_secret_value(), client)
    return TelegramSender(name, str(config.api_base), secrets[config.bot_token_env].get_secret_value(),
                          config.chat_id, client)
