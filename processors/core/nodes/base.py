"""Indicator nodes: one O(1) indicator each, composable, with its state in a flat list of numbers.

The strategy compiler (:mod:`processors.core.strategies.compiler`) turns every indicator a
strategy set needs into a graph of :class:`Node` values (``stoch(14, 3, 3)`` becomes a
``highest(high, 14)`` and a ``lowest(low, 14)`` node, a fast-%K node over them and two
moving-window nodes), shares equal nodes (equal nodes have equal :meth:`Node.key`), and
lays every node of a symbol out in **one flat list** ``v`` of JSON scalars:

    v = [ … | node outputs … | node state … | … ]

A node owns a contiguous *region*: first its outputs (one slot per line, ``None`` while
undefined), then its state (counters, sums, ring buffers — fixed size, never growing).
:meth:`Node.build` returns the node's update: a closure ``update(v)`` that reads its inputs'
slots, folds the new value in and writes its outputs, in O(1) (amortized; the rare exact
re-derivations are O(n) at C speed). Updates run once per evaluation of the node's
timeframe, dependencies first. An input that is undefined (a source indicator still
warming up) leaves the node's state alone and makes its outputs undefined.

So a symbol's whole indicator state is ``v`` itself: dumping it is a list copy, and the
region of each node can be stored under the node's key (what the engine does).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

Update = Callable[[list[Any]], None]
"""A node's update: folds the current inputs into its region of ``v``."""

BAR_FIELDS = ("open", "high", "low", "close", "volume", "day")
"""The per-evaluation inputs of a timeframe (``day`` is the UTC day number, VWAP's anchor)."""

# Kinds of state slots (checked when a stored state is loaded):
VALUE = "v"  # float or None
FLOAT = "f"  # float
INT = "i"  # int
MAYBE_INT = "n"  # int or None


@dataclass(frozen=True, slots=True)
class Bar:
    """An input read straight from the timeframe's evaluation (one of :data:`BAR_FIELDS`)."""

    field: str

    def key(self) -> str:
        return self.field


@dataclass(frozen=True, slots=True)
class Output:
    """An input read from another node's output ``index`` (its line)."""

    node: Node
    index: int = 0

    def key(self) -> str:
        return self.node.key() if self.node.width() == 1 else f"{self.node.key()}.{self.index}"


Source = Bar | Output


class Node(ABC):
    """The description of one indicator node: stateless, hashable, shareable.

    Subclasses are frozen dataclasses; two equal nodes (same kind, parameters and inputs)
    compute the same series, so the compiler keeps one of them.
    """

    __slots__ = ()

    outputs: ClassVar[tuple[str, ...]] = ("value",)
    """Names of the output lines, in slot order."""

    @abstractmethod
    def key(self) -> str:
        """A canonical text naming the node and its inputs, e.g. ``ema(12,close)``."""

    @abstractmethod
    def inputs(self) -> tuple[Source, ...]:
        """The sources this node reads, in the order :meth:`build` receives their slots."""

    @abstractmethod
    def state_kinds(self) -> str:
        """One kind character per state slot (:data:`VALUE`, :data:`FLOAT`, :data:`INT`, :data:`MAYBE_INT`)."""

    @abstractmethod
    def initial_state(self) -> list[Any]:
        """The state slots of a node that has seen nothing (same length as :meth:`state_kinds`)."""

    @abstractmethod
    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        """The update closure for a region whose outputs start at ``out`` and state at ``state``.

        ``sources`` are the slots of :meth:`inputs`, in order.
        """

    def width(self) -> int:
        return len(self.outputs)

    def region_kinds(self) -> str:
        """Kinds of the whole region: outputs (values) then state."""
        return VALUE * self.width() + self.state_kinds()

    def initial_region(self) -> list[Any]:
        return [None] * self.width() + self.initial_state()


def check_period(name: str, period: int, least: int = 1) -> None:
    """Raise ``ValueError`` unless ``period`` is a whole number ≥ ``least`` (callers: node constructors)."""
    if isinstance(period, bool) or not isinstance(period, int) or period < least:
        raise ValueError(f"{name} period must be a whole number ≥ {least}, got {period!r}")
