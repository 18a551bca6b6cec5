"""The line of a key in a TOML or YAML file, so an error can say ``file:line``.

``tomllib`` and ``yaml.safe_load`` give values without positions. For YAML, the composed node
tree has them. For TOML, :func:`toml_lines` scans the (already valid) text once: table headers
(``[a.b]``, ``[[a]]`` counted per array), ``key = value`` lines with dotted and quoted keys, and
multi-line strings and arrays skipped. A path that is not found exactly gets the line of its
nearest found parent (an inline table's keys get the line of the table's key); ``None`` when
nothing of it is in the file (a missing top-level key).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from processors.core.config_errors import PathPart

Locator = Callable[[Sequence[PathPart]], "int | None"]
_MAX_ENTRIES = 100_000  # a located message needs a few keys; a hostile file must not cost more
_MAX_DEPTH = 64
_KEY_PART = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)\s*')


def _split_key(text: str) -> list[str] | None:
    """``a."b.c".d`` → ``['a', 'b.c', 'd']``; None if ``text`` is not a TOML key."""
    parts: list[str] = []
    position = 0
    while True:
        match = _KEY_PART.match(text, position)
        if match is None:
            return None
        raw = match.group(1)
        parts.append(raw[1:-1].replace('\\"', '"') if raw[0] in "\"'" else raw)
        position = match.end()
        if position == len(text):
            return parts
        if text[position] != ".":
            return None
        position += 1


def _key_and_rest(line: str) -> tuple[list[str], str] | None:
    """The key of a ``key = value`` line and the text after ``=``."""
    depth_quote: str | None = None
    for index, char in enumerate(line):
        if depth_quote:
            if char == depth_quote:
                depth_quote = None
        elif char in "\"'":
            depth_quote = char
        elif char == "=":
            key = _split_key(line[:index].strip())
            return (key, line[index + 1:]) if key else None
    return None


def _open_brackets(text: str) -> int:
    """How many ``[``/``{`` the text leaves open (strings and comments ignored)."""
    depth, quote = 0, None
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return depth


def toml_lines(text: str) -> dict[tuple[PathPart, ...], int]:
    """Every table and key of a TOML text → its 1-based line."""
    lines: dict[tuple[PathPart, ...], int] = {}
    arrays: dict[tuple[PathPart, ...], int] = {}
    table: tuple[PathPart, ...] = ()
    open_brackets = 0
    in_string: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_string:
            if in_string in line:
                in_string = None
            continue
        if open_brackets > 0:
            open_brackets += _open_brackets(line)
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            key = _split_key(line[2: line.index("]]")].strip()) if "]]" in line else None
            if key:
                base = tuple(key)
                arrays[base] = arrays.get(base, -1) + 1
                table = (*base, arrays[base])
                _record_prefixes(lines, base, number)
                lines[table] = number
            continue
        if line.startswith("["):
            key = _split_key(line[1: line.index("]")].strip()) if "]" in line else None
            if key:
                table = _with_array_positions(tuple(key), arrays)
                _record_prefixes(lines, table, number)
            continue
        found = _key_and_rest(line)
        if found is None:
            continue
        key, rest = found
        _record_prefixes(lines, (*table, *key), number)
        rest = rest.strip()
        for quote in ('"""', "'''"):
            if rest.startswith(quote) and rest.count(quote) == 1:
                in_string = quote
        open_brackets = max(0, _open_brackets(rest))
    return lines


def _record_prefixes(lines: dict[tuple[PathPart, ...], int], path: tuple[PathPart, ...], number: int) -> None:
    """``path`` and every parent of it not seen yet start on line ``number``."""
    for end in range(1, len(path) + 1):
        lines.setdefault(path[:end], number)


def _with_array_positions(key: tuple[PathPart, ...], arrays: dict[tuple[PathPart, ...], int]) -> tuple[PathPart, ...]:
    """``[a.b]`` under ``[[a]]`` belongs to the latest ``a`` element: insert its position."""
    path: list[PathPart] = []
    for part in key:
        path.append(part)
        position = arrays.get(tuple(path))
        if position is not None:
            path.append(position)
    return tuple(path)


def yaml_lines(text: str) -> dict[tuple[PathPart, ...], int]:
    """Every key and list item of a YAML text → its 1-based line."""
    lines: dict[tuple[PathPart, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    # Iterative, each node once: aliases may repeat a node many times or make a cycle.
    seen: set[int] = set()
    pending: list[tuple[Any, tuple[PathPart, ...]]] = [(root, ())] if root is not None else []
    while pending and len(lines) < _MAX_ENTRIES:
        node, path = pending.pop()
        if id(node) in seen or len(path) > _MAX_DEPTH:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key_path = (*path, str(key_node.value))
                lines.setdefault(key_path, key_node.start_mark.line + 1)
                pending.append((value_node, key_path))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines.setdefault((*path, index), item.start_mark.line + 1)
                pending.append((item, (*path, index)))
    return lines


def locator(text: str, syntax: str) -> Locator:
    """A function from a key path to its line (or its nearest parent's) in ``text``."""
    found = toml_lines(text) if syntax == "toml" else yaml_lines(text)

    def locate(path: Sequence[PathPart]) -> int | None:
        for end in range(len(path), 0, -1):
            line = found.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    return locate
