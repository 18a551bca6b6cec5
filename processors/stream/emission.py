"""What the handler returns for one input record.

An :class:`Emission` is one output record: the topic to write to, its key and its already
encoded value. The topology produces each one once, as is, to ``emission.topic.name`` through
the application's transactional producer (see :mod:`processors.stream.topology`), so values
are encoded once and never re-serialized by Quix.
"""

from __future__ import annotations

from typing import Any, Protocol


class NamedTopic(Protocol):
    """An output topic handle (a Quix ``Topic``); only its name is read here."""

    @property
    def name(self) -> str: ...


class Emission:
    """One record to produce: topic handle, key bytes, encoded value."""

    __slots__ = ("topic", "key", "value")

    def __init__(self, topic: Any, key: bytes, value: bytes) -> None:
        self.topic = topic
        self.key = key
        self.value = value

    def __repr__(self) -> str:
        return f"Emission({self.topic.name!r}, {self.key!r}, {len(self.value)} bytes)"
