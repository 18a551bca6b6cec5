"""One vocabulary on the command line: one name per concept, the same common options on every command.

Applied to the command tree by :func:`stockstream.cli_conventions.apply` (every invocation, the
console script and typer's ``CliRunner`` alike); checked by tests/e2e/cli/test_cli_vocabulary.py,
which walks every command's options and fails on a new inconsistency.

- **Ranges** are ``--from``/``--to``: offsets (``1200``, ``0:1200,1:800``), a time, a date or a
  duration ago (:func:`stockstream.ranges.split_bound`); ``tail`` and ``composite`` start
  ``--from beginning|end``.
- **Redis key prefixes** are ``--redis-prefix``; the API's bind address ``--api-host``/``--api-port``
  (as ``run --api-port``); the backfill's Parquet write mode ``--write-mode`` (``--mode`` is the
  backtest's position mode only); ``--limit`` is ``-n`` everywhere.
- **Common options** (:data:`COMMON`): ``--redis-url``, ``--bootstrap-servers``, ``--log-level`` and
  ``--metrics-port`` on every command that uses Redis, Kafka, logs or serves metrics. Each sets its environment variable for this
  run only, so the setting wins over the environment and ``.env`` like every flag, through the
  same settings classes.
- **Old spellings** (:data:`RENAMED`) still work for one release: their tokens are rewritten
  before parsing (a note on a terminal's stderr), hidden from help. Two spellings of one option in
  one command line are refused (exit 2) instead of one silently winning.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import typer
import typer.main
import typer.models
from typer._click.exceptions import UsageError

Command = Any

# Per command path: an old spelling → the tokens it now is. Kept for one release (issue 20).
_RANGE = {"--from-offset": ("--from",), "--from-time": ("--from",), "--to-offset": ("--to",), "--to-time": ("--to",)}
RENAMED: dict[str, dict[str, tuple[str, ...]]] = {
    "backfill": {**_RANGE, "--mode": ("--write-mode",)},
    "backtest": dict(_RANGE),
    "replay": {**_RANGE, "--views-prefix": ("--redis-prefix",)},
    "views rebuild": {"--from-offset": ("--from",), "--from-time": ("--from",), "--into": ("--redis-prefix",)},
    "views compare": {"--prefix": ("--redis-prefix",)},
    "notify": {"--since": ("--from",)},
    "tail": {"--from-beginning": ("--from", "beginning")},
    "composite": {"--from-beginning": ("--from", "beginning")},
    "serve": {"--host": ("--api-host",), "--port": ("--api-port",)},
    "ingest": {"--interval": ("--message-interval",)},
}

_REDIS = ("materialize", "serve", "notify", "backfill", "replay", "doctor", "query latest", "query recommendation",
          "query indicators", "query signals", "query candles", "query daily", "views rebuild", "views compare",
          "apikey create", "apikey list", "apikey revoke")
_KAFKA = ("ingest", "process", "materialize", "serve", "notify", "composite", "backfill", "backtest", "replay", "tail",
          "doctor", "views rebuild")
_LOGS = ("ingest", "process", "materialize", "serve", "notify", "composite", "backfill", "replay", "views rebuild")

# option → (environment variable, metavar, help, the commands that take it)
COMMON: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "--redis-url": ("REDIS_URL", "URL", "Redis address, e.g. redis://127.0.0.1:6379/0; a password is better in"
                    " REDIS_PASSWORD (env REDIS_URL).", _REDIS),
    "--bootstrap-servers": ("KAFKA_BOOTSTRAP_SERVERS", "HOSTS", "Kafka brokers, host:port,… (env KAFKA_BOOTSTRAP_SERVERS).",
                            _KAFKA),
    "--log-level": ("LOG_LEVEL", "LEVEL", "DEBUG, INFO, WARNING, ERROR (env LOG_LEVEL).", _LOGS),
    "--metrics-port": ("METRICS_PORT", "INTEGER", "/metrics port, 0 = off (env METRICS_PORT).",
                       ("materialize", "notify", "serve")),
}


# What a common option's default is, when the help shows one ([default: …]: the one way defaults are shown).
DEFAULTS = {"--redis-url": "redis://127.0.0.1:6379/0", "--bootstrap-servers": "127.0.0.1:9092", "--log-level": "INFO",
            "--metrics-port": "9103 materialize, 9104 notify, 9105 serve"}


def _on_terminal() -> bool:
    """Whether stderr is a terminal (stockstream.console imports this module's caller: no import back)."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _set_environment(variable: str) -> Callable[[Any, Any, Any], None]:
    """The callback of a common option: the variable holds the value for this run, then is restored."""

    def callback(ctx: Any, _param: Any, value: Any) -> None:
        if value is None:
            return
        previous = os.environ.get(variable)
        os.environ[variable] = str(value)

        def restore() -> None:
            if previous is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = previous

        ctx.call_on_close(restore)

    return callback


def _common_option(option: str) -> Any:
    variable, metavar, help_text, _ = COMMON[option]
    declared = typer.Option(None, option, help=help_text, metavar=metavar, callback=_set_environment(variable),
                            show_default=DEFAULTS.get(option, False))
    param = typer.main._get_param(typer.models.ParamMeta(name=f"_common_{variable.lower()}", default=declared,
                                                         annotation=str | None))
    param.expose_value = False  # read through the environment by the command's settings, not as an argument
    return param


def rewrite(path: str, args: list[str]) -> list[str]:
    """The arguments of the command at ``path`` with old spellings replaced; refuses one option given twice."""
    table = RENAMED.get(path, {})
    targets = {tokens[0] for tokens in table.values()}
    given: dict[str, list[str]] = {}
    out: list[str] = []
    for index, word in enumerate(args):
        if word == "--":
            out += args[index:]
            break
        name, equals, value = word.partition("=")
        if name in table:
            new = table[name]
            out += [f"{new[0]}={value}"] if equals and len(new) == 1 else list(new)
            given.setdefault(new[0], []).append(name)
            if _on_terminal():
                print(f"note: {name} is now {' '.join(new)} (the old spelling goes in the next release)",
                      file=sys.stderr)
        else:
            if name in targets:
                given.setdefault(name, []).append(name)
            out.append(word)
    for target, names in given.items():
        if len(names) > 1 and any(name != target for name in names):
            raise UsageError(f"{' and '.join(dict.fromkeys(names))} both give {target}: give one, not both")
    return out


def _renaming_parser(path: str, command: Command) -> None:
    original = command.parse_args

    def parse_args(ctx: Any, args: list[str]) -> list[str]:
        try:
            rewritten = rewrite(path, list(args))
        except UsageError as error:
            error.ctx = ctx
            raise
        return original(ctx, rewritten)  # type: ignore[no-any-return]

    command.parse_args = parse_args


def apply_vocabulary(path: tuple[str, ...], command: Command) -> None:
    """Common options and old spellings on the command at ``path`` (idempotent)."""
    if getattr(command, "_stockstream_vocabulary", False) or getattr(command, "commands", None):
        return
    key = " ".join(path)
    present = {name for param in command.params for name in getattr(param, "opts", ())}
    for option, (_, _, _, commands) in COMMON.items():
        if key in commands and option not in present:
            command.params.append(_common_option(option))
    if key in RENAMED:
        _renaming_parser(key, command)
    command._stockstream_vocabulary = True
