"""One error renderer for every configuration file (strategy files, subscription files).

A problem is a :class:`Problem`: the path of the key as it is in the file (keys, 0-based list
positions), a message in plain words, optionally the line. :func:`problems_from_validation` turns
a pydantic ``ValidationError`` into problems — without the library's wording: no ``Input tag …
found using 'type'``, no ``Value error,``, no ``Extra inputs are not permitted`` (an unknown key
lists the valid ones), no ``Tuple should have at least 1 item`` repeated for a list whose items
are themselves invalid — and with the valid choices wherever the model knows them.
:func:`render` writes the message a person reads::

    docs/subs.toml: invalid subscription file (2 problems):
      docs/subs.toml:2: channels.pager.type: 'pagerduty' is not a valid type; choose one of: console, webhook
      docs/subs.toml:9: subscriptions[1].cooldown: '5 minutes' is not a duration like 30s, 15m, 1h or 1d

Paths are printed as the user wrote them: keys joined with dots (quoted when they are not bare
TOML keys), list positions in brackets counted from 1. Validators of our models report several
problems at once by raising :class:`Problems` (a ``ValueError``), which pydantic carries through.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

PathPart = str | int
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def render_path(path: Sequence[PathPart]) -> str:
    """``subscriptions[2].cooldown``, ``symbols."btc/usd".rules``: keys dotted, positions from 1."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        else:
            key = part if _BARE_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'
            text += f".{key}" if text else key
    return text


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a configuration file: where (key path, line when known) and what, in words.

    ``root`` replaces the file as the start of the path when the values do not come from a file
    (``built-in rsi_reversal on 1m``). ``detail`` is printed on the lines below (a rule with a caret).
    """

    path: tuple[PathPart, ...]
    message: str
    line: int | None = None
    detail: str = ""
    root: str | None = None

    def where(self) -> str:
        rendered = render_path(self.path)
        if self.root is not None:
            return f"{self.root}.{rendered}" if rendered else self.root
        return rendered

    def __str__(self) -> str:
        where = self.where()
        return (f"{where}: {self.message}" if where else self.message) + self.detail

    def under(self, prefix: Sequence[PathPart]) -> Problem:
        """This problem seen from a parent: ``prefix`` put in front of its path."""
        return Problem((*prefix, *self.path), self.message, self.line, self.detail, self.root)


class Problems(ValueError):
    """Raised by a validator to report several problems at once, each with its own path (relative
    to the model that raised it). :func:`problems_from_validation` expands it."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


def render(source: str, what: str, problems: Sequence[Problem], locate: Callable[[Sequence[PathPart]], int | None]
           | None = None) -> str:
    """The message for a file with ``problems``: a header naming the file, then one line per problem
    (``source:line: path: message`` when the line is known)."""
    count = f"{len(problems)} problems" if len(problems) != 1 else "1 problem"
    located = [(problem.line if problem.line is not None else (locate(problem.path) if locate else None), problem)
               for problem in problems]
    # In file order (a problem without a line, such as a missing top-level key, comes first).
    located.sort(key=lambda pair: -1 if pair[0] is None else pair[0])
    lines = [f"{source}: invalid {what} ({count}):"]
    for line, problem in located:
        lines.append(f"  {source}:{line}: {problem}" if line is not None else f"  {source}: {problem}")
    return "\n".join(lines)


# --- pydantic errors in words ------------------------------------------------------------------

_KINDS = {
    "string_type": "text", "str_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "dict_type": "a table",
    "mapping_type": "a table", "model_type": "a table", "model_attributes_type": "a table",
    "list_type": "a list", "tuple_type": "a list", "set_type": "a list", "frozen_set_type": "a list",
    "iterable_type": "a list", "decimal_type": "a number", "date_type": "a date like 2024-05-01",
    "datetime_type": "a time like 2024-05-01T12:00:00Z", "url_type": "a URL like https://example.com/path",
}
_BOUNDS = {"greater_than": "more than", "greater_than_equal": "at least", "less_than": "less than",
           "less_than_equal": "at most"}


def describe_value(value: object) -> str:
    """A short, readable account of a value from a file (``'low'``, ``true``, ``a table``)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _strip(annotation: Any) -> Any:
    """The type inside ``Annotated[…]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [member for member in get_args(annotation) if member is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _field_type(model: type[BaseModel], key: PathPart) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _union_member(annotation: Any, tag: PathPart) -> Any:
    for member in get_args(annotation):
        member = _strip(member)
        if _is_model(member) and (member.__name__ == tag or tag in _tags_of(member)):
            return member
    return None


def _tags_of(model: type[BaseModel]) -> tuple[str, ...]:
    """The values of a model's ``type``-like Literal discriminator fields."""
    tags: list[str] = []
    for info in model.model_fields.values():
        annotation = _strip(info.annotation)
        if get_origin(annotation) is Literal and len(get_args(annotation)) == 1:
            tags += [str(value) for value in get_args(annotation)]
    return tuple(tags)


def _type_at(root: type[BaseModel] | None, location: Sequence[PathPart]) -> Any:
    """The declared type at a pydantic error location (union tags in the location are followed)."""
    current: Any = root
    for part in location:
        current = _strip(current)
        origin = get_origin(current)
        if _is_model(current):
            current = _field_type(current, part)
        elif origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
            current = get_args(current)[1] if get_args(current) else None
        elif origin in (list, tuple, set, frozenset) or (isinstance(origin, type) and issubclass(origin, Sequence)):
            current = get_args(current)[0] if get_args(current) else None
        elif origin in (Union, types.UnionType):
            current = _union_member(current, part)
        else:
            return None
        if current is None:
            return None
    return _strip(current)


def _valid_keys(annotation: Any) -> list[str]:
    if not _is_model(annotation):
        return []
    return [info.alias or name for name, info in annotation.model_fields.items()]


def _union_tags(annotation: Any) -> list[str]:
    return [tag for member in get_args(annotation) if _is_model(_strip(member)) for tag in _tags_of(_strip(member))]


def _data_path(data: Any, location: Sequence[PathPart]) -> tuple[PathPart, ...]:
    """The error location as a path in the user's data: union tags and class names pydantic puts in
    the location are dropped (they are not keys of the file)."""
    path: list[PathPart] = []
    current = data
    for index, part in enumerate(location):
        last = index == len(location) - 1
        if part == "[key]":  # a key of a table that is itself invalid: the path ends at that key
            break
        if isinstance(current, Mapping):
            if part in current:
                path.append(part)
                current = current[part]
            elif last:
                path.append(part)  # a missing or unknown key: still where the problem is
            continue  # a union tag or a model name: not in the file
        if isinstance(current, list | tuple) and isinstance(part, int):
            path.append(part)
            current = current[part] if 0 <= part < len(current) else None
            continue
        if not isinstance(part, str) or "[" not in part:
            path.append(part)  # below a scalar: the validator's own location (not pydantic's "function-after[…]")
    return tuple(path)


def _nearest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _literal_choices(expected: str) -> str:
    return ", ".join(part.strip().strip("'") for part in re.split(r",| or ", expected) if part.strip())


@dataclass
class _Translator:
    """Turns one pydantic error into a :class:`Problem` for the data it came from."""

    data: Any
    model: type[BaseModel] | None
    patterns: Mapping[str, str] = field(default_factory=dict)

    def problems(self, error: ValidationError, prefix: Sequence[PathPart] = ()) -> list[Problem]:
        items = error.errors(include_url=False)
        locations = [tuple(item["loc"]) for item in items]
        parents = {location[:end] for location in locations for end in range(len(location))}
        found: list[Problem] = []
        for item, location in zip(items, locations, strict=True):
            if item["type"] in ("too_short", "too_long") and location in parents:
                continue  # "at least 1 item" about a list whose items are themselves invalid: not a problem
            found += [problem.under(prefix) for problem in self.translate(item, location)]
        return found

    def translate(self, item: Mapping[str, Any], location: tuple[PathPart, ...]) -> list[Problem]:
        kind: str = item["type"]
        context: Mapping[str, Any] = item.get("ctx") or {}
        value = item.get("input")
        path = _data_path(self.data, location)
        if kind in ("value_error", "assertion_error"):
            cause = context.get("error")
            if isinstance(cause, Problems):
                return [problem.under(path) for problem in cause.problems]
            return [Problem(path, str(cause) if cause is not None else item["msg"].removeprefix("Value error, "))]
        if kind == "union_tag_invalid":  # the wrong value is the discriminator key's
            path = (*path, str(context.get("discriminator", "type")).strip("'"))
        return [Problem(path, self.message(kind, context, value, location, path))]

    def message(self, kind: str, context: Mapping[str, Any], value: object, location: tuple[PathPart, ...],
                path: tuple[PathPart, ...]) -> str:
        if kind == "extra_forbidden":
            valid = _valid_keys(_type_at(self.model, location[:-1]))
            key = str(location[-1])
            if not valid:
                return f"unknown key {key!r}"
            return f"unknown key {key!r}{_nearest(key, valid)}; valid keys: {', '.join(valid)}"
        if kind == "missing":
            return "missing: this key is required"
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            discriminator = str(context.get("discriminator", "type")).strip("'")
            tags = _literal_choices(str(context.get("expected_tags", ""))) or ", ".join(
                _union_tags(_type_at(self.model, location)))
            if kind == "union_tag_not_found":
                return f"missing {discriminator!r}; choose one of: {tags}"
            tag = str(context.get("tag", ""))
            return f"{tag!r} is not a valid {discriminator}{_nearest(tag, tags.split(', '))}; choose one of: {tags}"
        if kind in ("literal_error", "enum"):
            choices = _literal_choices(str(context.get("expected", "")))
            return f"{describe_value(value)} is not one of: {choices}"
        if kind in _BOUNDS:
            bound = next(iter(context.values()), "?")
            return f"must be {_BOUNDS[kind]} {bound}, got {describe_value(value)}"
        if kind in ("too_short", "too_long"):
            limit = context.get("min_length" if kind == "too_short" else "max_length")
            word = "at least" if kind == "too_short" else "at most"
            return f"needs {word} {limit} item{'s' if limit != 1 else ''}, got {context.get('actual_length', '?')}"
        if kind in ("string_too_short", "string_too_long"):
            limit = context.get("min_length" if kind == "string_too_short" else "max_length")
            word = "at least" if kind == "string_too_short" else "at most"
            return f"must be {word} {limit} character{'s' if limit != 1 else ''} long"
        if kind == "string_pattern_mismatch":
            pattern = str(context.get("pattern", ""))
            shape = self.patterns.get(pattern, f"text matching {pattern}")
            return f"{describe_value(value)} is not valid here: expected {shape}"
        if kind == "finite_number":
            return "must be a finite number"
        if kind.startswith("url_"):
            return f"{describe_value(value)} is not a URL like https://example.com/path"
        if kind in _KINDS:
            return f"expected {_KINDS[kind]}, got {describe_value(value)}"
        return str(context.get("error") or kind.replace("_", " "))


def problems_from_validation(error: ValidationError, data: Any, model: type[BaseModel] | None = None, *,
                             prefix: Sequence[PathPart] = (), patterns: Mapping[str, str] | None = None,
                             ) -> list[Problem]:
    """Every problem of ``error`` (raised validating ``data`` against ``model``) in words.

    ``prefix`` is the path of ``data`` inside the file (when a part of the file was validated);
    ``patterns`` maps regular expressions of the model to what they mean for a person.
    """
    return _Translator(data, model, patterns or {}).problems(error, prefix)
