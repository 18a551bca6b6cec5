"""Browser push through the dashboard's live endpoint: a Redis PUBLISH (contract with the API).

Channel ``{REDIS_KEY_PREFIX}live:notifications``; body
``{"signal_id", "title", "text", "url", "signal"}``. Delivered = the PUBLISH succeeded
(whether or not a browser is listening right now).
"""

from __future__ import annotations

import json

import redis

from processors.notify.notification import Notification
from processors.notify.retry import PermanentDeliveryError, TransientDeliveryError
from processors.runtime.masking import failure_reason, mask_urls


def payload(notification: Notification) -> dict[str, object]:
    return {
        "signal_id": notification.signal_id,
        "title": notification.title,
        "text": notification.text,
        "url": notification.url,
        "signal": notification.signal.model_dump(mode="json"),
    }


class BrowserSender:
    """Publishes each notification on the live notifications channel."""

    def __init__(self, name: str, client: redis.Redis, redis_channel: str) -> None:
        self.name = name
        self._redis = client
        self._channel = redis_channel

    def send(self, notification: Notification) -> None:
        body = json.dumps(payload(notification), separators=(",", ":"), ensure_ascii=False)
        try:
            self._redis.publish(self._channel, body)
        except redis.exceptions.AuthenticationError:
            raise PermanentDeliveryError("redis_auth", "Redis refused the credentials") from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            raise TransientDeliveryError("connection_error", f"Redis: {failure_reason(error)}") from None
        except redis.exceptions.ResponseError as error:
            raise TransientDeliveryError("redis_error", f"Redis: {mask_urls(str(error))[:200]}") from None

    def close(self) -> None:
        self._redis.close()
