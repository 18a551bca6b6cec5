"""OIDC token checks (stockstream/api/oidc.py) against a local identity provider that speaks the protocol.

The provider (tests/support/fake_receivers/oidc.py) serves a discovery document, a JWKS and a token
endpoint on 127.0.0.1; nothing of ours is patched. Every forged or stale token is simply not a
credential; an unreachable or inconsistent provider raises ``OidcUnavailableError``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import OctKey, RSAKey
from pydantic import ValidationError

from stockstream.api.oidc import OidcConfig, OidcProvider, OidcUnavailableError
from stockstream.api.settings import ApiSettings
from tests.support.fake_receivers.oidc import IdentityProvider
from tests.support.ports import free_port


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


def checker(idp: IdentityProvider, **overrides: object) -> OidcProvider:
    config = OidcConfig(issuer=idp.issuer, audience=idp.api_audience, client_id=idp.client_id,
                        client_secret=idp.client_secret, redirect_url="https://dash.example/session/oidc/callback")
    return OidcProvider(OidcConfig(**{**config.__dict__, **overrides}))


def test_a_valid_access_token_gives_the_scopes_its_claim_maps_to(idp):
    oidc = checker(idp)
    reader = oidc.bearer_identity(idp.mint(scope="openid stockstream:read"))
    assert reader is not None and reader.scopes == {"read"}
    admin = oidc.bearer_identity(idp.mint(scope="stockstream:admin"))
    assert admin is not None and admin.scopes == {"admin", "read"}
    nobody = oidc.bearer_identity(idp.mint(scope="openid profile"))
    assert nobody is not None and nobody.scopes == frozenset()
    # The id names the identity without revealing the subject (it may be an e-mail address).
    assert reader.subject_id.startswith("oidc-") and "alice" not in reader.subject_id
    assert reader.subject_id == admin.subject_id
    groups = checker(idp, scopes_claim="groups", read_values=frozenset({"traders"}))
    member = groups.bearer_identity(idp.mint(groups=["ops", "traders"]))
    assert member is not None and member.scopes == {"read"}


def test_forged_foreign_or_stale_tokens_are_not_credentials(idp):
    oidc = checker(idp)
    stranger = RSAKey.generate_key(2048, parameters={"kid": idp.key.kid})  # same kid, another key
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": idp.key.kid}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({"iss": idp.issuer, "aud": idp.api_audience, "sub": "x",
                                                "exp": 9_999_999_999}).encode()).rstrip(b"=").decode()
    for token in (
        idp.mint(key=stranger),                                   # a signature the provider never made
        idp.mint(key=OctKey.import_key(b"s" * 32, {"kid": idp.key.kid}), alg="HS256"),  # HMAC: refused outright
        f"{header}.{body}.",                                      # alg none
        idp.mint(iss="https://evil.example"),                     # another issuer
        idp.mint(aud="another-api"),                              # another audience
        idp.mint(aud=idp.client_id),                              # the dashboard's ID token is not an API token
        idp.mint(lifetime_s=-120),                                # expired beyond the leeway
        idp.mint(exp=None),                                       # no expiry
        idp.mint(sub=None),                                       # no subject
        idp.mint() + "x",                                         # tampered
    ):
        assert oidc.bearer_identity(token) is None, token[:60]
    assert checker(idp, audience=None).bearer_identity(idp.mint()) is None  # bearer tokens not configured


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,40}"))
def test_any_text_is_refused_without_raising(idp, text):
    assert checker(idp).bearer_identity(text) is None


def test_a_rotated_key_is_fetched_once_when_a_token_names_it(idp):
    oidc = checker(idp)
    assert oidc.bearer_identity(idp.mint()) is not None
    before = idp.jwks_requests
    assert oidc.bearer_identity(idp.mint()) is not None
    assert idp.jwks_requests == before  # cached
    old = idp.key
    idp.rotate()
    assert oidc.bearer_identity(idp.mint()) is not None
    assert idp.jwks_requests == before + 1
    assert oidc.bearer_identity(idp.mint(key=old)) is None  # the retired key: refused, no refetch storm
    assert idp.jwks_requests == before + 1


def test_an_unreachable_or_inconsistent_provider_is_unavailable_not_a_refusal(idp):
    closed = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    with pytest.raises(OidcUnavailableError, match="unreachable"):
        checker(idp, issuer=closed).bearer_identity(idp.mint())
    with pytest.raises(OidcUnavailableError, match="not API_OIDC_ISSUER"):
        checker(idp, issuer=f"{idp.issuer}/").bearer_identity(idp.mint())


def test_the_login_request_carries_pkce_state_and_nonce(idp):
    start = checker(idp).start_login()
    assert start.url.startswith(f"{idp.issuer}/authorize?")
    for part in ("response_type=code", "code_challenge_method=S256", f"state={start.state}", f"nonce={start.nonce}",
                 "scope=openid"):
        assert part in start.url
    assert start.verifier not in start.url  # only its S256 challenge leaves
    assert checker(idp).finish_login("no-such-code", start.verifier, start.nonce) is None


def test_settings_refuse_an_insecure_or_incomplete_oidc_configuration():
    base = {"api_auth": "on"}
    assert ApiSettings(**base).oidc() is None
    ok = ApiSettings(**base, oidc_issuer="https://id.example.com", oidc_audience="stockstream-api",
                     oidc_read_values="traders, readers")
    assert ok.oidc() is not None and ok.oidc().read_values == {"traders", "readers"}  # type: ignore[union-attr]
    for wrong, message in (
        ({"oidc_issuer": "http://id.example.com", "oidc_audience": "a"}, "https://"),
        ({"oidc_issuer": "https://id.example.com"}, "nothing uses it"),
        ({"oidc_issuer": "https://id.example.com", "oidc_client_id": "dash"}, "API_OIDC_REDIRECT_URL"),
        ({"oidc_issuer": "https://id.example.com", "oidc_client_id": "dash",
          "oidc_redirect_url": "http://dash.example.com/cb"}, "API_OIDC_REDIRECT_URL must be"),
        ({"oidc_issuer": "https://id.example.com", "oidc_audience": "a", "oidc_request_scopes": "profile"},
         "openid"),
    ):
        with pytest.raises(ValidationError, match=message):
            ApiSettings(**base, **wrong)
    assert ApiSettings(**base, oidc_issuer="http://127.0.0.1:8080", oidc_audience="a").oidc() is not None
