"""Who is asking: API keys (``Authorization: Bearer``) and the dashboard's signed session cookie.

:class:`Authenticator` turns a request's credentials into a :class:`Principal` (key id + scopes)
or ``None``. Every check reads the key's record from Redis, so a revoked key stops working on
the next request; the argon2 verification (tens of milliseconds by design) runs once per key and
token, then a SHA-256 of the token is remembered (bounded LRU) so later requests cost one Redis
read. A session cookie is an HMAC-signed ``{key id, expiry}``; it carries no secret and is
honoured only while its key is active. With OIDC (:mod:`stockstream.api.oidc`) a bearer token that
is not a key may be the identity provider's JWT, and a session opened through the provider carries
its identity's id and scopes instead of a key id (honoured until it expires, while OIDC is
configured). Who calls: :mod:`stockstream.api.gate` for every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stockstream.api.keys import KeyRecord, KeyStore, parse_token, verify
from stockstream.api.oidc import OidcProvider

SESSION_COOKIE = "ss_session"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key id (safe to log) and its scopes; ``via`` is bearer|session|open."""

    key_id: str
    scopes: frozenset[str]
    via: str

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


OPEN_PRINCIPAL = Principal("-", frozenset({"read", "admin"}), "open")


@dataclass(frozen=True)
class Session:
    """What a valid session cookie says: a key id, or an identity's id with its scopes (OIDC sign-in)."""

    key_id: str
    scopes: frozenset[str] | None = None


class SessionCodec:
    """Signs and checks cookie values: ``base64url(json).base64url(hmac_sha256)``, each with a kind and an expiry."""

    def __init__(self, secret: bytes, lifetime_s: float, now: Callable[[], float] = time.time) -> None:
        self.secret = secret or secrets.token_bytes(32)
        self.lifetime_s = lifetime_s
        self.now = now

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self.secret, body, hashlib.sha256).digest()

    def seal(self, kind: str, claims: dict[str, Any], lifetime_s: float) -> str:
        body = json.dumps({**claims, "t": kind, "e": int(self.now() + lifetime_s), "n": secrets.token_hex(8)},
                          separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def unseal(self, kind: str, value: str) -> dict[str, Any] | None:
        """The claims of a valid, unexpired value of ``kind``; ``None`` otherwise (never raises)."""
        body_text, _, signature_text = value.partition(".")
        try:
            body = _unb64(body_text)
            signature = _unb64(signature_text)
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            claims = json.loads(body)
        except ValueError:
            return None
        if not isinstance(claims, dict) or claims.get("t", "session") != kind:  # older cookies carry no kind
            return None
        expires = claims.get("e")
        if not isinstance(expires, int) or expires <= self.now():
            return None
        return claims

    def issue(self, key_id: str, scopes: frozenset[str] | None = None) -> str:
        claims: dict[str, Any] = {"k": key_id}
        if scopes is not None:
            claims["s"] = sorted(scopes)
        return self.seal("session", claims, self.lifetime_s)

    def session_of(self, value: str) -> Session | None:
        claims = self.unseal("session", value)
        if claims is None or not isinstance(claims.get("k"), str):
            return None
        scopes = claims.get("s")
        if scopes is None:
            return Session(claims["k"])
        if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
            return None
        return Session(claims["k"], frozenset(scopes))

    def key_id_of(self, value: str) -> str | None:
        """The key id of a valid, unexpired key session cookie; ``None`` otherwise (never raises)."""
        session = self.session_of(value)
        return session.key_id if session is not None and session.scopes is None else None


class Authenticator:
    """Credentials → :class:`Principal`. Redis errors propagate (the gate answers 503)."""

    def __init__(self, store: KeyStore, sessions: SessionCodec, cache_size: int = 10_000,
                 oidc: OidcProvider | None = None) -> None:
        self.store = store
        self.sessions = sessions
        self.oidc = oidc
        self.cache_size = cache_size
        self._verified: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def from_bearer(self, token: str) -> Principal | None:
        key_id = parse_token(token)
        if key_id is None:
            identity = self.oidc.bearer_identity(token) if self.oidc is not None else None
            return None if identity is None else Principal(identity.subject_id, identity.scopes, "oidc")
        record = self.store.get(key_id)
        if record is None or not record.active or not self._matches(record, token):
            return None
        return Principal(key_id, record.scopes, "bearer")

    def from_session(self, cookie: str) -> Principal | None:
        session = self.sessions.session_of(cookie)
        if session is None:
            return None
        if session.scopes is not None:  # opened through the identity provider: valid while OIDC is configured
            return Principal(session.key_id, session.scopes, "session") if self.oidc is not None else None
        key_id = session.key_id
        if parse_token(f"ssk_{key_id}_{'A' * 43}") is None:
            return None
        record = self.store.get(key_id)
        if record is None or not record.active:
            return None
        return Principal(key_id, record.scopes, "session")

    def _matches(self, record: KeyRecord, token: str) -> bool:
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            cached = self._verified.get(record.key_id)
        if cached is not None and cached[0] == record.password_hash and hmac.compare_digest(cached[1], digest):
            return True
        if not verify(record, token):
            return False
        with self._lock:
            self._verified[record.key_id] = (record.password_hash, digest)
            self._verified.move_to_end(record.key_id)
            while len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
        return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or len(text) > 512:
        raise ValueError("empty or oversized")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as error:
        raise ValueError(str(error)) from None
