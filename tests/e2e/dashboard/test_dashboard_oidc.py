"""Dashboard sign-in through an identity provider, in a real browser (Debian's Chromium via Playwright).

``stockstream serve`` (keys on, OIDC configured) and the local OpenID provider of
tests/support/fake_receivers/oidc.py: the page offers "Sign in with your identity provider", the
browser follows the redirects (our server → the provider, which approves at once → our callback →
``/``) and ends signed in with the same HttpOnly, Secure, SameSite=Strict session cookie a key gives;
the page then reads the views, and signing out ends it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest
import redis
from playwright.sync_api import expect, sync_playwright

from tests.e2e.dashboard.test_dashboard import CHROMIUM
from tests.support.fake_receivers.oidc import IdentityProvider
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def served(stack, namespace) -> Iterator[tuple[str, IdentityProvider]]:
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is missing: apt-get install -y chromium (ops/setup/system-deps.sh does it)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with IdentityProvider() as idp:
        server = ServiceProcess(["serve", "--port", str(port)], {
            "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "REDIS_URL": stack.redis_url,
            "STOCKSTREAM_TOPIC_PREFIX": namespace, "REDIS_KEY_PREFIX": namespace, "METRICS_PORT": "0",
            "API_AUTH": "on", "API_KEYS_PREFIX": f"{namespace}auth:",
            "API_OIDC_ISSUER": idp.issuer, "API_OIDC_CLIENT_ID": idp.client_id,
            "API_OIDC_CLIENT_SECRET": idp.client_secret, "API_OIDC_REDIRECT_URL": f"{base}/session/oidc/callback"})
        try:
            def up() -> bool:
                try:
                    return httpx.get(f"{base}/ready", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(up, timeout_s=120, message=f"serve; log:\n{server.output[-1500:]}")
            yield base, idp
        finally:
            server.terminate()
            client = redis.Redis.from_url(stack.redis_url)
            keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


def test_the_dashboard_signs_in_through_the_identity_provider(served):
    base, idp = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            tab = browser.new_context().new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.goto(base + "/")
            expect(tab.locator("#signin")).to_be_visible(timeout=60_000)
            link = tab.locator("#signin-oidc a")
            expect(link).to_be_visible()
            link.click()
            tab.wait_for_url(base + "/", timeout=60_000)
            expect(tab.locator("#signin")).to_be_hidden(timeout=60_000)
            cookies = {cookie["name"]: cookie for cookie in tab.context.cookies()}
            session = cookies["ss_session"]
            assert session["httpOnly"] is True and session["secure"] is True and session["sameSite"] == "Strict"
            assert "ss_oidc" not in cookies  # the sign-in's own cookie is cleared at the callback
            state = tab.evaluate("fetch('/session').then(r => r.json())")
            assert state["signed_in"] is True and state["key_id"].startswith("oidc-") and state["scopes"] == ["read"]
            assert tab.evaluate("fetch('/symbols').then(r => r.status)") == 200
            assert tab.evaluate("document.cookie") == ""
            assert idp.token_requests and idp.token_requests[-1]["code_verifier"]
            assert errors == [], errors
        finally:
            browser.close()
