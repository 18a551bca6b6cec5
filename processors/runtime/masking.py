"""Credentials out of every address we print or log, and failures said in words a person can act on.

Who calls what:

- :func:`mask_url` — every place that prints or logs one address (the Redis URL in ``query``, the
  run banner, ``doctor``; a Kafka bootstrap list; a webhook URL). It keeps what a person needs to
  recognise the address (scheme, host, port, database, path shape) and replaces with ``***``: the
  password of ``user:password@``, the values of secret-looking query parameters (``token``,
  ``key``, ``signature``, …), the token segments of Slack, Discord and Telegram webhook URLs and
  any path segment that looks like a token.
- :func:`mask_urls` — the same over free text (an exception message, a log record): every
  ``scheme://…`` in it is masked. :func:`processors.runtime.observability.redact` applies it to
  every log line, so an address logged by a library is masked too.
- :func:`failure_reason` — what went wrong with a connection in a few words (``connection
  refused``, ``timed out``, ``host name not found``, ``authentication failed``…), read from the
  exception chain (errno, socket errors, Redis and librdkafka errors) instead of a class name.
- :func:`unreachable` — the one sentence the command line prints when a service cannot be
  reached: where (masked), what failed, what to do.

Nothing here does I/O; a failure to parse an address leaves it masked as a whole rather than shown.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

MASK = "***"

#: Query parameter names whose values are secrets (compared lower-case, ``-`` read as ``_``).
SECRET_PARAMETERS = frozenset({
    "token", "access_token", "auth", "auth_token", "key", "apikey", "api_key", "secret", "password",
    "passwd", "pass", "pwd", "sig", "signature", "code", "client_secret", "private_token", "x_api_key",
})
# A path segment that looks like a token: long, and made of letters and digits mixed (a readable
# path such as /api/v1/alerts or /stockstream stays visible).
_TOKEN_SEGMENT = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_\-:.]{20,}$")
# Hosts whose webhook URLs are secrets from a given path segment on (Slack /services/T/B/TOKEN,
# Discord /api/webhooks/ID/TOKEN); Telegram's bot API carries the token as /bot<TOKEN>/.
_SECRET_PATH_FROM = {"hooks.slack.com": 4, "discord.com": 4, "discordapp.com": 4}
_USERINFO = re.compile(r"(?<=://)([^/@\s]*)@")
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]{1,19}://[^\s'\"<>`,;)\]}]+")


def mask_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***`` (see the module docstring for which parts).

    A comma-separated list of addresses (a Kafka bootstrap list) is masked item by item; an
    address without a scheme (``host:9092``) is returned as it is, it carries no credentials.
    """
    if "," in url:
        return ",".join(mask_url(part) for part in url.split(","))
    if "://" not in url:
        if "@" in url:  # user:password@host without a scheme: keep only the host
            return f"{MASK}@{url.rsplit('@', 1)[1]}"
        return url
    try:
        parts = urlsplit(url.strip())
        if not parts.netloc:  # a scheme urllib does not know (SASL_SSL://user:pass@host): userinfo only
            return _USERINFO.sub(_mask_userinfo, url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            netloc = f"{_masked_userinfo(userinfo)}@{host}"
        path = _mask_path(parts.hostname or "", parts.path)
        query = _mask_query(parts.query)
        fragment = MASK if parts.fragment and len(parts.fragment) >= 8 else parts.fragment
        return urlunsplit((parts.scheme, netloc, path, query, fragment))
    except ValueError:  # an address urllib cannot parse: show the scheme only
        return url.split("://", 1)[0] + "://" + MASK


def _masked_userinfo(userinfo: str) -> str:
    # ``user:password`` keeps the user; a lone ``token`` (no colon) is a credential itself.
    if ":" in userinfo:
        return f"{userinfo.split(':', 1)[0]}:{MASK}"
    return MASK


def _mask_userinfo(match: re.Match[str]) -> str:
    return f"{_masked_userinfo(match.group(1))}@"


def _mask_path(host: str, path: str) -> str:
    segments = path.split("/")
    secret_from = _SECRET_PATH_FROM.get(host.lower())
    masked = []
    # segments[0] is "" for an absolute path, so index i is the i-th segment from 1
    for index, segment in enumerate(segments):
        if secret_from is not None and index >= secret_from and segment:
            masked.append(MASK)
        elif segment.startswith("bot") and ":" in segment:  # Telegram /bot123456:ABC…/sendMessage
            masked.append(f"bot{MASK}")
        elif _TOKEN_SEGMENT.match(segment):
            masked.append(MASK)
        else:
            masked.append(segment)
    return "/".join(masked)


def _mask_query(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return MASK if len(query) >= 8 else query
    masked = [(name, MASK if name.lower().replace("-", "_") in SECRET_PARAMETERS and value else value)
              for name, value in pairs]
    return urlencode(masked, safe="*", quote_via=quote)


def mask_urls(text: str) -> str:
    """``text`` with every ``scheme://…`` address in it masked by :func:`mask_url`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group(0)), text)


# --- what failed ------------------------------------------------------------------------------

_PHRASES = (  # (substring of an error message, lower-case) → words for a person
    ("connection refused", "connection refused"),
    ("wrongpass", "authentication failed"),
    ("invalid username-password", "authentication failed"),
    ("authentication failed", "authentication failed"),
    ("noauth", "authentication required (no password given)"),
    ("authentication required", "authentication required (no password given)"),
    ("sasl authentication", "authentication failed"),
    ("name or service not known", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("temporary failure in name resolution", "host name not found"),
    ("failed to resolve", "host name not found"),
    ("timed out", "timed out"),
    ("timeout", "timed out"),
    ("certificate verify failed", "TLS certificate not trusted"),
    ("ssl", "TLS handshake failed"),
    ("network is unreachable", "network unreachable"),
    ("no route to host", "no route to host"),
    ("connection reset", "connection reset by the server"),
    ("broker transport failure", "no broker answered (connection refused or closed)"),
    ("all broker connections are down", "no broker answered (connection refused or closed)"),
)
_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ECONNRESET: "connection reset by the server",
    errno.EACCES: "permission denied",
}


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def failure_reason(error: BaseException) -> str:
    """A few words saying what failed, e.g. ``connection refused``; never a secret, never a class name alone.

    Reads the whole exception chain: an ``OSError``'s errno, socket errors, then the messages of
    Redis and librdkafka errors (``KafkaError.str()``). Falls back to the masked message.
    """
    chain = _chain(error)
    for link in chain:
        if isinstance(link, socket.gaierror):
            return "host name not found"
        if isinstance(link, ssl.SSLCertVerificationError):
            return "TLS certificate not trusted"
        if isinstance(link, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(link, OSError) and link.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[link.errno]
        if isinstance(link, TimeoutError | socket.timeout):
            return "timed out"
    texts = []
    for link in chain:
        texts.append(type(link).__name__.lower())
        for argument in link.args:
            describe = getattr(argument, "str", None)  # confluent_kafka.KafkaError
            texts.append(str(describe() if callable(describe) else argument).lower())
    joined = " ".join(texts)
    if "authenticationerror" in joined:
        return "authentication failed"
    for needle, words in _PHRASES:
        if needle in joined:
            return words
    message = mask_urls(str(error)).strip() or type(error).__name__
    return message[:200]


def unreachable(what: str, address: str, error: BaseException | str, *, setting: str,
                start_hint: str = "start it with `stockstream stack up`") -> str:
    """The sentence for a service that cannot be reached: where (masked), what failed, what to do.

    ``setting`` is the env var that holds the address (``REDIS_URL``, ``KAFKA_BOOTSTRAP_SERVERS``).
    Example: ``Redis at redis://:***@127.0.0.1:1/0 is unreachable: connection refused. Start it with
    `stockstream stack up`, or set REDIS_URL.``
    """
    reason = error if isinstance(error, str) else failure_reason(error)
    if reason.startswith("authentication"):
        advice = f"check the credentials ({setting} and the related password/user variables)"
    else:
        advice = f"{start_hint}, or set {setting}"
    return f"{what} at {mask_url(address)} is unreachable: {reason}. {advice[0].upper()}{advice[1:]}."
