"""Output of the command line for people and for pipes (STYLE.md §12): the one place consoles are built.

On a terminal: rich, at the terminal's width (colours, tables, progress bars). On a pipe or a
file: plain lines that are never broken by a console width — a message, a log line or a help
text is one line however long, whatever ``COLUMNS`` says — because a script, a log collector
or a test reading the output must find a sentence where it was written. Tables keep their
natural width there (rich measures them; nothing is padded to the "width" below).

Who calls what:

- every command builds its consoles with :func:`console` when it runs (never at import: the
  decision depends on the streams of the process that runs the command);
- :class:`StockstreamGroup` is the ``cls`` of the ``stockstream`` Typer app: before each run
  it switches typer's help and usage-error rendering to click's plain, unwrapped text when
  stdout or stderr is not a terminal (typer's rich help would draw boxed panels wrapped at
  80 columns, or at ``COLUMNS``, cutting option help and env var names mid-word).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import click
from rich.console import Console
from typer.core import TyperGroup

# Wide enough that no message, help line or table row is ever wrapped; rich only uses it as a ceiling.
UNWRAPPED_WIDTH = 1_000_000


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False for pipes, files and captured output)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def console(*, stderr: bool = False) -> Console:
    """A rich console on standard output (or error) that never wraps when that stream is not a terminal.

    Called by the commands when they run. Highlighting is off: values from the system (symbols,
    paths, numbers) are printed as they are, styled only where the command says so.
    """
    stream = sys.stderr if stderr else sys.stdout
    if is_terminal(stream):
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=UNWRAPPED_WIDTH)


def _commands(command: click.Command) -> Iterator[click.Command]:
    """``command`` and every sub-command below it (typer's groups are not ``click.Group`` subclasses)."""
    yield command
    children = getattr(command, "commands", None)
    if isinstance(children, Mapping):
        for child in children.values():
            yield from _commands(child)


class StockstreamGroup(TyperGroup):
    """The top-level group: plain, unwrapped help and usage errors when the output is not a terminal.

    ``main`` is where both a real run (``stockstream …``) and typer's ``CliRunner`` enter, so the
    decision is taken for the streams actually in use. On a terminal, typer's rich help is kept.
    """

    def main(self, *args: Any, **extra: Any) -> Any:
        from stockstream.cli_conventions import apply

        plain = not (is_terminal(sys.stdout) and is_terminal(sys.stderr))
        apply(self, plain=plain)  # metavars people read, examples in every help (stockstream/cli_conventions.py)
        if plain:
            for command in _commands(self):
                if hasattr(command, "rich_markup_mode"):
                    command.rich_markup_mode = None  # typer: fall back to click's plain help and errors
            extra.setdefault("terminal_width", UNWRAPPED_WIDTH)
            extra.setdefault("max_content_width", UNWRAPPED_WIDTH)
        return super().main(*args, **extra)
