"""A free port on loopback for a service a test starts (and may restart on the same port).

A port from ``bind(0)`` is an ephemeral one: by the time a service (re)starts and binds it, any
outgoing connection on the machine may hold it — a soak's materializer crash-looped on "address
already in use" that way, and ``make test`` now runs several workers side by side, each opening
connections. Ports below the kernel's ephemeral range (32768+) are never handed out implicitly, so
:func:`free_port` picks one of those at random and checks that it can be bound now.
"""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path


def free_port() -> int:
    """A port free now and outside the kernel's ephemeral range."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()  # noqa: S311 - spreading ports, not security
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")
