"""One vocabulary on the command line (issue 20): walks every command's options and fails on a new
inconsistency — the same concept under two names, a name with two meanings, an old spelling shown.

The concept of an option is the environment variable its help names (``(env API_PORT…``) or its
entry in :data:`SYNONYMS`; the rules live in stockstream/cli_vocabulary.py. In-process, no services.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
import typer.main

from stockstream.cli import app
from stockstream.cli_conventions import apply, walk
from stockstream.cli_vocabulary import COMMON, RENAMED

pytestmark = pytest.mark.e2e
ENV = re.compile(r"\(env ([A-Z][A-Z0-9_]+)")

# The one name of a concept ← the spellings that must not come back (as a visible option, anywhere).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "--from": ("--from-offset", "--from-time", "--since", "--after", "--begin", "--start", "--from-beginning"),
    "--to": ("--to-offset", "--to-time", "--until", "--before", "--end"),
    "--redis-prefix": ("--views-prefix", "--into", "--prefix", "--key-prefix", "--redis-key-prefix"),
    "--redis-url": ("--redis", "--redis-address"),
    "--bootstrap-servers": ("--kafka", "--brokers", "--bootstrap"),
    "--api-port": ("--port", "--http-port"),
    "--api-host": ("--host", "--bind"),
    "--limit": ("--max", "--max-count", "--last"),
    "--write-mode": ("--parquet-mode",),
    "--yes": ("--force", "--assume-yes"),
}
# Names with one meaning, so only these commands may use them.
ONE_MEANING = {"--mode": {"backtest"}}
# Each short flag is one long option, in every command that has it.
SHORTS = {"-n": "--limit", "-y": "--yes", "-t": "--timeframe", "-s": "--subscriptions", "-i": "--input",
          "-o": "--output", "-V": "--version"}
SERVICES = ("ingest", "process", "materialize", "notify", "serve", "composite")
OVER_A_RANGE = ("backfill", "backtest", "replay", "views rebuild", "notify", "tail", "composite", "query indicators",
                "query signals", "query candles", "query daily")


@pytest.fixture(scope="module")
def options() -> list[tuple[str, Any]]:
    """(command path, option) for every visible option of every command, as a run has them."""
    root = typer.main.get_command(app)
    apply(root, plain=True)
    found = []
    for path, command in walk(root):
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option" and not param.hidden:
                found.append((" ".join(path), param))
    assert len({path for path, _ in found}) > 25
    return found


def longs(param: Any) -> list[str]:
    return [name for name in (*param.opts, *param.secondary_opts) if name.startswith("--")]


def test_no_synonym_of_a_settled_name_is_shown(options) -> None:  # type: ignore[no-untyped-def]
    banned = {old: new for new, olds in SYNONYMS.items() for old in olds}
    found = [f"{path or 'stockstream'}: {name} (say {banned[name]})" for path, param in options for name in longs(param)
             if name in banned]
    assert not found, "\n".join(found)


def test_one_environment_variable_one_option_name(options) -> None:  # type: ignore[no-untyped-def]
    names: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path, param in options:
        for variable in ENV.findall(param.help or ""):
            names[variable] |= {(longs(param)[0], path)}
    differing = {variable: sorted(uses) for variable, uses in names.items() if len({name for name, _ in uses}) > 1}
    assert not differing, differing


def test_names_with_one_meaning_and_short_flags_with_one_option(options) -> None:  # type: ignore[no-untyped-def]
    for path, param in options:
        for name in longs(param):
            assert path in ONE_MEANING.get(name, {path}), f"{path}: {name} means something else elsewhere"
        shorts = [name for name in param.opts if not name.startswith("--")]
        for short in shorts:
            assert SHORTS.get(short) in longs(param), f"{path}: {short} is {SHORTS.get(short)} everywhere else"
        for short, long in SHORTS.items():
            if long in longs(param) and long != "--input":  # -i/-o: only where the file is the command's subject
                assert short in param.opts or long in ("--output", "--timeframe"), f"{path}: {long} without {short}"


def test_common_options_on_every_command_that_uses_them(options) -> None:  # type: ignore[no-untyped-def]
    have: dict[str, set[str]] = defaultdict(set)
    for path, param in options:
        have[path] |= set(longs(param))
    for option, (_, _, _, commands) in COMMON.items():
        for path in commands:
            assert option in have[path], f"{path} lacks {option}"
    for path in SERVICES:
        for option in ("--log-level", "--metrics-port", "--bootstrap-servers"):
            assert option in have[path], f"service {path} lacks {option}"
    for path in OVER_A_RANGE:
        assert "--from" in have[path], f"{path}: a range starts with --from"
        assert not [name for name in have[path] if re.match(r"--(from|to)-", name)], path


@pytest.mark.parametrize(("path", "old"), [(path, old) for path, table in RENAMED.items() for old in table])
def test_old_spellings_still_work_hidden(path: str, old: str) -> None:
    """Each old spelling parses to what its new one does, and no help shows it."""
    root = typer.main.get_command(app)
    apply(root, plain=True)
    command = dict(walk(root))[tuple(path.split())]
    new = RENAMED[path][old]
    values = {"--from": "5", "--to": "5", "--write-mode": "overwrite", "--api-port": "8080", "--message-interval": "0.5"}
    value = [] if len(new) > 1 else [values.get(new[0], "x")]
    arguments = ["ss2:"] if path == "views compare" else []
    as_new = command.make_context(path, [*arguments, *new, *value]).params
    as_old = command.make_context(path, [*arguments, old, *value]).params
    assert as_old == as_new
    assert all(old not in longs(param) for param in command.params)


def test_two_spellings_of_one_option_are_refused() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["backfill", "--from-offset", "5", "--from", "2024-03-01"])
    assert result.exit_code == 2
    assert "--from-offset and --from both give --from" in result.output


def test_defaults_are_shown_one_way(options) -> None:  # type: ignore[no-untyped-def]
    """Every default is click's ``[default: …]`` (``show_default``), never in the help text's own words."""
    found = [f"{path}: {longs(param)[0]}: {param.help}" for path, param in options
             if re.search(r"\bdefault\b", param.help or "", re.IGNORECASE)]
    assert not found, "\n".join(found)
