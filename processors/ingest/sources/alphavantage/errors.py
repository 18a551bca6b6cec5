"""Alpha Vantage reports errors with HTTP 200 and a JSON body; classify them by key and text.

Order matters: the burst-limit text also mentions the daily limit, and the daily-limit
text mentions premium plans, so the most specific phrase is checked first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class ApiErrorKind(StrEnum):
    DAILY_LIMIT = "daily_limit"
    BURST_LIMIT = "burst_limit"
    PREMIUM_ENDPOINT = "premium_endpoint"
    INFORMATION = "information"
    RATE_LIMIT_NOTE = "rate_limit_note"
    ERROR_MESSAGE = "error_message"


@dataclass(frozen=True)
class ApiError:
    kind: ApiErrorKind
    message: str


Retry = Literal["midnight", "backoff", "long"]

RETRY: dict[ApiErrorKind, Retry] = {
    ApiErrorKind.DAILY_LIMIT: "midnight",  # the budget is gone until the next UTC day
    ApiErrorKind.BURST_LIMIT: "backoff",
    ApiErrorKind.RATE_LIMIT_NOTE: "backoff",
    ApiErrorKind.PREMIUM_ENDPOINT: "long",  # needs a different key or endpoint: retrying soon cannot help
    ApiErrorKind.ERROR_MESSAGE: "long",  # invalid key or call: same
    ApiErrorKind.INFORMATION: "long",  # demo key and other notices
}


def classify_body(body: dict[str, object]) -> ApiError | None:
    """The error an HTTP-200 body carries, or ``None`` when it is not an error body."""
    if "Error Message" in body:
        return ApiError(ApiErrorKind.ERROR_MESSAGE, str(body["Error Message"]))
    if "Note" in body:
        return ApiError(ApiErrorKind.RATE_LIMIT_NOTE, str(body["Note"]))
    if "Information" in body:
        text = str(body["Information"])
        lowered = text.lower()
        if "per second" in lowered or "burst" in lowered or "more sparingly" in lowered:
            return ApiError(ApiErrorKind.BURST_LIMIT, text)
        if "per day" in lowered or "daily" in lowered:
            return ApiError(ApiErrorKind.DAILY_LIMIT, text)
        if "premium" in lowered:
            return ApiError(ApiErrorKind.PREMIUM_ENDPOINT, text)
        return ApiError(ApiErrorKind.INFORMATION, text)
    return None
