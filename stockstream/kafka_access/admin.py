"""Make a cluster match the plan: SCRAM users (from credential files) and ALLOW ACLs (from grants).

Called by ``stockstream stack up`` (the local stack), ``stockstream kafka-access apply`` (any
cluster, as a super user) and the tests (each namespace's grants).
Everything is idempotent: a user's credential is upserted, an ACL that exists is left as it is.
Passwords are read from files and go only into the SCRAM upsert request; nothing here logs them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from stockstream.kafka_access.plan import Grant

SCRAM_ITERATIONS = 8192
RESOURCE_TYPES = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
                  "transactional_id": ResourceType.TRANSACTIONAL_ID}
PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}


class KafkaAccessError(RuntimeError):
    """A user or an ACL could not be created; the message names it and Kafka's reason."""


def read_password(folder: Path, principal: str) -> str:
    """The password of ``principal`` in a credentials folder (one file per principal, as a Secret mounts it)."""
    try:
        password = (folder / principal).read_text().strip()
    except OSError as error:
        raise KafkaAccessError(f"no password for Kafka user {principal!r} in {folder} ({error.strerror})") from None
    if not password:
        raise KafkaAccessError(f"the password file of Kafka user {principal!r} in {folder} is empty")
    return password


def write_missing_passwords(folder: Path, principals: Iterable[str]) -> list[str]:
    """Draw a random password for each principal without one (files 0600 in a 0700 folder); returns them."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    drawn = []
    for principal in principals:
        path = folder / principal
        if path.exists():
            continue
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        drawn.append(principal)
    return drawn


def upsert_scram_users(admin: AdminClient, passwords: Mapping[str, str], timeout_s: float = 30.0) -> None:
    """Create or update a SCRAM-SHA-512 credential per user (the broker stores only salted hashes)."""
    if not passwords:
        return
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [UserScramCredentialUpsertion(user, info, password.encode()) for user, password in passwords.items()]
    for user, future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout_s).items():
        try:
            future.result()
        except KafkaException as error:
            raise KafkaAccessError(f"cannot set the SCRAM credential of Kafka user {user!r}: {error}") from None


def bindings(grants: Iterable[Grant]) -> list[AclBinding]:
    """One ALLOW binding per (grant, operation), from any host."""
    return [
        AclBinding(RESOURCE_TYPES[grant.resource], grant.name, PATTERNS[grant.pattern], f"User:{grant.principal}",
                   "*", AclOperation[operation], AclPermissionType.ALLOW)
        for grant in grants for operation in grant.operations
    ]


def create_acls(admin: AdminClient, grants: Iterable[Grant], timeout_s: float = 30.0) -> int:
    """Create the ACLs of ``grants`` (existing ones are a no-op for the broker); returns how many were sent."""
    wanted = bindings(grants)
    if not wanted:
        return 0
    for binding, future in admin.create_acls(wanted, request_timeout=timeout_s).items():
        try:
            future.result()
        except KafkaException as error:
            raise KafkaAccessError(f"cannot create the ACL {binding}: {error}") from None
    return len(wanted)


def delete_acls(admin: AdminClient, grants: Iterable[Grant], timeout_s: float = 30.0) -> None:
    """Remove exactly the ACLs of ``grants`` (a test namespace's, when it ends)."""
    delete_bindings(admin, bindings(grants), timeout_s)


def delete_bindings(admin: AdminClient, found: Iterable[AclBinding], timeout_s: float = 30.0) -> None:
    """Remove exactly these ACL bindings."""
    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                b.permission_type) for b in found]
    if not filters:
        return
    for binding, future in admin.delete_acls(filters, request_timeout=timeout_s).items():
        try:
            future.result()
        except KafkaException as error:
            raise KafkaAccessError(f"cannot delete the ACL {binding}: {error}") from None

