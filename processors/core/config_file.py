"""Reading the project's TOML/YAML configuration files (strategy files, subscription files).

One place maps every way a file can fail — unreadable, not UTF-8, wrong extension, bad syntax
(with ``file:line:column``), nested too deeply, not a mapping — to one :class:`ConfigFileError`
whose message names the file. Callers (``load_strategy``, ``load_strategies``, the notifier's
``load_config``) get a :class:`ConfigDocument` back, validate its ``data`` and, when it is
invalid, raise ``document.invalid(problems)``: one message, rendered by
:mod:`processors.core.config_errors`, with the line of every problem.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from processors.core.config_errors import PathPart, Problem, problems_from_validation, render
from processors.core.config_lines import locator

SYNTAX_BY_SUFFIX = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


class ConfigFileError(ValueError):
    """A configuration file cannot be used; the message names the file and says what is wrong.

    ``problems`` holds the structured problems when the file was read but is invalid (empty for a
    file that could not be read or parsed).
    """

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


@dataclass(frozen=True)
class ConfigDocument:
    """A configuration file read and parsed: where it came from, its text, syntax and top-level mapping."""

    source: str
    text: str
    syntax: str
    data: dict[str, Any]
    what: str
    error: type[ConfigFileError] = ConfigFileError

    def line_of(self, path: Sequence[PathPart]) -> int | None:
        """The line of ``path`` in the file (or of its nearest parent), None when not in it."""
        return locator(self.text, self.syntax)(path)

    def invalid(self, problems: Sequence[Problem]) -> ConfigFileError:
        """The error to raise for ``problems``: every one with ``file:line``, path and message."""
        return self.error(render(self.source, self.what, problems, locator(self.text, self.syntax)), problems)

    def validation_problems(self, error: ValidationError, model: type[BaseModel] | None = None, *,
                            data: Any = None, prefix: Sequence[PathPart] = (),
                            patterns: Mapping[str, str] | None = None) -> list[Problem]:
        """The problems of ``error`` from validating this file (or the part ``data`` at ``prefix``)."""
        return problems_from_validation(error, self.data if data is None else data, model, prefix=prefix,
                                        patterns=patterns)


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


def _syntax_message(failure: Exception, syntax: str, source: str) -> str:
    """``source:line:column: not valid TOML: what`` — the parser's finding without its own wording of places."""
    if isinstance(failure, yaml.MarkedYAMLError):
        mark = failure.problem_mark or failure.context_mark
        problem = failure.problem or "syntax error"
        if failure.context and failure.context_mark is not None and failure.context_mark is not mark:
            problem += f" ({failure.context} at line {failure.context_mark.line + 1})"
        if mark is not None:
            return f"{source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}"
        return f"{source}: not valid YAML: {problem}"
    text = str(failure)
    match = _TOML_POSITION.search(text)
    if match is not None:
        return f"{source}:{match.group(1)}:{match.group(2)}: not valid {syntax.upper()}: {text[:match.start()]}"
    return f"{source}: not valid {syntax.upper()}: {text.replace('<unicode string>', source)}"


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
        raise error(_syntax_message(failure, syntax, source)) from None
    except RecursionError:
        raise error(f"{source}: nested too deeply") from None
    if not isinstance(raw, dict):
        raise error(f"{source}: a {what} must be a table/mapping at the top level")
    return raw


def parse_document(text: str, syntax: str, source: str, what: str,
                   error: type[ConfigFileError] = ConfigFileError) -> ConfigDocument:
    """Parse ``text`` (``toml`` or ``yaml``) into a :class:`ConfigDocument`; raises ``error`` on bad syntax."""
    return ConfigDocument(source, text, syntax, parse_mapping(text, syntax, source, what, error), what, error)


def load_document(path: Path, what: str, error: type[ConfigFileError] = ConfigFileError) -> ConfigDocument:
    """Read a ``.toml``/``.yaml``/``.yml`` file into a :class:`ConfigDocument` (called once at start)."""
    syntax = syntax_of(path, what, error)
    return parse_document(read_text(path, what, error), syntax, str(path), what, error)


def load_mapping(path: Path, what: str, error: type[ConfigFileError] = ConfigFileError) -> dict[str, Any]:
    """Read a ``.toml``/``.yaml``/``.yml`` file into its top-level mapping (called once at start)."""
    return load_document(path, what, error).data
