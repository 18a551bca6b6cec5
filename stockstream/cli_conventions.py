"""The conventions every ``stockstream`` command follows in its help, applied in one place.

:func:`apply` is called by :class:`stockstream.console.StockstreamGroup` on the assembled click
tree before each run (real or ``CliRunner``), so a command added by anyone gets them without
touching this file:

- **metavars people read**: an on/off flag shows none (typer would print ``<bool>``); a value
  shows a word — ``TEXT``, ``INTEGER``, ``NUMBER``, ``PATH``, ``TIME`` or its choices
  ``[a|b|c]`` — instead of typer's raw type (``<str>``, ``<list[Path]>``,
  ``<%Y-%m-%dT%H:%M:%S%z|…>``); an argument shows its name in capitals (``SYMBOL``, not
  ``{symbol}``). A metavar a command sets itself is kept.
- **examples**: every command's help ends with the examples of :data:`stockstream.cli_examples.EXAMPLES`
  (tests/e2e/cli/test_cli_conventions.py fails for a command without one, and parses every example).
"""

from __future__ import annotations

import datetime
import enum
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stockstream.cli_examples import EXAMPLES

# typer ships its own click (typer._click): its commands and parameters are duck-typed here.
Command = Any
Parameter = Any


def walk(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command below ``command`` (itself included) with its path of sub-command names."""
    yield path, command
    children = getattr(command, "commands", None)
    if isinstance(children, dict):
        for name, child in children.items():
            yield from walk(child, (*path, name))


_WORDS: tuple[tuple[type, str], ...] = (
    (bool, "[true|false]"), (int, "INTEGER"), (float, "NUMBER"), (Path, "PATH"), (datetime.datetime, "TIME"),
    (datetime.date, "DATE"), (str, "TEXT"))


def _base(annotation: object) -> object:
    """``list[Path] | None`` → ``Path``."""
    while True:
        origin = typing.get_origin(annotation)
        arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
        if origin in (typing.Union, types.UnionType, list, tuple, set, typing.Annotated) and arguments:
            annotation = arguments[0]
        else:
            return annotation


def _word(param: Parameter) -> str:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and descriptor.is_choice and descriptor.choices:
        return "[" + "|".join(str(getattr(choice, "value", choice)) for choice in descriptor.choices) + "]"
    annotation = _base(getattr(descriptor, "annotation", None))
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return "[" + "|".join(str(member.value) for member in annotation) + "]"
        for kind, word in _WORDS:
            if issubclass(annotation, kind):
                return word
    return "TEXT"


def _name_argument(param: Parameter, name: str) -> None:
    """``SYMBOL`` in the usage line (typer writes ``{symbol}``) and no ``<str>`` beside it in the list."""
    usage = name if param.required else f"[{name}]"
    usage += "..." if param.nargs != 1 else ""
    param.metavar = name
    # typer has no setting for these two; instance attributes override its methods for this parameter.
    param._usage_display_name = lambda: usage
    param.display_type_rich = lambda ctx: None


def humanize_metavars(command: Command) -> None:
    """Set the metavar of every parameter that has none (see the module docstring)."""
    for param in command.params:
        if param.metavar is not None:
            continue
        if param.param_type_name == "option" and (getattr(param, "is_flag", False) or getattr(param, "count", False)):
            param.metavar = ""
        elif param.param_type_name == "argument":
            _name_argument(param, (param.name or "value").upper())
        else:
            param.metavar = _word(param)


def examples_epilog(path: tuple[str, ...], *, plain: bool) -> str | None:
    """The ``Examples:`` block of the command at ``path``, one example a line: click's plain help
    keeps a paragraph's lines only after a ``\\b`` line; typer's rich help keeps them as they are."""
    lines = EXAMPLES.get(" ".join(path))
    if not lines:
        return None
    return "Examples:\n\n" + ("\b\n" if plain else "") + "\n".join(f"  {line}" for line in lines)


def _flagless_help_option(command: Command) -> None:
    """``--help`` shows no ``<bool>``: the option is made per context, so wrap its factory once."""
    if getattr(command, "_stockstream_help_option", False):
        return
    original = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = original(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option
    command._stockstream_help_option = True


def apply(root: Command, *, plain: bool) -> None:
    """Metavars and examples on every command of the tree (idempotent); ``plain``: click's help, not rich's."""
    from stockstream.cli_vocabulary import apply_vocabulary

    for path, command in walk(root):
        apply_vocabulary(path, command)  # before the metavars: the common options get theirs too
        humanize_metavars(command)
        _flagless_help_option(command)
        epilog = examples_epilog(path, plain=plain)
        if epilog is not None and (not command.epilog or command.epilog.startswith("Examples:")):
            command.epilog = epilog
