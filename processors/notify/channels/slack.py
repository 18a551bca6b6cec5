"""Slack incoming webhook: a header, the trade fields, the indicators and a dashboard button.

Slack answers ``200 ok``; ``400 invalid_payload``, ``403``, ``404 channel_not_found``,
``410 channel_is_archived`` are permanent; ``429`` carries ``Retry-After``.
"""

from __future__ import annotations

import json

from processors.notify.channels.http import HttpClient, check
from processors.notify.notification import Notification


def _escape(text: str) -> str:
    # Slack mrkdwn control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(notification: Notification) -> dict[str, object]:
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": notification.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_escape(notification.headline)}*"},
         "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{_escape(value)}"}
                    for label, value in notification.fields]},
    ]
    if notification.indicators:
        lines = "\n".join(f"`{_escape(name)}` {_escape(value)}" for name, value in notification.indicators)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Indicators*\n{lines}"}})
    if notification.url:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open dashboard"}, "url": notification.url}]})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"signal `{notification.signal_id}`"}]})
    return {"text": f"{notification.title}\n{notification.text}", "blocks": blocks}


class SlackSender:
    """Posts to one Slack incoming webhook (its URL is a secret)."""

    def __init__(self, name: str, webhook_url: str, client: HttpClient) -> None:
        self.name = name
        self._url = webhook_url
        self._client = client

    async def send(self, notification: Notification) -> None:
        body = json.dumps(payload(notification), ensure_ascii=False).encode()
        check(await self._client.post(self._url, content=body, headers={"Content-Type": "application/json"}))

    async def aclose(self) -> None:
        await self._client.aclose()
