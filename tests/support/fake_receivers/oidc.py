"""A local OpenID Connect provider that speaks the protocol, for the API's OIDC tests.

``with IdentityProvider() as provider:`` serves on ``http://127.0.0.1:<port>`` (its issuer):

- ``/.well-known/openid-configuration`` — the discovery document;
- ``/jwks`` — its public signing keys (RSA, ``kid`` each; :meth:`rotate` replaces the key);
- ``/authorize`` — the authorization endpoint: it checks the request (code flow, client id, redirect
  URI, PKCE S256) and, like a user who approves at once, redirects to the redirect URI with a one-time
  ``code`` and the ``state``;
- ``/token`` — the token endpoint: client authentication (HTTP Basic), the code (once), the same
  redirect URI, the PKCE verifier; answers an ID token (audience = the client, the request's
  ``nonce``) and an access token (audience = :attr:`api_audience`), both RS256.

:meth:`mint` signs any claims (expired, foreign audience, …) with the provider's key, or with
another, to build the tokens the tests need. Nothing here imports stockstream: it is the outside world.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str
    used: bool = False


@dataclass
class IdentityProvider:
    client_id: str = "stockstream-dashboard"
    client_secret: str = "fake-oidc-client-secret-5c1f"  # noqa: S105 - a test's fake
    api_audience: str = "stockstream-api"
    #: Claims of the user who signs in (``sub`` and the scopes claim); the tests change them.
    user: dict[str, Any] = field(default_factory=lambda: {"sub": "alice@example.com", "scope": "stockstream:read"})
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})
        self.jwks_requests = 0
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                provider._get(self)

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                provider._post(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="identity-provider", daemon=True)

    def __enter__(self) -> IdentityProvider:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def rotate(self) -> None:
        """A new signing key with a new ``kid``; the JWKS serves only the new one from now on."""
        self.key = RSAKey.generate_key(2048, parameters={"kid": f"key-{secrets.token_hex(4)}", "use": "sig",
                                                         "alg": "RS256"})

    def mint(self, claims: dict[str, Any] | None = None, *, key: RSAKey | None = None, alg: str = "RS256",
             lifetime_s: int = 300, **overrides: Any) -> str:
        """A token signed by this provider (or by ``key``): the user's claims for the API, then ``overrides``."""
        now = int(time.time())
        body = {"iss": self.issuer, "aud": self.api_audience, "iat": now, "exp": now + lifetime_s,
                **(claims if claims is not None else self.user), **overrides}
        signer = key or self.key
        return jwt.encode({"alg": alg, "kid": signer.kid}, body, signer, algorithms=[alg])

    # ---- HTTP
    def _reply(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
               headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        if parts.path == "/.well-known/openid-configuration":
            self._reply(handler, 200, {
                "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"]})
        elif parts.path == "/jwks":
            self.jwks_requests += 1
            self._reply(handler, 200, {"keys": [self.key.as_dict(private=False)]})
        elif parts.path == "/authorize":
            query = {name: values[0] for name, values in parse_qs(parts.query).items()}
            problem = self._check_authorization(query)
            if problem:
                self._reply(handler, 400, {"error": "invalid_request", "error_description": problem})
                return
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._grants[code] = Grant(query["client_id"], query["redirect_uri"], query.get("nonce"),
                                           query["code_challenge"])
            location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
            self._reply(handler, 302, {}, {"Location": location})
        else:
            self._reply(handler, 404, {"error": "not_found"})

    def _check_authorization(self, query: dict[str, str]) -> str | None:
        if query.get("response_type") != "code":
            return "response_type must be code"
        if query.get("client_id") != self.client_id:
            return "unknown client"
        if "openid" not in query.get("scope", "").split():
            return "scope must include openid"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE S256 required"
        if not query.get("state") or not query.get("redirect_uri"):
            return "state and redirect_uri required"
        return None

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        if urlsplit(handler.path).path != "/token":
            self._reply(handler, 404, {"error": "not_found"})
            return
        length = int(handler.headers.get("Content-Length", "0"))
        form = {name: values[0] for name, values in parse_qs(handler.rfile.read(length).decode()).items()}
        self.token_requests.append(form)
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if handler.headers.get("Authorization") != f"Basic {expected}":
            self._reply(handler, 401, {"error": "invalid_client"})
            return
        with self._lock:
            grant = self._grants.get(form.get("code", ""))
            fresh = grant is not None and not grant.used
            if grant is not None:
                grant.used = True
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if (not fresh or grant is None or form.get("grant_type") != "authorization_code"
                or form.get("redirect_uri") != grant.redirect_uri or challenge != grant.challenge):
            self._reply(handler, 400, {"error": "invalid_grant"})
            return
        nonce = {"nonce": grant.nonce} if grant.nonce else {}
        self._reply(handler, 200, {
            "token_type": "Bearer", "expires_in": 300,
            "access_token": self.mint(),
            "id_token": self.mint(aud=self.client_id, **nonce),
        })
