"""Generic JSON webhook with an optional HMAC-SHA256 signature.

Body (``application/json``)::

    {"type": "signal", "signal_id": ..., "channel": ..., "title": ..., "text": ...,
     "url": ... | null, "signal": {<the Signal event as JSON>}}

Headers: ``Idempotency-Key: <signal_id>:<channel>`` (the same on every retry and after
a restart, so a receiver can drop the rare duplicate), ``X-Stockstream-Signal-Id``, and
with a secret ``X-Stockstream-Timestamp: <unix seconds>`` and
``X-Stockstream-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">``.
Receivers check it with :func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import datetime

from processors.notify.channels.http import HttpClient, check
from processors.notify.notification import Notification

SIGNATURE_HEADER = "X-Stockstream-Signature"
TIMESTAMP_HEADER = "X-Stockstream-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (unix seconds as text)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *, now_s: float,
                     tolerance_s: float = 300.0) -> bool:
    """Receiver side: the signature matches and the timestamp is within ``tolerance_s`` of ``now_s``."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if abs(now_s - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def payload(notification: Notification, channel: str) -> dict[str, object]:
    """The body as an object (what :func:`body` encodes)."""
    return {
        "type": "signal",
        "signal_id": notification.signal_id,
        "channel": channel,
        "title": notification.title,
        "text": notification.text,
        "url": notification.url,
        "signal": notification.signal.model_dump(mode="json"),
    }


def body(notification: Notification, channel: str) -> bytes:
    """The JSON body, encoded once: the envelope by ``json``, the signal by pydantic straight to JSON
    (no intermediate dict of the event); the same object as :func:`payload`."""
    envelope = json.dumps({"type": "signal", "signal_id": notification.signal_id, "channel": channel,
                           "title": notification.title, "text": notification.text, "url": notification.url},
                          separators=(",", ":"), ensure_ascii=False)
    return f'{envelope[:-1]},"signal":{notification.signal.model_dump_json()}}}'.encode()


class WebhookSender:
    """POSTs each notification to one URL; called by the lane of its channel."""

    def __init__(self, name: str, url: str, client: HttpClient, *, hmac_secret: str | None = None,
                 headers: Mapping[str, str] | None = None, now: Callable[[], datetime]) -> None:
        self.name = name
        self._url = url
        self._client = client
        self._secret = hmac_secret
        self._headers = dict(headers or {})
        self._now = now

    async def send(self, notification: Notification) -> None:
        content = body(notification, self.name)
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "Idempotency-Key": f"{notification.signal_id}:{self.name}",
            "X-Stockstream-Signal-Id": notification.signal_id,
        }
        if self._secret:
            timestamp = str(int(self._now().timestamp()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, content)
        check(await self._client.post(self._url, content=content, headers=headers))

    async def aclose(self) -> None:
        await self._client.aclose()
