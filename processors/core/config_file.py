"""Reading the project's TOML/YAML configuration files (strategy files, subscription files).

One place maps every way a file can fail — unreadable, not UTF-8, wrong extension, bad syntax,
nested too deeply, not a mapping — to one :class:`ConfigFileError` whose message names the file.
Callers (``load_strategy``, ``load_config`` of the notifier) validate the mapping they get back.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

SYNTAX_BY_SUFFIX = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}


class ConfigFileError(ValueError):
    """A configuration file cannot be used; the message names the file and says what is wrong."""


def syntax_of(path: Path, what: str, error: type[ConfigFileError] = ConfigFileError) -> str:
    """``toml`` or ``yaml`` from the file's extension; raises ``error`` for any other extension."""
    syntax = SYNTAX_BY_SUFFIX.get(path.suffix.lower())
    if syntax is None:
        raise error(f"{path}: a {what} must end in .toml, .yaml or .yml")
    return syntax


def read_text(path: Path, what: str, error: type[ConfigFileError] = ConfigFileError) -> str:
    """The file's UTF-8 text; raises ``error`` naming the file when it cannot be read or decoded."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as failure:
        raise error(f"{path}: cannot read the {what}: {failure.strerror or failure}") from None
    except UnicodeDecodeError as failure:
        raise error(f"{path}: the {what} is not UTF-8 text (byte {failure.start})") from None


def parse_mapping(text: str, syntax: str, source: str, what: str,
                  error: type[ConfigFileError] = ConfigFileError) -> dict[str, Any]:
    """The top-level mapping of TOML or YAML ``text`` (an empty YAML document is an empty mapping)."""
    try:
        if syntax == "toml":
            raw: object = tomllib.loads(text)
        elif syntax == "yaml":
            raw = yaml.safe_load(text)
            raw = {} if raw is None else raw
        else:
            raise error(f"{source}: unknown {what} syntax {syntax!r} (use toml or yaml)")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as failure:
        raise error(f"{source}: not valid {syntax.upper()}: {failure}") from None
    except RecursionError:
        raise error(f"{source}: nested too deeply") from None
    if not isinstance(raw, dict):
        raise error(f"{source}: a {what} must be a table/mapping at the top level")
    return raw


def load_mapping(path: Path, what: str, error: type[ConfigFileError] = ConfigFileError) -> dict[str, Any]:
    """Read a ``.toml``/``.yaml``/``.yml`` file into its top-level mapping (called once at start)."""
    syntax = syntax_of(path, what, error)
    return parse_mapping(read_text(path, what, error), syntax, str(path), what, error)


def describe_validation(error: ValidationError, prefix: str = "") -> list[str]:
    """One ``location: message`` line per problem (``prefix`` leads every location)."""
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{location}: {message}" if location else message)
    return lines
