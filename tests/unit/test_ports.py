"""The test ports: never the same one twice in a process, never one another xdist worker may pick."""

from __future__ import annotations

from pathlib import Path

from tests.support import ports


def _ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_a_process_never_gets_the_same_port_twice():
    picked = [ports.free_port() for _ in range(300)]
    assert len(set(picked)) == len(picked)
    assert all(port < _ephemeral_low() for port in picked)


def test_each_worker_picks_in_its_own_slot_below_the_ephemeral_range(monkeypatch):
    slots = {}
    for worker in ("", "gw0", "gw1", "gw2", "gw3", "gw4", "gw5", "gw6"):
        if worker:
            monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        else:
            monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
        slots[worker] = ports._range()
        assert ports.free_port() in slots[worker]
    ranges = sorted(slots.values(), key=lambda found: found.start)
    for before, after in zip(ranges, ranges[1:], strict=False):
        assert before.stop <= after.start  # disjoint
    assert ranges[-1].stop <= _ephemeral_low()
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")  # more workers than slots: round again, never slot 0
    assert ports._range() == slots["gw0"]
