"""API keys: the token format, the argon2 hash, and their store in Redis.

A key is ``ssk_<id>_<secret>``: ``id`` is 16 hex characters, public (it names the key in
``stockstream apikey list``, in access log lines and in metrics), ``secret`` is 32 random bytes
(URL-safe base64). Only the argon2id hash of the whole token is stored, never the token.

Layout (``{a}`` = ``API_KEYS_PREFIX``, default ``ssauth:`` — deliberately *not* under the views
prefix, so the materializer's Redis user, allowed only ``~ss:*``, can never write a key):

| key | type | content |
|---|---|---|
| ``{a}keys`` | set | every key id ever created (revoked ones included, for the audit) |
| ``{a}key:{id}`` | hash | ``hash`` (argon2id), ``name``, ``scopes`` (comma list), ``created_at``, ``revoked_at`` (once revoked) |

Writers: only ``stockstream apikey create|revoke`` (run by an operator with a Redis user that may
write ``{a}*``). Readers: ``stockstream serve`` (read-only Redis user) and ``apikey list``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

SCOPES = ("read", "admin")
TOKEN_PATTERN = re.compile(r"^ssk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
KEY_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9 _.@:-]{1,64}$")
# argon2-cffi's defaults (RFC 9106 low-memory profile: argon2id, t=3, m=64 MiB, p=4).
HASHER = PasswordHasher()


class ApiKeyError(ValueError):
    """An invalid key operation (bad id, name or scope); the message is for the operator."""


class UnknownKeyError(ApiKeyError):
    """No key has this id."""


@dataclass(frozen=True)
class KeyRecord:
    """One stored key, without its secret."""

    key_id: str
    name: str
    scopes: frozenset[str]
    created_at: str
    revoked_at: str | None
    password_hash: str

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, object]:
        """What ``apikey list --json`` and ``GET /admin/keys`` show (no hash)."""
        return {"key_id": self.key_id, "name": self.name, "scopes": sorted(self.scopes),
                "created_at": self.created_at, "revoked_at": self.revoked_at}


def parse_token(token: str) -> str | None:
    """The key id of a well-formed token, ``None`` for anything else (never raises)."""
    match = TOKEN_PATTERN.fullmatch(token)
    return match.group(1) if match else None


def normalize_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Validated scopes; ``admin`` implies ``read``."""
    chosen = frozenset(scope.strip() for scope in scopes if scope.strip())
    unknown = chosen - set(SCOPES)
    if unknown or not chosen:
        raise ApiKeyError(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(sorted(chosen)) or 'none'})")
    return chosen | {"read"} if "admin" in chosen else chosen


class KeyStore:
    """Create, list, revoke and look up API keys in Redis. Who calls: the CLI (writes) and the API (reads)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, key_id: str) -> str:
        if not KEY_ID_PATTERN.fullmatch(key_id):
            raise ApiKeyError(f"not a key id: {key_id!r}")
        return f"{self.prefix}key:{key_id}"

    def create(self, name: str, scopes: Iterable[str], *, now: datetime | None = None) -> tuple[KeyRecord, str]:
        """Store a new key and return it with its token (shown once; only its hash is kept)."""
        if not NAME_PATTERN.fullmatch(name):
            raise ApiKeyError("a key name is 1-64 characters of letters, digits, space and _ . @ : -")
        chosen = normalize_scopes(scopes)
        key_id = secrets.token_hex(8)
        token = f"ssk_{key_id}_{secrets.token_urlsafe(32)}"
        created = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
        record = KeyRecord(key_id, name, chosen, created, None, HASHER.hash(token))
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(key_id), mapping={"hash": record.password_hash, "name": name,
                                                  "scopes": ",".join(sorted(chosen)), "created_at": created})
            pipe.sadd(f"{self.prefix}keys", key_id)
            pipe.execute()
        return record, token

    def get(self, key_id: str) -> KeyRecord | None:
        """The stored record of ``key_id``, ``None`` when there is none (or it is malformed)."""
        fields = self.client.hgetall(self._key(key_id))
        if not fields:
            return None
        text = {name.decode(): value.decode() for name, value in fields.items()}
        if "hash" not in text or "scopes" not in text:
            return None
        return KeyRecord(key_id, text.get("name", ""), frozenset(text["scopes"].split(",")),
                         text.get("created_at", ""), text.get("revoked_at"), text["hash"])

    def list(self) -> list[KeyRecord]:
        ids = sorted(member.decode() for member in self.client.smembers(f"{self.prefix}keys"))
        records = [self.get(key_id) for key_id in ids if KEY_ID_PATTERN.fullmatch(key_id)]
        return sorted((record for record in records if record is not None), key=lambda r: r.created_at)

    def revoke(self, key_id: str, *, now: datetime | None = None) -> KeyRecord:
        """Mark a key revoked (it stops working on the API's next request). Unknown id: :class:`ApiKeyError`."""
        record = self.get(key_id)
        if record is None:
            raise UnknownKeyError(f"no key with id {key_id}")
        if record.revoked_at is None:
            revoked = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
            self.client.hset(self._key(key_id), "revoked_at", revoked)
            record = self.get(key_id) or record
        return record


def verify(record: KeyRecord, token: str) -> bool:
    """Whether ``token`` matches the record's argon2 hash (constant-time inside argon2)."""
    try:
        return HASHER.verify(record.password_hash, token)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
