"""Optional OpenID Connect: the team's identity provider vouches for API callers and dashboard users.

Off unless ``API_OIDC_ISSUER`` is set. Two uses, each on when its settings are there:

- **bearer JWTs** (``API_OIDC_AUDIENCE``): an ``Authorization: Bearer`` token that is not an
  ``ssk_`` key is checked as a JWT signed by one of the provider's keys (its JWKS, found through the
  discovery document), issued by exactly ``API_OIDC_ISSUER``, for ``API_OIDC_AUDIENCE``, not expired;
- **dashboard sign-in** (``API_OIDC_CLIENT_ID`` + ``API_OIDC_REDIRECT_URL``): the authorization-code
  flow with PKCE (S256), ``state`` and ``nonce``; the ID token is checked the same way (audience =
  the client id, the nonce of this sign-in) and the answer is the session cookie a key sign-in sets.

Scopes come from one claim (``API_OIDC_SCOPES_CLAIM``: a space-separated string like OAuth's
``scope``, or a list like ``groups``): a value in ``API_OIDC_ADMIN_VALUES`` gives ``admin`` and
``read``, one in ``API_OIDC_READ_VALUES`` gives ``read``; no match, no access (403). Only asymmetric
signatures are accepted (never ``none`` or an HMAC keyed with a shared secret). JOSE is joserfc's.

Who calls: :class:`stockstream.api.auth.Authenticator` (bearer tokens, per request, in a worker
thread) and :mod:`stockstream.api.session` (the sign-in routes). The provider is asked lazily (a
provider outage never stops ``serve`` from starting); its answers are cached, the JWKS fetched again
when a token names a key it does not hold (at most every ``KEYS_REFRESH_MIN_S``). A provider that
cannot be reached raises :class:`OidcUnavailableError` (the gate answers 503); a token that fails a
check is simply not a credential (401).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

#: Asymmetric signatures only: with ``HS*`` anyone holding the shared secret could mint tokens.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
MAX_TOKEN_BYTES = 16_384
KEYS_TTL_S = 3600.0
KEYS_REFRESH_MIN_S = 30.0
DISCOVERY_RETRY_S = 10.0
LEEWAY_S = 60


class OidcUnavailableError(RuntimeError):
    """The identity provider could not be reached or answered nonsense; the message says which."""


@dataclass(frozen=True)
class OidcConfig:
    """What ``API_OIDC_*`` configure (built from :class:`~stockstream.api.settings.ApiSettings`)."""

    issuer: str
    audience: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    redirect_url: str | None = None
    scopes_claim: str = "scope"
    read_values: frozenset[str] = frozenset({"stockstream:read"})
    admin_values: frozenset[str] = frozenset({"stockstream:admin"})
    request_scopes: str = "openid"

    @property
    def login_enabled(self) -> bool:
        return bool(self.client_id and self.redirect_url)


@dataclass(frozen=True)
class Identity:
    """Who the provider vouched for: a stable id safe to log (a hash of issuer and subject) and our scopes."""

    subject_id: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class LoginStart:
    """Where to send the browser, and what the callback must find again (kept in a signed cookie)."""

    url: str
    state: str
    nonce: str
    verifier: str


class OidcProvider:
    def __init__(self, config: OidcConfig, *, http: httpx.Client | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.config = config
        self.http = http or httpx.Client(timeout=5.0, follow_redirects=False, trust_env=False)
        self.now = now
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_failed_at = float("-inf")
        self._keys: KeySet | None = None
        self._keys_fetched_at = float("-inf")
        self._refreshed_at = float("-inf")

    # --- the provider's documents -------------------------------------------------------------
    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self.http.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as error:
            raise OidcUnavailableError(f"identity provider: {what} unreachable ({type(error).__name__})") from None
        if response.status_code != 200:
            raise OidcUnavailableError(f"identity provider: {what} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise OidcUnavailableError(f"identity provider: {what} is not JSON") from None
        if not isinstance(body, dict):
            raise OidcUnavailableError(f"identity provider: {what} is not a JSON object")
        return body

    def metadata(self) -> dict[str, Any]:
        """The discovery document (cached); its ``issuer`` must be exactly ``API_OIDC_ISSUER``."""
        with self._lock:
            if self._metadata is not None:
                return self._metadata
            if time.monotonic() - self._metadata_failed_at < DISCOVERY_RETRY_S:
                raise OidcUnavailableError("identity provider: discovery failed moments ago; retry shortly")
            try:
                document = self._get_json(f"{self.config.issuer.rstrip('/')}/.well-known/openid-configuration",
                                          "the discovery document")
                if document.get("issuer") != self.config.issuer:
                    raise OidcUnavailableError(f"identity provider: discovery names issuer {document.get('issuer')!r},"
                                               f" not API_OIDC_ISSUER={self.config.issuer!r}")
                if not isinstance(document.get("jwks_uri"), str):
                    raise OidcUnavailableError("identity provider: the discovery document has no jwks_uri")
            except OidcUnavailableError:
                self._metadata_failed_at = time.monotonic()
                raise
            self._metadata = document
            return document

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        """The provider's keys (cached ``KEYS_TTL_S``); ``refresh`` (a token named an unknown key) fetches them
        again, at most once every ``KEYS_REFRESH_MIN_S`` so that tokens naming made-up keys cannot make us hammer it."""
        with self._lock:
            now = time.monotonic()
            if self._keys is not None and now - self._keys_fetched_at < KEYS_TTL_S and (
                    not refresh or now - self._refreshed_at < KEYS_REFRESH_MIN_S):
                return self._keys
            if refresh:
                self._refreshed_at = now
        document = self._get_json(str(self.metadata()["jwks_uri"]), "the JWKS")
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, KeyError, TypeError, ValueError):
            raise OidcUnavailableError("identity provider: the JWKS holds no usable key") from None
        with self._lock:
            self._keys, self._keys_fetched_at = keys, time.monotonic()
        return keys

    # --- tokens ---------------------------------------------------------------------------------
    def claims(self, token: str, audience: str, nonce: str | None = None) -> dict[str, Any] | None:
        """The claims of ``token`` if it passes every check; ``None`` otherwise (never raises for a bad token)."""
        if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            return None
        try:
            try:
                decoded = jwt.decode(token, self._key_set(), algorithms=ALGORITHMS)
            except InvalidKeyIdError:  # the provider may have rotated its keys: look once more
                decoded = jwt.decode(token, self._key_set(refresh=True), algorithms=ALGORITHMS)
            options: dict[str, Any] = {
                "iss": {"essential": True, "value": self.config.issuer},
                "aud": {"essential": True, "value": audience},
                "sub": {"essential": True},
                "exp": {"essential": True},
            }
            if nonce is not None:
                options["nonce"] = {"essential": True, "value": nonce}
            jwt.JWTClaimsRegistry(now=int(self.now()), leeway=LEEWAY_S, **options).validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as error:
            log.info("identity provider token refused: %s", type(error).__name__)
            return None
        return dict(decoded.claims)

    def identity(self, claims: Mapping[str, Any]) -> Identity:
        """Claims → a stable id (never the raw subject, which may be an e-mail address) and our scopes."""
        raw = claims.get(self.config.scopes_claim)
        values = set(raw.split()) if isinstance(raw, str) else (
            {item for item in raw if isinstance(item, str)} if isinstance(raw, list) else set())
        scopes: set[str] = set()
        if values & self.config.admin_values:
            scopes |= {"admin", "read"}
        if values & self.config.read_values:
            scopes.add("read")
        digest = hashlib.sha256(f"{claims.get('iss')}\n{claims.get('sub')}".encode()).hexdigest()
        return Identity(f"oidc-{digest[:16]}", frozenset(scopes))

    def bearer_identity(self, token: str) -> Identity | None:
        """An access token → its identity (``API_OIDC_AUDIENCE`` must be set); ``None`` if it is not valid."""
        if self.config.audience is None:
            return None
        claims = self.claims(token, self.config.audience)
        return None if claims is None else self.identity(claims)

    # --- dashboard sign-in ------------------------------------------------------------------------
    def start_login(self) -> LoginStart:
        """The authorization request (code flow, PKCE S256, state, nonce)."""
        endpoint = self.metadata().get("authorization_endpoint")
        if not isinstance(endpoint, str):
            raise OidcUnavailableError("identity provider: the discovery document has no authorization_endpoint")
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        query = urlencode({
            "response_type": "code", "client_id": self.config.client_id, "redirect_uri": self.config.redirect_url,
            "scope": self.config.request_scopes, "state": state, "nonce": nonce,
            "code_challenge": _s256(verifier), "code_challenge_method": "S256",
        })
        return LoginStart(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", state, nonce, verifier)

    def finish_login(self, code: str, verifier: str, nonce: str) -> Identity | None:
        """Exchange the code at the token endpoint; the ID token's identity, or ``None`` if refused or invalid."""
        endpoint = self.metadata().get("token_endpoint")
        if not isinstance(endpoint, str) or self.config.client_id is None:
            raise OidcUnavailableError("identity provider: the discovery document has no token_endpoint")
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.config.redirect_url,
                "code_verifier": verifier, "client_id": self.config.client_id}
        try:
            if self.config.client_secret:  # a confidential client: client_secret_basic
                response = self.http.post(endpoint, data=form, headers={"accept": "application/json"},
                                          auth=(self.config.client_id, self.config.client_secret))
            else:  # a public client: PKCE alone
                response = self.http.post(endpoint, data=form, headers={"accept": "application/json"})
        except httpx.HTTPError as error:
            raise OidcUnavailableError(f"identity provider: the token endpoint unreachable ({type(error).__name__})"
                                       ) from None
        if response.status_code >= 500:
            raise OidcUnavailableError(f"identity provider: the token endpoint answered HTTP {response.status_code}")
        try:
            id_token = response.json().get("id_token") if response.status_code == 200 else None
        except (ValueError, AttributeError):
            id_token = None
        if not isinstance(id_token, str):
            log.info("identity provider refused the code (HTTP %s)", response.status_code)
            return None
        claims = self.claims(id_token, self.config.client_id, nonce=nonce)
        return None if claims is None else self.identity(claims)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
