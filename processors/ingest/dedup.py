"""Duplicate-delivery guard: the last N ``(source, source_id)`` keys seen by this process."""

from __future__ import annotations

from collections import OrderedDict


class RecentKeys:
    """A bounded LRU set. ``seen(key)`` is True when ``key`` is among the last ``capacity`` keys.

    The window is per process and counts distinct keys: with the default 100 000 a
    redelivery is caught if fewer than 100 000 other records came in between (hours of
    exchange data; a whole replayed file of up to 100 000 lines). A restart forgets it.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()

    def seen(self, key: tuple[str, str]) -> bool:
        """Record ``key``; return True if it was already in the window."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        self._keys[key] = None
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._keys)
