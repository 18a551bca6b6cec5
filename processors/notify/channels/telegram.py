"""Telegram Bot API ``sendMessage`` (HTML) to one chat.

``POST {api_base}/bot<token>/sendMessage``; the answer is ``{"ok": true, ...}`` or
``{"ok": false, "error_code": 429, "description": ..., "parameters": {"retry_after": 5}}``.
The token is part of the URL path, so no error text ever includes the URL.
"""

from __future__ import annotations

import html
import json

from processors.notify.channels.http import HttpClient, check, json_body, snippet
from processors.notify.notification import Notification
from processors.notify.retry import PermanentDeliveryError, TransientDeliveryError

SIDE_MARK = {"BUY": "🟢", "SELL": "🔴"}


def message_html(notification: Notification) -> str:
    signal = notification.signal
    lines = [f"{SIDE_MARK.get(signal.side, '')} <b>{html.escape(notification.headline)}</b>".strip()]
    lines += [f"{html.escape(label)}: {html.escape(value)}" for label, value in notification.fields[3:]]
    if notification.indicators:
        lines.append("Indicators: " + ", ".join(
            f"{html.escape(name)} <code>{html.escape(value)}</code>" for name, value in notification.indicators))
    if notification.url:
        lines.append(f'<a href="{html.escape(notification.url, quote=True)}">Open dashboard</a>')
    return "\n".join(lines)


class TelegramSender:
    """Sends to one chat through one bot (the token is a secret)."""

    def __init__(self, name: str, api_base: str, bot_token: str, chat_id: str, client: HttpClient) -> None:
        self.name = name
        self._url = f"{api_base.rstrip('/')}/bot{bot_token}/sendMessage"
        self._chat_id = chat_id
        self._client = client

    async def send(self, notification: Notification) -> None:
        body = json.dumps({"chat_id": self._chat_id, "text": message_html(notification), "parse_mode": "HTML",
                           "disable_web_page_preview": True}, ensure_ascii=False).encode()
        response = await self._client.post(self._url, content=body, headers={"Content-Type": "application/json"})
        answer = json_body(response)
        if answer is None:
            check(response)
            raise TransientDeliveryError("bad_response", f"HTTP {response.status_code} without a JSON answer")
        if answer.get("ok") is True:
            return
        code = answer.get("error_code", response.status_code)
        description = str(answer.get("description", ""))[:200]
        parameters = answer.get("parameters") if isinstance(answer.get("parameters"), dict) else {}
        retry_after = parameters.get("retry_after") if parameters else None
        if code == 429 or response.status_code == 429:
            wait = float(retry_after) if isinstance(retry_after, int | float) else None
            raise TransientDeliveryError("http_429", f"Telegram: {description}", retry_after=wait)
        if isinstance(code, int) and code >= 500:
            raise TransientDeliveryError(f"http_{code}", f"Telegram: {description}")
        if isinstance(code, int) and 400 <= code < 500:
            raise PermanentDeliveryError(f"http_{code}", f"Telegram: {description}")
        raise TransientDeliveryError("bad_response", f"Telegram answered ok=false: {snippet(response)}")

    async def aclose(self) -> None:
        await self._client.aclose()
