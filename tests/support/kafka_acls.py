"""A test's own Kafka ACLs on a broker other tests share: granted for the test, then removed, never more.

A namespace's plan (``grants(Deployment.default(registry))``) also holds bindings that are not the
namespace's: the consumer-group prefixes every deployment shares (``spark-kafka-``, ``views-rebuild-`` …)
and the notifier's default group, which ``stockstream stack up`` already granted for the default
deployment. Removing the whole plan at the end would take those from under a test running beside this
one (``make test`` runs on several workers) and from ``make run``. :func:`own_acls` removes only the
bindings the broker did not hold before the test granted them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from stockstream.kafka_access.admin import bindings, create_acls, delete_bindings
from stockstream.kafka_access.plan import Grant

_EVERY_ACL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                              AclPermissionType.ANY)


@contextmanager
def own_acls(admin: AdminClient, grants: Iterable[Grant], timeout_s: float = 30.0) -> Iterator[None]:
    """Grant ``grants`` for the ``with`` block; afterwards delete the ones that were not there before."""
    wanted = list(grants)
    held = set(admin.describe_acls(_EVERY_ACL, request_timeout=timeout_s).result())
    added = [binding for binding in bindings(wanted) if binding not in held]
    create_acls(admin, wanted, timeout_s)
    try:
        yield
    finally:
        delete_bindings(admin, added, timeout_s)
