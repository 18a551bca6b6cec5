"""Credentials never appear in an address we print or log; failures are said in words (processors/runtime/masking.py)."""

from __future__ import annotations

import errno
import logging
import socket

import pytest

from processors.runtime.masking import failure_reason, mask_url, mask_urls, unreachable
from processors.runtime.observability import RedactingFilter, redact
from tests.support.ports import free_port

SECRET = "hunter2-DO-NOT-LEAK"


@pytest.mark.parametrize(("url", "masked"), [
    (f"redis://:{SECRET}@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
    (f"redis://alice:{SECRET}@redis.internal:6379/2", "redis://alice:***@redis.internal:6379/2"),
    (f"rediss://default:{SECRET}@cache.example.com/1", "rediss://default:***@cache.example.com/1"),
    (f"redis://{SECRET}@127.0.0.1:6379", "redis://***@127.0.0.1:6379"),
    (f"SASL_SSL://svc:{SECRET}@k1:9093,SASL_SSL://svc:{SECRET}@k2:9093",
     "SASL_SSL://svc:***@k1:9093,SASL_SSL://svc:***@k2:9093"),
    (f"svc:{SECRET}@k1:9093", "***@k1:9093"),
    (f"https://hooks.slack.com/services/T000/B000/{SECRET}", "https://hooks.slack.com/services/T000/B000/***"),
    (f"https://discord.com/api/webhooks/77/{SECRET}", "https://discord.com/api/webhooks/77/***"),
    (f"https://api.telegram.org/bot4242:{SECRET}/sendMessage", "https://api.telegram.org/bot***/sendMessage"),
    (f"https://alerts.example.com/hook?token={SECRET}&team=desk",
     "https://alerts.example.com/hook?token=***&team=desk"),
    (f"https://alerts.example.com/hook?X-Api-Key={SECRET}", "https://alerts.example.com/hook?X-Api-Key=***"),
    ("https://alerts.example.com/hooks/a1B2c3D4e5F6g7H8i9J0k", "https://alerts.example.com/hooks/***"),
])
def test_credentials_are_masked_and_the_address_stays_recognisable(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert SECRET not in mask_url(url)


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0", "127.0.0.1:9092", "k1:9092,k2:9092", "http://127.0.0.1:9090",
    "https://alerts.example.com/stockstream/api/v1/alerts?team=desk",
])
def test_addresses_without_credentials_are_unchanged(url: str) -> None:
    assert mask_url(url) == url


def test_every_address_in_free_text_is_masked() -> None:
    text = (f"Redis at redis://:{SECRET}@127.0.0.1:1/0 failed, then 'https://hooks.slack.com/services/T/B/{SECRET}'"
            f" (see https://x.example/?apikey={SECRET}).")
    masked = mask_urls(text)
    assert SECRET not in masked
    assert "redis://:***@127.0.0.1:1/0 failed" in masked
    assert masked.endswith("(see https://x.example/?apikey=***).")


def test_log_records_mask_addresses_even_when_no_secret_was_registered(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("test", logging.WARNING, __file__, 1, "connecting to %s", (f"redis://:{SECRET}@h:1/0",),
                               None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "connecting to redis://:***@h:1/0"
    assert SECRET not in redact(f"retrying rediss://u:{SECRET}@h/0")


def _refused() -> Exception:
    port = free_port()  # nobody listens there
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError as error:
        return error
    raise AssertionError("a closed port accepted a connection")


def test_failure_reasons_are_words_from_the_exception_chain() -> None:
    assert failure_reason(_refused()) == "connection refused"
    wrapped = RuntimeError("network:ConnectionError")
    wrapped.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert failure_reason(wrapped) == "connection refused"
    assert failure_reason(socket.gaierror(-2, "Name or service not known")) == "host name not found"
    assert failure_reason(TimeoutError()) == "timed out"
    assert failure_reason(RuntimeError("WRONGPASS invalid username-password pair")) == "authentication failed"
    assert failure_reason(RuntimeError(f"odd failure at redis://:{SECRET}@h/0")) == "odd failure at redis://:***@h/0"


def test_unreachable_says_where_what_failed_and_what_to_do() -> None:
    message = unreachable("Redis", f"redis://:{SECRET}@127.0.0.1:1/0", _refused(), setting="REDIS_URL")
    assert message == ("Redis at redis://:***@127.0.0.1:1/0 is unreachable: connection refused."
                       " Start it with `stockstream stack up`, or set REDIS_URL.")
    denied = unreachable("Redis", "redis://127.0.0.1:6379/0", "authentication failed", setting="REDIS_URL")
    assert denied.endswith("Check the credentials (REDIS_URL and the related password/user variables).")
