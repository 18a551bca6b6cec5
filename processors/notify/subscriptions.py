"""The subscription file: which channels exist and which signals each one wants.

A TOML or YAML file (``NOTIFY_SUBSCRIPTIONS`` / ``--subscriptions``) with two parts:

- ``channels``: named outside destinations (``type`` = console, webhook, slack,
  discord, telegram, email or browser) with their addresses and an optional rate limit;
- ``subscriptions``: each names one channel, filters (symbols, rules, sides,
  timeframes; empty = all) and a cooldown per (symbol, timeframe, rule, side).

Secrets never appear in the file: a channel names the env var that holds them
(``bot_token_env = "TELEGRAM_BOT_TOKEN"``), and only the entry point reads them
(:func:`resolve_secrets`). Everything is validated when the notifier starts;
:class:`SubscriptionConfigError` carries a message fit to show the operator.
See docs/notify.md for an example of every channel.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    model_validator,
)

from processors.core.config_errors import Problem, Problems
from processors.core.config_file import ConfigFileError, load_document
from schemas.events import Signal
from schemas.symbols import InvalidSymbolError, normalize_symbol
from schemas.timeframes import validate_timeframe

CHANNEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,47}$"
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]{0,127}$"
RULE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
HEADER_NAME_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
CHAT_ID_PATTERN = r"^(-?\d{1,20}|@[A-Za-z0-9_]{5,64})$"
#: What the patterns above mean, for error messages.
PATTERN_WORDS = {
    CHANNEL_NAME_PATTERN: "a name of lower-case letters, digits, _ and - (at most 48), like team-slack",
    ENV_NAME_PATTERN: "an environment variable name in capitals, like SLACK_WEBHOOK_URL",
    RULE_NAME_PATTERN: "a rule name like rsi_reversal",
    HEADER_NAME_PATTERN: "an HTTP header name like X-Team",
    CHAT_ID_PATTERN: "a numeric chat id like -100123 or a channel name like @mychannel",
}
DEFAULT_COOLDOWN_S = 300.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class SubscriptionConfigError(ConfigFileError):
    """The subscription file is missing, unreadable or invalid; the message says where and why."""


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``"90s"``, ``"15m"``, ``"1h"`` (a bare number is seconds)."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '15m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration like 30s, 15m, 1h or 1d")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    else:
        raise ValueError("a duration must be a number of seconds or a string like '15m'")
    if not math.isfinite(seconds):  # YAML .nan/.inf, 1e400: a NaN cooldown would never cool down
        raise ValueError("a duration must be a finite number")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]
ChannelName = Annotated[str, Field(pattern=CHANNEL_NAME_PATTERN)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class RateLimit(_Frozen):
    """Token bucket: ``per_second`` tokens refill continuously, at most ``burst`` saved up."""

    per_second: Annotated[float, Field(gt=0, le=10_000)]
    burst: Annotated[int, Field(ge=1, le=10_000)] = 1


class _ChannelBase(_Frozen):
    rate_limit: RateLimit | None = None

    def secret_env_names(self) -> tuple[str, ...]:
        """Env vars this channel reads its secrets from."""
        return ()

    def secret_env_keys(self) -> dict[str, str]:
        """Each of :meth:`secret_env_names` → the key of this channel that names it (``webhook_url_env``,
        ``headers_env.Authorization``), for messages that say where a variable is asked for."""
        keys: dict[str, str] = {}
        for field in type(self).model_fields:
            value = getattr(self, field)
            if field.endswith("_env") and isinstance(value, str):
                keys.setdefault(value, field)
            elif field.endswith("_env") and isinstance(value, dict):
                for key, name in value.items():
                    keys.setdefault(str(name), f"{field}.{key}")
        return {name: keys.get(name, "?") for name in self.secret_env_names()}

    def default_rate_limit(self) -> RateLimit | None:
        return None

    def effective_rate_limit(self) -> RateLimit | None:
        return self.rate_limit or self.default_rate_limit()


class ConsoleChannel(_ChannelBase):
    """One line per signal on the notifier's standard output."""

    type: Literal["console"]


class _HttpChannel(_ChannelBase):
    """A channel that POSTs over HTTP: HTTPS only, and never to a private address, unless it says
    ``allow_private_network = true`` (checked at send time after DNS resolution: channels/egress.py)."""

    allow_private_network: bool = False

    def check_url(self, url: str, what: str) -> None:
        """Refuse a URL this channel may not use (an ``http://`` one without ``allow_private_network``)."""
        scheme = urlsplit(url).scheme
        if scheme != "https" and not (scheme == "http" and self.allow_private_network):
            raise ValueError(f"{what} must be an https:// URL (http:// only with allow_private_network = true)")


HeaderName = Annotated[str, Field(pattern=HEADER_NAME_PATTERN)]
# Header names whose values are credentials: they must come from the environment (headers_env).
_SECRET_HEADER = re.compile(r"^(authorization|proxy-authorization|cookie)$|token|secret|api-?key|password|auth",
                            re.IGNORECASE)


class WebhookChannel(_HttpChannel):
    """Generic JSON webhook: POST of the notification and the signal; optional HMAC-SHA256 signature.

    ``headers`` are sent as written (no credentials: a name like Authorization or X-Api-Key is
    refused there); ``headers_env`` maps a header to the env var holding its (secret) value.
    """

    type: Literal["webhook"]
    url: HttpUrl | None = None
    url_env: EnvName | None = None
    hmac_secret_env: EnvName | None = None
    headers: dict[HeaderName, str] = Field(default_factory=dict)
    headers_env: dict[HeaderName, EnvName] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_url(self) -> WebhookChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("a webhook channel needs exactly one of 'url' or 'url_env'")
        if self.url is not None:
            self.check_url(str(self.url), "the webhook url")
        secret = sorted(name for name in self.headers if _SECRET_HEADER.search(name))
        if secret:
            raise ValueError(f"header {', '.join(secret)} looks like a credential: give it with headers_env "
                             "(header name → env var), never in the file")
        both = sorted(set(name.lower() for name in self.headers) & set(name.lower() for name in self.headers_env))
        if both:
            raise ValueError(f"header {', '.join(both)} is in both headers and headers_env")
        return self

    def secret_env_names(self) -> tuple[str, ...]:
        return tuple(name for name in (self.url_env, self.hmac_secret_env, *self.headers_env.values()) if name)

    def default_rate_limit(self) -> RateLimit:
        return RateLimit(per_second=10, burst=10)


class SlackChannel(_HttpChannel):
    """Slack incoming webhook; the webhook URL is a secret, read from ``webhook_url_env``."""

    type: Literal["slack"]
    webhook_url_env: EnvName

    def secret_env_names(self) -> tuple[str, ...]:
        return (self.webhook_url_env,)

    def default_rate_limit(self) -> RateLimit:
        # Slack: about one message per second per incoming webhook, short bursts tolerated.
        return RateLimit(per_second=1, burst=3)


class DiscordChannel(_HttpChannel):
    """Discord webhook (an embed per signal); the webhook URL is a secret, read from ``webhook_url_env``."""

    type: Literal["discord"]
    webhook_url_env: EnvName

    def secret_env_names(self) -> tuple[str, ...]:
        return (self.webhook_url_env,)

    def default_rate_limit(self) -> RateLimit:
        # Discord webhooks: about 5 requests per 2 seconds.
        return RateLimit(per_second=2.5, burst=5)


TELEGRAM_API_BASE = "https://api.telegram.org"


class TelegramChannel(_HttpChannel):
    """Telegram Bot API ``sendMessage`` to one chat; the bot token is read from ``bot_token_env``.

    The API host is pinned to api.telegram.org (the token travels in the URL path): another
    ``api_base`` (a local Bot API server) needs ``allow_custom_api_base = true``.
    """

    type: Literal["telegram"]
    bot_token_env: EnvName
    chat_id: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v),
                       Field(pattern=CHAT_ID_PATTERN)]
    api_base: HttpUrl = HttpUrl(TELEGRAM_API_BASE)
    allow_custom_api_base: bool = False

    @model_validator(mode="after")
    def _pinned_host(self) -> TelegramChannel:
        if str(self.api_base).rstrip("/") != TELEGRAM_API_BASE and not self.allow_custom_api_base:
            raise ValueError(f"api_base must be {TELEGRAM_API_BASE} (the bot token goes to it) unless the channel "
                             "says allow_custom_api_base = true")
        self.check_url(str(self.api_base), "api_base")
        return self

    def secret_env_names(self) -> tuple[str, ...]:
        return (self.bot_token_env,)

    def default_rate_limit(self) -> RateLimit:
        # Telegram: about one message per second per chat.
        return RateLimit(per_second=1, burst=1)


def _mail_address(value: object) -> object:
    if isinstance(value, str):
        _name, address = parseaddr(value)
        if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
            raise ValueError(f"{value!r} is not a mail address like alice@example.com or 'Alice <alice@example.com>'")
    return value


EmailAddress = Annotated[str, Field(max_length=254), AfterValidator(_mail_address)]


class EmailChannel(_ChannelBase):
    """Mail over SMTP: STARTTLS by default (``starttls = false`` for a relay on a trusted network);
    authentication (password from ``password_env``) only over TLS, never over a clear connection."""

    type: Literal["email"]
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    starttls: bool = True
    ca_file: Path | None = None
    username: str | None = None
    password_env: EnvName | None = None
    sender: EmailAddress = Field(alias="from")
    to: Annotated[tuple[EmailAddress, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _auth_pair(self) -> EmailChannel:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("email authentication needs both 'username' and 'password_env'")
        if self.username is not None and not self.starttls:
            raise ValueError("email authentication over a clear connection is refused: keep starttls = true")
        return self

    def secret_env_names(self) -> tuple[str, ...]:
        return (self.password_env,) if self.password_env else ()

    def default_rate_limit(self) -> RateLimit:
        return RateLimit(per_second=1, burst=5)


class BrowserChannel(_ChannelBase):
    """Browser push: PUBLISH on Redis ``{REDIS_KEY_PREFIX}live:notifications``; the API relays it."""

    type: Literal["browser"]


ChannelConfig = Annotated[
    ConsoleChannel | WebhookChannel | SlackChannel | DiscordChannel | TelegramChannel | EmailChannel | BrowserChannel,
    Field(discriminator="type"),
]


def _symbols(value: object) -> object:
    if isinstance(value, list | tuple):
        try:
            return tuple(normalize_symbol(item) for item in value)
        except InvalidSymbolError as error:
            raise ValueError(str(error)) from None
    return value


def _timeframes(value: object) -> object:
    if isinstance(value, list | tuple):
        for item in value:
            if not isinstance(item, str):
                raise ValueError("timeframes are strings such as 'tick', '1m', '1h'")
            try:
                validate_timeframe(item)
            except ValueError as error:
                raise ValueError(str(error)) from None
    return value


class Subscription(_Frozen):
    """Which signals one channel wants; an empty filter list means "all"."""

    name: Annotated[str, Field(pattern=CHANNEL_NAME_PATTERN)]
    channel: ChannelName
    symbols: Annotated[tuple[str, ...], BeforeValidator(_symbols)] = ()
    rules: tuple[Annotated[str, Field(pattern=RULE_NAME_PATTERN)], ...] = ()
    sides: tuple[Literal["BUY", "SELL"], ...] = ()
    timeframes: Annotated[tuple[str, ...], BeforeValidator(_timeframes)] = ()
    cooldown_s: Duration = Field(DEFAULT_COOLDOWN_S, alias="cooldown")

    def matches(self, signal: Signal) -> bool:
        """Whether ``signal`` passes every filter of this subscription."""
        return (
            (not self.symbols or signal.symbol in self.symbols)
            and (not self.rules or signal.rule in self.rules)
            and (not self.sides or signal.side in self.sides)
            and (not self.timeframes or signal.timeframe in self.timeframes)
        )


class NotifyConfig(_Frozen):
    """The whole subscription file, cross-checked (every subscription names a declared channel)."""

    channels: dict[ChannelName, ChannelConfig]
    subscriptions: Annotated[tuple[Subscription, ...], Field(min_length=1)]

    @model_validator(mode="before")
    @classmethod
    def _default_names(cls, data: Any) -> Any:
        # Subscriptions may omit their name; number them so errors and state keys stay stable.
        if isinstance(data, dict) and isinstance(data.get("subscriptions"), list):
            data = dict(data)
            data["subscriptions"] = [
                {"name": f"subscription-{index}", **item} if isinstance(item, dict) and "name" not in item else item
                for index, item in enumerate(data["subscriptions"], start=1)
            ]
        return data

    @model_validator(mode="after")
    def _cross_check(self) -> NotifyConfig:
        problems: list[Problem] = []
        names = [subscription.name for subscription in self.subscriptions]
        for index, name in enumerate(names):
            if name in names[:index]:
                problems.append(Problem(("subscriptions", index, "name"),
                                        f"subscription names must be unique: {name!r} is used twice"))
        for index, subscription in enumerate(self.subscriptions):
            if subscription.channel not in self.channels:
                problems.append(Problem(
                    ("subscriptions", index, "channel"),
                    f"subscription {subscription.name!r} names channel {subscription.channel!r}, which is not"
                    f" declared (declared: {', '.join(sorted(self.channels)) or 'none'})"))
        for name in sorted(set(self.channels) - {s.channel for s in self.subscriptions}):
            problems.append(Problem(("channels", name), "channels without any subscription: "
                                    f"{name} (add a [[subscriptions]] naming it, or remove it)"))
        if problems:
            raise Problems(problems)
        return self

    def subscriptions_of(self, channel: str) -> tuple[Subscription, ...]:
        return tuple(s for s in self.subscriptions if s.channel == channel)

    def secret_env_names(self) -> tuple[str, ...]:
        return tuple(sorted({name for channel in self.channels.values() for name in channel.secret_env_names()}))


def default_config() -> NotifyConfig:
    """Used when no subscription file is given: every signal on the console, no cooldown."""
    return NotifyConfig.model_validate(
        {"channels": {"console": {"type": "console"}},
         "subscriptions": [{"name": "all-signals", "channel": "console", "cooldown": 0}]}
    )


def load_config(path: Path) -> NotifyConfig:
    """Read and validate a ``.toml``, ``.yaml`` or ``.yml`` subscription file.

    Raises :class:`SubscriptionConfigError` with the file name and every problem found.
    """
    document = load_document(path, "subscription file", SubscriptionConfigError)
    try:
        return NotifyConfig.model_validate(document.data)
    except ValidationError as error:
        raise document.invalid(document.validation_problems(error, NotifyConfig, patterns=PATTERN_WORDS)) from None


def maskable_values(secrets: Mapping[str, SecretStr]) -> list[str]:
    """Every string to mask in logs for these secrets: each value and, for URL secrets (Slack and
    Discord webhooks), also their path and last path segment, the token a server might echo back."""
    values: list[str] = []
    for secret in secrets.values():
        value = secret.get_secret_value()
        values.append(value)
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.path.strip("/"):
            values.append(parts.path)
            last = parts.path.rstrip("/").rsplit("/", 1)[-1]
            if len(last) >= 8:
                values.append(last)
    return values


#: A subscription file that needs no secret: every signal on the console (the README's notify line).
CONSOLE_EXAMPLE = "docs/examples/subscriptions-console.toml"


def resolve_secrets(config: NotifyConfig, environ: Mapping[str, str],
                    source: Path | str | None = None) -> dict[str, SecretStr]:
    """The secrets the channels name, read from ``environ`` (called by the entry point only).

    Raises :class:`SubscriptionConfigError` naming (never showing) every missing variable, with the
    file (``source``) and the channel and key that ask for it, and what to do.
    """
    missing = [name for name in config.secret_env_names() if not environ.get(name)]
    if missing:
        uses: dict[str, list[str]] = {name: [] for name in missing}
        for channel_name, channel in sorted(config.channels.items()):
            for name, key in channel.secret_env_keys().items():
                if name in uses:
                    uses[name].append(f"channel {channel_name!r} ({channel.type}), {key}")
        lines = [f"  - {name}: {'; '.join(where)}" for name, where in uses.items()]
        where = f"subscription file {source}" if source else "the subscription file"
        raise SubscriptionConfigError(
            f"{where} names environment variables that are not set:\n" + "\n".join(lines)
            + f"\nSet them, or remove those channels from the file (to try the notifier with no secrets:"
            f" --subscriptions {CONSOLE_EXAMPLE}, every signal on the console)."
        )
    return {name: SecretStr(environ[name]) for name in config.secret_env_names()}
