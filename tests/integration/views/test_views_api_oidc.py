"""Optional OIDC on the API and the dashboard, against a local identity provider that speaks the protocol.

The API (in-process, TestClient over ``https://testserver`` so the Secure cookies are kept; the real
Redis for the key store) trusts the provider of tests/support/fake_receivers/oidc.py, reached over
real HTTP: bearer JWTs map to scopes from a claim; the dashboard's sign-in runs the whole
authorization-code flow (the browser's redirects followed by hand) and ends with the same session
cookie a key sign-in sets. API keys keep working beside it; without ``API_OIDC_ISSUER`` a JWT is nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from stockstream.api.app import create_app
from stockstream.api.keys import KeyStore
from stockstream.api.settings import ApiSettings
from tests.support.fake_receivers.oidc import IdentityProvider

pytestmark = pytest.mark.integration
CALLBACK = "https://testserver/session/oidc/callback"


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


def settings(stack, views_prefix, idp: IdentityProvider | None, **overrides: object) -> ApiSettings:
    oidc = {} if idp is None else {
        "oidc_issuer": idp.issuer, "oidc_audience": idp.api_audience, "oidc_client_id": idp.client_id,
        "oidc_client_secret": idp.client_secret, "oidc_redirect_url": CALLBACK}
    return ApiSettings(bootstrap_servers=stack.kafka_bootstrap, redis_url=stack.redis_url,
                       redis_key_prefix=views_prefix, api_auth="on", api_keys_prefix=f"{views_prefix}auth:",
                       **{**oidc, **overrides})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: TestClient) -> httpx.Response:
    """What a browser does: the dashboard's link, the provider (the user approves), back to the callback."""
    start = client.get("/session/oidc", follow_redirects=False)
    assert start.status_code == 303, start.text
    login_cookie = start.headers["set-cookie"].lower()
    assert "httponly" in login_cookie and "secure" in login_cookie and "samesite=lax" in login_cookie
    approved = httpx.get(start.headers["location"], follow_redirects=False)
    assert approved.status_code == 302, approved.text
    back = urlsplit(approved.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_bearer_jwts_map_to_scopes_beside_api_keys(stack, views_prefix, redis_client, idp, caplog):
    caplog.set_level(logging.INFO, logger="stockstream.access")
    _, key = KeyStore(redis_client, f"{views_prefix}auth:").create("grafana", ["read"])
    with TestClient(create_app(settings(stack, views_prefix, idp)), base_url="https://testserver") as client:
        reader, admin = idp.mint(scope="stockstream:read"), idp.mint(scope="openid stockstream:admin")
        assert client.get("/symbols", headers=bearer(reader)).status_code == 200
        assert client.get("/admin/keys", headers=bearer(reader)).status_code == 403
        assert client.get("/admin/keys", headers=bearer(admin)).status_code == 200
        assert client.get("/symbols", headers=bearer(idp.mint(scope="openid"))).status_code == 403  # no scope
        for refused in (idp.mint(lifetime_s=-600), idp.mint(aud="another-api"), idp.mint(iss="https://evil.example"),
                        idp.mint(key=type(idp.key).generate_key(2048, parameters={"kid": idp.key.kid}))):
            answer = client.get("/symbols", headers=bearer(refused))
            assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/symbols", headers=bearer(key)).status_code == 200  # keys still work
        # A provider's token is not a key: the key sign-in refuses it.
        pasted = client.post("/session", json={"key": reader})
        assert pasted.status_code in (401, 422) and "set-cookie" not in pasted.headers
    lines = [record.getMessage() for record in caplog.records if record.name == "stockstream.access"]
    assert any("key=oidc-" in line and "via=oidc" in line and "status=200" in line for line in lines)
    assert reader not in caplog.text and "alice" not in caplog.text


def test_the_dashboard_signs_in_through_the_provider_with_the_same_session_cookie(stack, views_prefix, idp):
    with TestClient(create_app(settings(stack, views_prefix, idp)), base_url="https://testserver") as client:
        assert client.get("/session").json()["oidc_login"] is True  # the page then shows its link:
        assert 'href="/session/oidc"' in client.get("/").text
        assert client.get("/symbols").status_code == 401
        done = sign_in(client)
        assert done.status_code == 303 and done.headers["location"] == "/", done.text
        cookies = done.headers.get_list("set-cookie")
        session = next(cookie for cookie in cookies if cookie.startswith("ss_session="))
        attributes = {part.strip().lower() for part in session.split(";")}
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= attributes
        assert any(cookie.startswith("ss_oidc=") and "max-age=0" in cookie.lower() for cookie in cookies)
        state = client.get("/session").json()
        assert state["signed_in"] is True and state["scopes"] == ["read"] and state["key_id"].startswith("oidc-")
        assert client.get("/symbols").status_code == 200  # by the cookie alone
        assert client.get("/admin/keys").status_code == 403
        token_request = idp.token_requests[-1]
        assert token_request["grant_type"] == "authorization_code" and token_request["code_verifier"]
        client.delete("/session")
        assert client.get("/symbols").status_code == 401


def test_a_forged_state_a_replayed_code_or_an_identity_without_scope_gets_no_session(stack, views_prefix, idp):
    app = create_app(settings(stack, views_prefix, idp))
    with TestClient(app, base_url="https://testserver") as client:
        start = client.get("/session/oidc", follow_redirects=False)
        approved = httpx.get(start.headers["location"], follow_redirects=False)
        query = parse_qs(urlsplit(approved.headers["location"]).query)
        code, state = query["code"][0], query["state"][0]
        # Another browser (no login cookie) cannot finish this sign-in: state is bound to the starter's cookie.
        with TestClient(app, base_url="https://testserver") as other:
            assert other.get(f"/session/oidc/callback?code={code}&state={state}").status_code == 400
        assert client.get(f"/session/oidc/callback?code={code}&state=forged").status_code == 400
        assert "ss_session" not in client.cookies
        first = client.get(f"/session/oidc/callback?code={code}&state={state}", follow_redirects=False)
        assert first.status_code == 303
        client.cookies.clear()
        replay_start = client.get("/session/oidc", follow_redirects=False)
        replayed_state = parse_qs(urlsplit(replay_start.headers["location"]).query)["state"][0]
        replayed = client.get(f"/session/oidc/callback?code={code}&state={replayed_state}", follow_redirects=False)
        assert replayed.status_code == 401 and "ss_session" not in client.cookies  # a code works once
        idp.user = {"sub": "mallory@example.com", "scope": "openid profile"}
        refused = sign_in(client)
        assert refused.status_code == 403 and "ss_session" not in client.cookies


def test_oidc_is_off_unless_configured_and_an_unreachable_provider_is_503(stack, views_prefix, idp):
    with TestClient(create_app(settings(stack, views_prefix, None)), base_url="https://testserver") as client:
        assert client.get("/symbols", headers=bearer(idp.mint())).status_code == 401
        assert client.get("/session").json()["oidc_login"] is False
        assert client.get("/session/oidc", follow_redirects=False).status_code == 404
    unreachable = settings(stack, views_prefix, idp, oidc_issuer="http://127.0.0.1:9")
    with TestClient(create_app(unreachable), base_url="https://testserver") as client:
        assert client.get("/symbols", headers=bearer(idp.mint())).status_code == 503
        assert client.get("/session/oidc", follow_redirects=False).status_code == 503
        assert client.get("/ready").status_code == 200  # the provider is not needed to serve
