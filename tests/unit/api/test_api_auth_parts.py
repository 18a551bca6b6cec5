"""The pure parts of API authentication: token format, scopes, session cookies, rate limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockstream.api.auth import SessionCodec
from stockstream.api.gate import required_scope
from stockstream.api.keys import ApiKeyError, normalize_scopes, parse_token
from stockstream.api.limits import RateLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_format():
    assert parse_token("ssk_0123456789abcdef_" + "A" * 43) == "0123456789abcdef"
    for bad in ("", "ssk_", "ssk_0123456789abcdef_" + "A" * 42, "ssk_0123456789ABCDEF_" + "A" * 43,
                "Bearer ssk_0123456789abcdef_" + "A" * 43, "ssk_0123456789abcdef_" + "A" * 43 + "\n"):
        assert parse_token(bad) is None, bad


@given(st.text(max_size=120))
def test_parse_token_never_raises(text):
    assert parse_token(text) in (None, text[4:20])


def test_scopes():
    assert normalize_scopes(["read"]) == {"read"}
    assert normalize_scopes(["admin"]) == {"admin", "read"}  # admin implies read
    for bad in ([], ["write"], ["read", "root"]):
        with pytest.raises(ApiKeyError):
            normalize_scopes(bad)


def test_required_scope_of_paths():
    for path in ("/", "/ready", "/session", "/session/oidc", "/session/oidc/callback", "/robots.txt", "/static/app.js"):
        assert required_scope(path) is None, path
    for path in ("/symbols", "/live", "/docs", "/openapi.json", "/health", "/metrics", "/static", "/x", "//symbols"):
        assert required_scope(path) == "read", path
    for path in ("/admin", "/admin/keys"):
        assert required_scope(path) == "admin", path


def test_session_cookie_signature_and_expiry():
    clock = Clock()
    codec = SessionCodec(b"k" * 32, lifetime_s=60, now=clock)
    value = codec.issue("0123456789abcdef")
    assert codec.key_id_of(value) == "0123456789abcdef"
    assert SessionCodec(b"j" * 32, 60, now=clock).key_id_of(value) is None
    body, _, signature = value.partition(".")
    assert codec.key_id_of(body + "." + signature[:-2] + "AA") is None
    assert codec.key_id_of(body) is None
    clock.now += 61
    assert codec.key_id_of(value) is None


@given(st.text(max_size=300))
def test_session_cookie_parsing_never_raises(text):
    assert SessionCodec(b"k" * 32, 60).key_id_of(text) is None
    assert SessionCodec(b"k" * 32, 60).session_of(text) is None


def test_an_identity_session_carries_its_scopes_and_a_login_cookie_is_never_a_session():
    clock = Clock()
    codec = SessionCodec(b"k" * 32, lifetime_s=60, now=clock)
    identity = codec.session_of(codec.issue("oidc-0123456789abcdef", frozenset({"read"})))
    assert identity is not None and identity.scopes == {"read"}
    assert codec.key_id_of(codec.issue("oidc-0123456789abcdef", frozenset({"read"}))) is None  # not a key's
    login = codec.seal("oidc-login", {"k": "0123456789abcdef", "s": "state"}, 600)
    assert codec.session_of(login) is None and codec.key_id_of(login) is None  # kinds never mix
    assert codec.unseal("oidc-login", codec.issue("0123456789abcdef")) is None
    assert codec.unseal("oidc-login", login) is not None
    clock.now += 601
    assert codec.unseal("oidc-login", login) is None


def test_rate_limiter_bucket_refill_and_bound():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, max_clients=2, now=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("b") == 0.0 and limiter.take("c") == 0.0
    assert len(limiter.buckets) == 2  # bounded: the least recently used client was dropped
    assert RateLimiter(rate=0, burst=1).take("x") == 0.0  # 0 = no limit
    assert retry_after_header(0.01) == "1" and retry_after_header(2.2) == "3"
