"""A free port on loopback for a service a test starts (and may restart on the same port).

A port from ``bind(0)`` is an ephemeral one: by the time a service (re)starts and binds it, any
outgoing connection on the machine may hold it — a soak's materializer crash-looped on "address
already in use" that way, and ``make test`` now runs several workers side by side, each opening
connections. Ports below the kernel's ephemeral range (32768+) are never handed out implicitly, so
:func:`free_port` picks one of those at random and checks that it can be bound now.

A port is chosen well before it is bound (a private stack picks eight, then starts its services), so
two picks must never meet: a process never hands out the same port twice, and each pytest-xdist
worker picks from its own slice of the range (a Kafka of a private stack once failed to start because
one of its listener ports was taken, "Address already in use", in a three-worker run).
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
from pathlib import Path

_SPAN = 12_000  # ports below the ephemeral range that tests may use
_SLOTS = 8  # slot 0: any process outside pytest-xdist's workers; slots 1-7: workers gw0-gw6 (then round again)
_given: set[int] = set()


def _range() -> range:
    """This process's ports: below the ephemeral range, in its slot (its xdist worker's, else slot 0)."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    start = max(1024, low - _SPAN)
    size = (low - start) // _SLOTS
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    slot = 1 + int(worker[2:]) % (_SLOTS - 1) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return range(start + slot * size, start + (slot + 1) * size)


def free_port() -> int:
    """A port free now, outside the kernel's ephemeral range, never handed out before by this process."""
    ports = _range()
    rng = random.Random()  # noqa: S311 - spreading ports, not security
    for _ in range(200):
        port = rng.randrange(ports.start, ports.stop)
        if port in _given:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1} (below the ephemeral range)")
