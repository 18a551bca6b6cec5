"""Who may read: API keys, scopes, the dashboard session, limits and the access log, on the real Redis.

In-process (TestClient over ``https://testserver`` so the Secure cookie is kept) for the routes;
``stockstream serve`` processes for what needs a real socket: refusing to start open beyond
loopback, ``/live`` authentication, the per-client cap, and a client that stops reading being
dropped by the send timeout so that its slot is reused.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from stockstream.api.app import create_app
from stockstream.api.keys import KeyStore
from stockstream.api.settings import ApiSettings
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.integration
STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))


class Keys:
    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self.read_id, self.read = self._make("reader", ["read"])
        self.admin_id, self.admin = self._make("operator", ["admin"])
        revoked_id, self.revoked = self._make("old", ["read"])
        store.revoke(revoked_id)

    def _make(self, name: str, scopes: list[str]) -> tuple[str, str]:
        record, token = self.store.create(name, scopes)
        return record.key_id, token


@pytest.fixture
def keys(redis_client, views_prefix) -> Keys:
    return Keys(KeyStore(redis_client, f"{views_prefix}auth:"))


def keyed_settings(stack, views_prefix, **overrides: object) -> ApiSettings:
    return ApiSettings(bootstrap_servers=stack.kafka_bootstrap, redis_url=stack.redis_url,
                       redis_key_prefix=views_prefix, api_auth="on", api_keys_prefix=f"{views_prefix}auth:",
                       **overrides)


@pytest.fixture
def app(stack, views_prefix, keys):  # type: ignore[no-untyped-def]
    return create_app(keyed_settings(stack, views_prefix))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def routes_of(app) -> list[str]:  # type: ignore[no-untyped-def]
    """Every GET path the app serves, with path parameters filled in."""
    def flat(routes):  # type: ignore[no-untyped-def]
        for route in routes:
            inner = getattr(getattr(route, "original_router", None), "routes", None)  # an included router
            yield from flat(inner) if inner is not None else [route]

    paths = {route.path.replace("{symbol}", "BTC-USD") for route in flat(app.routes)
             if "GET" in (getattr(route, "methods", None) or set())}
    return sorted(paths)


OPEN = {"/", "/robots.txt", "/ready", "/session"}


def test_every_route_refuses_without_a_valid_key_and_by_scope(stack, views_prefix, keys):
    # ~240 requests from one address: with the default limits (burst 200, then 50/s) the last ones were refused
    # with 429 whenever the loop ran faster than the refill. The limits are off here; they have their own test.
    app = create_app(keyed_settings(stack, views_prefix, rate_per_ip=0, rate_per_key=0))
    paths = routes_of(app)
    assert {"/symbols", "/live", "/docs", "/openapi.json", "/health", "/admin/keys"} <= set(paths)
    with TestClient(app, base_url="https://testserver") as client:
        for path in [*paths, "/static/app.js", "/no/such/route"]:
            expect_open = path in OPEN or path.startswith("/static/")
            for headers in ({}, bearer(keys.revoked), bearer("ssk_0123456789abcdef_" + "A" * 43),
                            bearer(keys.read + "x"), bearer(keys.read.upper()), {"Authorization": keys.read},
                            {"Authorization": f"Basic {keys.read}"}, {"Cookie": "ss_session=forged.value"}):
                if path == "/live" and expect_open:
                    continue
                answer = client.get(path, headers=headers)
                if expect_open:
                    assert answer.status_code == 200, (path, headers, answer.status_code)
                else:
                    assert answer.status_code == 401, (path, headers, answer.status_code)
                    assert answer.headers["www-authenticate"].startswith("Bearer")
                    assert "content-security-policy" in answer.headers
        for path in paths:
            if path == "/live":
                continue  # a stream: tested over a real socket below
            with_read = client.get(path, headers=bearer(keys.read))
            if path.startswith("/admin"):
                assert with_read.status_code == 403, path
            else:
                assert with_read.status_code not in (401, 403), (path, with_read.status_code)
        listing = client.get("/admin/keys", headers=bearer(keys.admin))
        assert listing.status_code == 200
        listed = {key["key_id"]: key for key in listing.json()["keys"]}
        assert listed[keys.read_id]["scopes"] == ["read"] and listed[keys.admin_id]["scopes"] == ["admin", "read"]
        assert "argon2" not in listing.text and keys.read not in listing.text
        assert client.get("/admin/keys", headers=bearer(keys.admin)).status_code == 200


def test_openapi_declares_the_bearer_scheme_and_the_gate_answers(app, keys):
    with TestClient(app, base_url="https://testserver") as client:
        schema = client.get("/openapi.json", headers=bearer(keys.read)).json()
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": "An API key from `stockstream apikey create`"}
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            if path == "/ready":
                assert "security" not in operation
                continue
            assert operation["security"] == [{"apiKey": []}], path
            assert {"401", "403", "429"} <= set(operation["responses"]), path


def test_session_cookie_sign_in_use_revoke_and_sign_out(app, keys):
    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/session").json() == {"auth": True, "signed_in": False, "key_id": None, "scopes": [],
                                                 "oidc_login": False}
        assert client.post("/session", json={"key": keys.revoked}).status_code == 401
        assert client.post("/session", content=json.dumps({"key": keys.read}),
                           headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
        assert client.post("/session", json={"key": keys.read},
                           headers={"Origin": "https://evil.example"}).status_code == 403
        answer = client.post("/session", json={"key": keys.read}, headers={"Origin": "https://testserver"})
        assert answer.status_code == 200 and answer.json()["key_id"] == keys.read_id
        cookie = answer.headers["set-cookie"]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "secure", "samesite", "path", "max-age"} <= attributes
        assert "samesite=strict" in cookie.lower()
        assert keys.read not in cookie  # the cookie holds a signed key id, never the key
        assert client.get("/symbols").status_code == 200  # by the cookie alone
        assert client.get("/session").json()["signed_in"] is True
        assert client.get("/admin/keys").status_code == 403  # a read key's session has read only
        keys.store.revoke(keys.read_id)
        assert client.get("/symbols").status_code == 401  # revoking the key ends its sessions
        signed_out = client.delete("/session")
        assert "max-age=0" in signed_out.headers["set-cookie"].lower()


def test_a_cookie_signed_by_another_secret_or_expired_is_refused(stack, views_prefix, keys):
    one = create_app(keyed_settings(stack, views_prefix, session_secret="a" * 40))
    other = create_app(keyed_settings(stack, views_prefix, session_secret="b" * 40))
    with TestClient(one, base_url="https://testserver") as first, \
            TestClient(other, base_url="https://testserver") as second:
        first.post("/session", json={"key": keys.read})
        value = first.cookies["ss_session"]
        assert first.get("/symbols").status_code == 200
        assert second.get("/symbols", headers={"Cookie": f"ss_session={value}"}).status_code == 401
        body, _, signature = value.partition(".")
        assert second.get("/symbols", headers={"Cookie": f"ss_session={body}.{signature[::-1]}"}).status_code == 401


def test_rate_limits_per_address_and_per_key(stack, views_prefix, keys):
    by_ip = create_app(keyed_settings(stack, views_prefix, rate_per_ip=0.001, rate_burst=3, rate_per_key=0))
    with TestClient(by_ip, base_url="https://testserver") as client:
        statuses = [client.get("/ready").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = client.get("/symbols", headers=bearer(keys.read))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    by_key = create_app(keyed_settings(stack, views_prefix, rate_per_ip=0, rate_burst=2, rate_per_key=0.001))
    with TestClient(by_key, base_url="https://testserver") as client:
        assert [client.get("/symbols", headers=bearer(keys.read)).status_code for _ in range(3)] == [200, 200, 429]
        assert client.get("/symbols", headers=bearer(keys.admin)).status_code == 200  # another key, own bucket


def test_request_size_limits(app, keys):
    with TestClient(app, base_url="https://testserver") as client:
        assert client.post("/session", content=b"{" + b" " * 20_000 + b"}",
                           headers={"Content-Type": "application/json"}).status_code == 413
        assert client.get("/symbols?x=" + "a" * 9000, headers=bearer(keys.read)).status_code == 414


def test_access_log_names_the_key_id_never_the_key(app, keys, caplog):
    caplog.set_level(logging.INFO, logger="stockstream.access")
    with TestClient(app, base_url="https://testserver") as client:
        client.get("/symbols", headers=bearer(keys.read))
        client.get("/symbols", headers=bearer(keys.revoked))
    lines = [record.getMessage() for record in caplog.records if record.name == "stockstream.access"]
    assert any(f"key={keys.read_id} via=bearer method=GET path=\"/symbols\" status=200" in line for line in lines)
    assert any("key=- via=- method=GET path=\"/symbols\" status=401" in line for line in lines)
    assert keys.read not in caplog.text and keys.revoked not in caplog.text


def test_readiness_depends_on_redis_only(stack, views_prefix):
    settings = ApiSettings(bootstrap_servers="127.0.0.1:1", redis_url=stack.redis_url, redis_key_prefix=views_prefix,
                           health_timeout_s=0.5)
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").json() == {"status": "ready"}
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["kafka"] is False and health.json()["redis"] is True
    down = ApiSettings(bootstrap_servers=stack.kafka_bootstrap, redis_url="redis://127.0.0.1:1/0",
                       redis_socket_timeout_s=0.5)
    with TestClient(create_app(down)) as client:
        assert client.get("/ready").status_code == 503


def test_the_service_refuses_to_start_open_beyond_loopback(stack):
    assert ApiSettings(api_host="0.0.0.0").auth_enabled  # auto: keys on beyond loopback  # noqa: S104
    assert not ApiSettings(api_host="127.0.0.1").auth_enabled and not ApiSettings(api_host="::1").auth_enabled
    for host in ("0.0.0.0", "10.1.2.3", "::", "example.org"):  # noqa: S104
        with pytest.raises(ValueError, match="loopback"):
            ApiSettings(api_host=host, api_auth="off")
    run = subprocess.run([STOCKSTREAM, "serve", "--host", "0.0.0.0", "--port", str(free_port())],  # noqa: S104
                         env={"PATH": "/usr/bin:/bin", "API_AUTH": "off", "REDIS_URL": stack.redis_url,
                              "METRICS_PORT": "0"}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "API_AUTH=off is allowed only when bound to loopback" in run.stderr


# ---- over a real socket: /live -------------------------------------------------------------------


class LiveServer:
    def __init__(self, base: str, metrics: str) -> None:
        self.base = base
        self.metrics = metrics

    def clients(self) -> float | None:
        """The ``stockstream_api_live_clients`` gauge from serve's metrics port."""
        try:
            text = httpx.get(self.metrics, timeout=2).text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith("stockstream_api_live_clients "):
                return float(line.split()[1])
        return None


@pytest.fixture
def live_server(stack, views_prefix, keys) -> Iterator[LiveServer]:
    port = free_port()
    metrics_port = free_port()
    service = ServiceProcess(["serve", "--port", str(port)], {
        "REDIS_URL": stack.redis_url, "REDIS_KEY_PREFIX": views_prefix, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "API_AUTH": "on", "API_KEYS_PREFIX": f"{views_prefix}auth:", "METRICS_PORT": str(metrics_port),
        "API_LIVE_MAX_CLIENTS": "2", "API_LIVE_MAX_PER_CLIENT": "1", "API_LIVE_SEND_TIMEOUT_SECONDS": "2",
        "API_LIVE_QUEUE_MAX": "10", "API_LIVE_PING_SECONDS": "300"})
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout_s=120, message=f"serve to start: {service.output[-1500:]}")
        yield LiveServer(base, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        service.terminate()


def live_status(base: str, token: str | None) -> int:
    """Status of a /live request, read from the response head; the connection is closed at once."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.stream("GET", f"{base}/live", headers=headers, timeout=10) as answer:
        return answer.status_code


def stalled_live_client(base: str, token: str) -> socket.socket:
    """A /live connection that never reads: a tiny receive buffer and nobody calling recv."""
    host, port = base.removeprefix("http://").split(":")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, int(port)))
    stalled.sendall(f"GET /live HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    return stalled


def test_live_needs_a_key_caps_connections_and_drops_a_client_that_stops_reading(
        live_server, keys, redis_client, views_prefix):
    server = live_server.base
    assert live_status(server, None) == 401
    assert live_status(server, keys.revoked) == 401
    assert live_status(server, keys.read) == 200
    wait_until(lambda: live_server.clients() == 0, timeout_s=120, message="the closed client to be unsubscribed")

    stalled = stalled_live_client(server, keys.read)
    try:
        wait_until(lambda: live_server.clients() == 1, timeout_s=120, message="the stalled client to subscribe")
        # The reader's one connection is taken: a second one is refused (per-client cap).
        assert live_status(server, keys.read) == 429
        # Fill the pipe: big updates until the server's send blocks; the send timeout (2 s) then ends the
        # stalled response and frees its slot, so the same key connects again.
        stop = threading.Event()
        padding = "x" * 60_000

        def publish() -> None:
            update = json.dumps({"v": 1, "updates": [{"type": "tick", "data": {"symbol": "BTC-USD", "pad": padding}}]})
            while not stop.is_set():
                for _ in range(20):
                    redis_client.publish(f"{views_prefix}live:updates", update)
                stop.wait(0.05)  # pacing the publisher, not waiting for a condition

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        try:
            wait_until(lambda: live_server.clients() == 0, timeout_s=90,
                       message="the stalled /live client to be dropped by the send timeout")
        finally:
            stop.set()
            publisher.join(10)
        assert live_status(server, keys.read) == 200  # its slot is free again
    finally:
        stalled.close()


def test_apikey_command_creates_lists_and_revokes(stack, views_prefix, redis_client):
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": stack.redis_url, "API_KEYS_PREFIX": f"{views_prefix}auth:"}

    def apikey(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([STOCKSTREAM, "apikey", *args], env=env, capture_output=True, text=True, timeout=120)

    created = apikey("create", "--name", "grafana probe", "--scope", "read", "--json")
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    assert made["scopes"] == ["read"] and made["token"].startswith(f"ssk_{made['key_id']}_")
    stored = redis_client.hgetall(f"{views_prefix}auth:key:{made['key_id']}")
    assert stored[b"hash"].startswith(b"$argon2id$") and made["token"].encode() not in b"".join(stored.values())
    listed = apikey("list", "--json")
    assert listed.returncode == 0 and [key["key_id"] for key in json.loads(listed.stdout)] == [made["key_id"]]
    assert made["token"] not in listed.stdout and "argon2" not in listed.stdout
    assert "grafana probe" in apikey("list").stdout
    revoked = apikey("revoke", made["key_id"])
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert json.loads(apikey("list", "--json").stdout)[0]["revoked_at"] is not None
    assert apikey("revoke", "0123456789abcdef").returncode == 1
    assert apikey("revoke", "not-an-id").returncode == 2
    assert apikey("create", "--name", "x", "--scope", "write").returncode == 2
    assert apikey("create", "--name", "<b>").returncode == 2
    with TestClient(create_app(keyed_settings(stack, views_prefix)), base_url="https://testserver") as client:
        assert client.get("/symbols", headers=bearer(made["token"])).status_code == 401
