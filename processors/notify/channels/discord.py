"""Discord webhook: one embed per signal (green BUY, red SELL), mentions disabled.

Posted with ``?wait=true`` so Discord confirms the message (``200``). A ``429`` body
carries ``retry_after`` in seconds (preferred over the header); other 4xx are permanent.
"""

from __future__ import annotations

import json

from processors.notify.channels.http import HttpClient, check, json_body
from processors.notify.notification import Notification

BUY_COLOUR = 0x2ECC71
SELL_COLOUR = 0xE74C3C


def payload(notification: Notification) -> dict[str, object]:
    signal = notification.signal
    fields = [{"name": label, "value": value, "inline": True} for label, value in notification.fields]
    if notification.indicators:
        fields.append({"name": "Indicators", "inline": False,
                       "value": "\n".join(f"{name}: {value}" for name, value in notification.indicators)[:1024]})
    embed: dict[str, object] = {
        "title": notification.title[:256],
        "description": notification.headline,
        "color": BUY_COLOUR if signal.side == "BUY" else SELL_COLOUR,
        "fields": fields,
        "timestamp": signal.ts_event.isoformat(),
        "footer": {"text": f"signal {notification.signal_id}"},
    }
    if notification.url:
        embed["url"] = notification.url
    return {"username": "stockstream", "embeds": [embed], "allowed_mentions": {"parse": []}}


class DiscordSender:
    """Posts to one Discord webhook (its URL is a secret)."""

    def __init__(self, name: str, webhook_url: str, client: HttpClient) -> None:
        self.name = name
        self._url = webhook_url
        self._client = client

    async def send(self, notification: Notification) -> None:
        body = json.dumps(payload(notification), ensure_ascii=False).encode()
        response = await self._client.post(self._url, content=body, headers={"Content-Type": "application/json"},
                        params={"wait": "true"})
        retry_after = None
        if response.status_code == 429:
            value = (json_body(response) or {}).get("retry_after")
            retry_after = float(value) if isinstance(value, int | float) else None
        check(response, retry_after=retry_after)

    async def aclose(self) -> None:
        await self._client.aclose()
