"""Where the notifier may connect: the guard that keeps it from being a proxy into our network.

Webhook, Slack, Discord and Telegram URLs come from configuration and secrets that an
attacker may influence (a pasted "webhook URL"). Every HTTP connection of a channel goes
through :class:`GuardedConnector`, which resolves the host
**once**, refuses the connection if any resolved address is loopback, private, link-local
(169.254.169.254, the cloud metadata service, is link-local), shared, reserved,
multicast or unspecified — IPv4-mapped, 6to4 and NAT64 IPv6 forms included — and then
connects to one of exactly those checked addresses. There is no second resolution
between the check and the connection, so a DNS answer that changes (rebinding) cannot
slip a private address in. TLS still verifies the certificate against the URL's host
name (``server_hostname``), not the address. A channel that really
targets a private network says ``allow_private_network = true``.

A refused address raises :class:`~processors.notify.retry.PermanentDeliveryError`
with reason ``blocked_address`` (the signal is dead-lettered with that reason). The
resolver is injectable (``resolve``): tests map a name to 127.0.0.1 without touching
/etc/hosts. Environment proxies are never used: a proxy would resolve the host itself,
out of this guard's sight.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable

from processors.notify.retry import PermanentDeliveryError

Resolver = Callable[[str, int], list[str]]
Connect = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver), in its order, without repeats."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OSError(f"cannot resolve {host}: {error.strerror}") from None
    seen: dict[str, None] = {}
    for _family, _type, _proto, _name, sockaddr in answers:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


def _embedded(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(text: str, allow_private_network: bool) -> str | None:
    """Why connecting to address ``text`` is refused, or ``None`` when it is allowed."""
    try:
        address = _embedded(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return "not an IP address"
    if address.is_unspecified or address.is_multicast:
        return "unspecified or multicast"
    if allow_private_network:
        return None
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata)" if str(address) in ("169.254.169.254", "fe80::a9fe:a9fe") \
            else "link-local"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None


class GuardedConnector:
    """Resolve once, check every address, connect only to a checked one.

    Called by :class:`processors.notify.channels.http.HttpClient` for every new connection, on
    the lane's event loop. ``resolve`` (blocking, run on the loop's default executor unless the
    host is already an IP address) and ``connect`` (``asyncio.open_connection``'s signature) are
    injectable: tests resolve names to 127.0.0.1 and record where a connection would go.
    A refused address raises :class:`PermanentDeliveryError` (``blocked_address``); a failed
    lookup or connection raises ``OSError`` (the client reports a transient ``connection_error``).
    """

    def __init__(self, allow_private_network: bool, resolve: Resolver | None = None,
                 connect: Connect | None = None) -> None:
        self.allow_private_network = allow_private_network
        self.resolve = resolve or system_resolver
        self.connect: Connect = connect or asyncio.open_connection

    async def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses of ``host``, from one lookup; raises if any of them is refused."""
        if self.resolve is system_resolver and _is_address(host):
            addresses = [host.strip("[]")]  # an IP literal: no lookup (and no executor hop) needed
        else:
            addresses = await asyncio.get_running_loop().run_in_executor(None, self.resolve, host, port)
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        for address in addresses:
            reason = refusal(address, self.allow_private_network)
            if reason is not None:
                raise PermanentDeliveryError(
                    "blocked_address", f"{host} resolves to {address}, a {reason} address; the notifier does not "
                                       "connect there unless the channel says allow_private_network = true")
        return addresses

    async def open(self, host: str, port: int, tls: ssl.SSLContext | None
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to one of ``host``'s checked addresses; TLS verifies the certificate against ``host``."""
        error: OSError | None = None
        for address in await self.addresses(host, port):
            try:
                if tls is None:
                    return await self.connect(address, port)
                return await self.connect(address, port, ssl=tls, server_hostname=host.strip("[]"))
            except OSError as failure:
                error = failure
        assert error is not None  # noqa: S101 - addresses is not empty
        raise error


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
