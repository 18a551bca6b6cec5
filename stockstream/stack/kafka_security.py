"""The local broker's two doors: the loopback operator listener and the authenticated service listener.

Listeners (both bound to the stack's host, which must be a loopback address):

- ``PLAINTEXT`` (``STACK_KAFKA_PORT``, as before): no authentication, principal ``ANONYMOUS``, a
  super user. It is the developer's and the test harness's own door (``stockstream stack``,
  ``replay``, ``tail``, every test's admin client), reachable only from this machine; the
  controller listener (``STACK_KAFKA_CONTROLLER_PORT``) is loopback PLAINTEXT for the same reason.
- ``SASL`` (``STACK_KAFKA_SASL_PORT``): SASL_PLAINTEXT with SCRAM-SHA-512, one user per service
  (:mod:`stockstream.kafka_access.plan`) plus ``operator``; ``StandardAuthorizer`` with
  ``allow.everyone.if.no.acl.found=false``, so a principal does only what an ACL allows.

Why both, and why the plaintext one is acceptable, is in docs/security.md ("Kafka: principals and
ACLs"). Passwords are drawn once into ``<credentials folder>/<user>`` (0600, folder 0700) and kept
across restarts; they go only into SCRAM upserts (the broker stores salted hashes). None appears
on a command line or in a log; clients get a password *file* (``KAFKA_SASL_PASSWORD_FILE``).
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Protocol

from stockstream.kafka_access.plan import OPERATOR, SCRAM_PRINCIPALS, SUPER_USERS

MECHANISM = "SCRAM-SHA-512"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SASL_LISTENER = "SASL"
ANONYMOUS = "ANONYMOUS"


class StackSettings(Protocol):
    """What this module reads of :class:`stockstream.stack.services.StackSettings` (no import circle)."""

    @property
    def state_dir(self) -> Path: ...
    @property
    def kafka_credentials_dir(self) -> Path | None: ...
    @property
    def host(self) -> str: ...
    @property
    def kafka_port(self) -> int: ...
    @property
    def kafka_sasl_port(self) -> int: ...
    @property
    def kafka_controller_port(self) -> int: ...


class UnsafeListenerError(RuntimeError):
    """The stack was asked to bind its unauthenticated listeners beyond loopback."""


def credentials_dir(settings: StackSettings) -> Path:
    """The folder of the users' password files (``STACK_KAFKA_CREDENTIALS_DIR``, else under the stack)."""
    return settings.kafka_credentials_dir or settings.state_dir / "kafka" / "credentials"


def password_file(settings: StackSettings, principal: str) -> Path:
    return credentials_dir(settings) / principal


def server_properties(settings: StackSettings) -> Path:
    return settings.state_dir / "kafka" / "server.properties"


def is_secured(settings: StackSettings) -> bool:
    """Whether this stack's broker runs the SASL listener (a broker started by an older release,
    before its restart, has only the PLAINTEXT one)."""
    try:
        return f"{SASL_LISTENER}://" in server_properties(settings).read_text()
    except OSError:
        return False


def require_loopback(host: str) -> None:
    """Refuse a non-loopback stack host: its PLAINTEXT and controller listeners authenticate nobody.

    Called by ``Kafka.prepare`` before any file is written; the message says what to do instead.
    """
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError as error:
        raise UnsafeListenerError(f"STACK_HOST={host!r} does not resolve ({error})") from None
    if not addresses or not all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses):
        raise UnsafeListenerError(
            f"STACK_HOST={host!r} is not a loopback address: the local stack's Kafka PLAINTEXT and"
            " controller listeners have no authentication, so they bind loopback only. For a"
            " reachable cluster, deploy with ops/ (SASL only) instead."
        )


def listener_properties(settings: StackSettings) -> list[str]:
    """The server.properties lines for the listeners, the SCRAM mechanism and the authoriser."""
    host, port, sasl_port, cport = (settings.host, settings.kafka_port, settings.kafka_sasl_port,
                                    settings.kafka_controller_port)
    return [
        f"listeners=PLAINTEXT://{host}:{port},{SASL_LISTENER}://{host}:{sasl_port},CONTROLLER://{host}:{cport}",
        f"advertised.listeners=PLAINTEXT://{host}:{port},{SASL_LISTENER}://{host}:{sasl_port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,{SASL_LISTENER}:SASL_PLAINTEXT",
        f"listener.name.{SASL_LISTENER.lower()}.sasl.enabled.mechanisms={MECHANISM}",
        f"listener.name.{SASL_LISTENER.lower()}.{MECHANISM.lower()}.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        f"authorizer.class.name={AUTHORIZER}",
        # ANONYMOUS is whoever connects on a loopback PLAINTEXT listener (the broker itself included).
        "super.users=" + ";".join(f"User:{user}" for user in (*SUPER_USERS, ANONYMOUS)),
        "allow.everyone.if.no.acl.found=false",
    ]


def client_environment(settings: StackSettings, principal: str = OPERATOR) -> dict[str, str]:
    """The environment a ``stockstream`` process needs to reach this stack's SASL listener as ``principal``.

    Names a password file, never the password. Every Kafka security variable is set (empty =
    unset), so none is inherited from the caller's. Raises ``ValueError`` for an unknown user and
    ``RuntimeError`` for a broker started without the SASL listener.
    """
    if principal not in SCRAM_PRINCIPALS:
        raise ValueError(f"no Kafka user {principal!r}; known: {', '.join(SCRAM_PRINCIPALS)}")
    if not is_secured(settings):
        raise RuntimeError("this stack's broker has no SASL listener yet: restart it (`stockstream stack down kafka`"
                           " then `up`)")
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"{settings.host}:{settings.kafka_sasl_port}",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": MECHANISM,
        "KAFKA_SASL_USERNAME": principal, "KAFKA_SASL_PASSWORD": "",
        "KAFKA_SASL_PASSWORD_FILE": str(password_file(settings, principal)),
    }
