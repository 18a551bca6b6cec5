"""What the handler returns for one input record, and the Quix serializer that writes it.

An :class:`Emission` is one output record: the topic to write to, its key and its already
encoded value. The topology routes each one with ``to_topic(lambda e: e.topic, key=…)`` and
every output topic uses :class:`EmissionSerializer`, so values are encoded once, by
:func:`schemas.events.encode`, never re-serialized by Quix.
"""

from __future__ import annotations

from typing import Any, Protocol

from quixstreams.models.serializers import SerializationContext, Serializer


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


class EmissionSerializer(Serializer):
    """Value serializer of every output topic: the emission's pre-encoded bytes."""

    def __call__(self, value: Emission, ctx: SerializationContext) -> bytes:
        return value.value


def emission_topic(value: Emission, key: Any, timestamp: int, headers: Any) -> Any:
    """``to_topic`` topic selector."""
    return value.topic


def emission_key(value: Emission) -> bytes:
    """``to_topic`` key selector."""
    return value.key
