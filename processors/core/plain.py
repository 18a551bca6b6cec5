"""Checked reads of state values that came back from JSON (a corrupt state fails loudly)."""

from __future__ import annotations

from typing import Any


class StateFormatError(ValueError):
    """A stored state does not have the shape this version of the core writes."""


def as_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateFormatError(f"{what}: expected an integer, got {value!r}")
    return value


def as_floats(value: object, length: int, what: str) -> list[float]:
    """A copy of a list of ``length`` floats (elements unchecked: the layout key vouches for them)."""
    if not isinstance(value, list) or len(value) != length:
        raise StateFormatError(f"{what}: expected a list of {length} numbers")
    return value.copy()


def as_list(value: object, length: int, what: str) -> list[Any]:
    """``value`` itself when it is a list of ``length`` items (items typed Any: the caller checks them)."""
    if not isinstance(value, list) or len(value) != length:
        raise StateFormatError(f"{what}: expected a list of {length} values")
    return value


def as_items(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise StateFormatError(f"{what}: expected a list")
    return value
