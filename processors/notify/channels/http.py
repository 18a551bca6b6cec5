"""HTTP plumbing shared by the webhook, Slack, Discord and Telegram channels.

One place decides what an HTTP outcome means: 2xx delivered; 429 (and 408) retry,
honouring ``Retry-After``; other 4xx permanent; 5xx, timeouts and connection errors
retry. Error texts never include the URL (Slack/Discord URLs and Telegram paths are
secrets) and pass through :func:`processors.runtime.observability.redact`.

Where a channel may connect is decided in :mod:`processors.notify.channels.egress`: every
client of :func:`make_client` resolves, checks and connects through its guard, and refuses
a plain ``http://`` request (``insecure_url``) unless the channel allows private networks.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from processors.notify.channels.egress import GuardedBackend, GuardedTransport, Resolver
from processors.notify.retry import PermanentDeliveryError, TransientDeliveryError
from processors.runtime import package_version
from processors.runtime.observability import redact

USER_AGENT = f"stockstream-notify/{package_version()}"
_SNIPPET = 200


def make_client(timeout_s: float, *, allow_private_network: bool = False, resolve: Resolver | None = None,
                verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """A client for one channel: bounded timeouts, no redirects (a redirect is a misconfiguration),
    no environment proxies, every connection through the egress guard; HTTPS only unless
    ``allow_private_network`` (then ``http://`` too). ``resolve``/``verify``: tests inject them."""

    def https_only(request: httpx.Request) -> None:
        if request.url.scheme != "https" and not (request.url.scheme == "http" and allow_private_network):
            raise PermanentDeliveryError("insecure_url", f"refusing a {request.url.scheme}:// URL: channels send "
                                                         "over https:// (http:// only with allow_private_network)")

    return httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False,
                        headers={"User-Agent": USER_AGENT}, event_hooks={"request": [https_only]},
                        transport=GuardedTransport(GuardedBackend(allow_private_network, resolve), verify=verify))


def post(client: httpx.Client, url: str, *, content: bytes, headers: Mapping[str, str] | None = None,
         params: Mapping[str, str] | None = None) -> httpx.Response:
    """POST ``content``; transport failures become :class:`TransientDeliveryError` (without the URL)."""
    try:
        return client.post(url, content=content, headers=dict(headers or {}), params=params)
    except httpx.TimeoutException as error:
        raise TransientDeliveryError("timeout", f"no answer in time ({type(error).__name__})") from None
    except httpx.TransportError as error:
        raise TransientDeliveryError("connection_error", redact(f"{type(error).__name__}: {error}")[:_SNIPPET]) from None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; ``None`` if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def snippet(response: httpx.Response) -> str:
    return redact(response.text[:_SNIPPET].replace("\n", " "))


def check(response: httpx.Response, retry_after: float | None = None) -> None:
    """Raise the delivery error an HTTP response means; return quietly on 2xx.

    ``retry_after`` overrides the ``Retry-After`` header (Discord and Telegram send it in the body).
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"http_{status}"
    if status in (429, 408):
        wait = retry_after if retry_after is not None else parse_retry_after(response.headers.get("Retry-After"))
        raise TransientDeliveryError(reason, f"HTTP {status} {snippet(response)}".strip(), retry_after=wait)
    if status >= 500:
        raise TransientDeliveryError(reason, f"HTTP {status} {snippet(response)}".strip())
    raise PermanentDeliveryError(reason, f"HTTP {status} {snippet(response)}".strip())


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The response's JSON object, or ``None`` when it has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
