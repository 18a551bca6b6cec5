"""The ``stockstream`` console script.

Subcommands live in :mod:`stockstream.commands`, one module each, and register
themselves through ``register(app)``; this module only assembles them, so adding a
command never touches this file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Annotated

import typer

import stockstream
import stockstream.commands
from stockstream.console import StockstreamGroup, is_terminal

app = typer.Typer(
    name="stockstream",
    cls=StockstreamGroup,
    help="Real-time trading signals for Bitcoin and other symbols, event-sourced on Kafka.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_show_locals=False,
)


def _register_commands() -> None:
    for module_info in sorted(pkgutil.iter_modules(stockstream.commands.__path__), key=lambda m: m.name):
        try:
            module = importlib.import_module(f"stockstream.commands.{module_info.name}")
        except Exception as error:  # noqa: BLE001 - one broken command must not take the others down
            print(f"stockstream: command module {module_info.name!r} failed to load: {error}", file=sys.stderr)
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"stockstream {stockstream.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", "-V", help="Print the version and exit.",
                                          callback=_print_version, is_eager=True)] = False,
) -> None:
    """Real-time trading signals for Bitcoin and other symbols, event-sourced on Kafka."""


_register_commands()


def main() -> None:
    """The console script: run the command; an outside service's failure is one sentence and exit 1."""
    from stockstream.errors import explain

    # A traceback to a pipe or a file stays plain (rich's boxed traceback is wrapped at the console width).
    app.pretty_exceptions_enable = is_terminal(sys.stderr)
    try:
        app()
    except Exception as error:
        message = explain(error)
        if message is None:
            raise
        print(f"stockstream: {message}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
