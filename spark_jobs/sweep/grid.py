"""Parameter grids: ``'fast=2..100, slow=20..60:5'`` → every combination (constraints applied).

Called by ``stockstream sweep`` and the bench. ``a..b`` is inclusive, ``:step`` optional; a plain
list ``a=5|9|13`` is accepted too. Names may be dotted (``trend.ema_fast``; Phase B's strategy
parameters). Order: the last name varies fastest.
"""

from __future__ import annotations

import itertools
import re

_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*\.\.\s*(-?\d+(?:\.\d+)?)\s*(?::\s*(\d+(?:\.\d+)?))?\s*$")


class GridError(ValueError):
    """A grid text that cannot be read; the message quotes the bad part."""


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def parse_grid(text: str) -> dict[str, list[int | float]]:
    """``name=range`` items separated by commas → values per name, in the order given."""
    grid: dict[str, list[int | float]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, spec = item.partition("=")
        name = name.strip()
        if not equals or not re.fullmatch(r"[A-Za-z_][\w.]*", name):
            raise GridError(f"{item!r}: expected name=start..stop[:step] or name=a|b|c")
        if name in grid:
            raise GridError(f"{name} appears twice")
        found = _RANGE.match(spec)
        if found:
            start, stop = _number(found.group(1)), _number(found.group(2))
            step = _number(found.group(3)) if found.group(3) else 1
            if step <= 0 or stop < start:
                raise GridError(f"{item!r}: the range must go up with a positive step")
            values: list[int | float] = []
            value = start
            while value <= stop + 1e-12:
                values.append(value)
                value = value + step
        else:
            try:
                values = [_number(part.strip()) for part in spec.split("|")]
            except ValueError:
                raise GridError(f"{item!r}: not a range or a |-list of numbers") from None
        grid[name] = values
    if not grid:
        raise GridError("the grid is empty")
    return grid


def combinations(grid: dict[str, list[int | float]], fast_below_slow: tuple[str, str] | None = None) -> list[dict[str, int | float]]:
    """Every combination; ``fast_below_slow = (fast, slow)`` keeps only those with fast < slow."""
    names = list(grid)
    chosen = []
    for values in itertools.product(*(grid[name] for name in names)):
        combination = dict(zip(names, values, strict=True))
        if fast_below_slow is not None and not combination[fast_below_slow[0]] < combination[fast_below_slow[1]]:
            continue
        chosen.append(combination)
    return chosen
