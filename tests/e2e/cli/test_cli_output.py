"""The command line's output to a pipe is never wrapped, whatever ``COLUMNS`` says (STYLE.md §12).

The real console script, stdout and stderr on pipes, ``COLUMNS=40`` and ``COLUMNS`` unset:

- ``--help`` of every command and sub-command (walked from the click tree, so a new command is
  covered without touching this file): every paragraph of its description and every option's
  help — env var names included — is on one line of the output;
- representative error paths (a usage error, settings refused, a missing file, a bad range, a
  bad symbol): the whole message on one line and the documented exit code.

Issue 12: a refusal hard-wrapped at 80 columns ("… already \\nholds backfill output …") made a
test depend on the terminal width and broke messages for anyone reading them from a file.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import typer.main

from stockstream.cli import app
from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.e2e

WIDTHS = pytest.mark.parametrize("columns", ["40", None], ids=["COLUMNS=40", "COLUMNS-unset"])
MARKER = "=== stockstream-cli-output-test"

# Every page in one interpreter (one start-up instead of ~25): the real entry point, called once per
# argument list, writing to the process's own piped stdout/stderr.
DRIVER = f"""
import json, sys
from stockstream.cli import main
def mark(*words):
    for stream in (sys.stdout, sys.stderr):
        print({MARKER!r}, *words, file=stream, flush=True)
for argv in json.loads(sys.argv[1]):
    mark(" ".join(argv))
    sys.argv = ["stockstream", *argv]
    try:
        main()
    except SystemExit as done:
        mark("exit", done.code if isinstance(done.code, int) else (0 if done.code is None else 1))
"""


def commands() -> Iterator[tuple[list[str], click.Command]]:
    def walk(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Command]]:
        yield path, command
        for name, child in (getattr(command, "commands", None) or {}).items():
            yield from walk(child, [*path, name])

    yield from walk(typer.main.get_command(app), [])


def environment(columns: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = columns
    return env


def run_pages(argvs: list[list[str]], columns: str | None, cwd: Path) -> dict[str, tuple[int, list[str]]]:
    """Run each argument list through the real entry point with piped output; → (exit code, lines) each."""
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(argvs)], capture_output=True, text=True,
                          env=environment(columns), cwd=cwd, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # stderr is written by other code paths than stdout: merge them page by page through the markers.
    pages: dict[str, tuple[int, list[str]]] = {}
    for stream in (done.stdout, done.stderr):
        current: str | None = None
        for line in stream.splitlines():
            if line.startswith(MARKER):
                rest = line[len(MARKER) + 1:]
                if rest.startswith("exit "):
                    assert current is not None
                    pages[current] = (int(rest[5:]), pages[current][1])
                else:
                    current = rest
                    pages.setdefault(current, (0, []))
            elif current is not None:
                code, lines = pages[current]
                pages[current] = (code, [*lines, line])
    return pages


def paragraphs(text: str) -> list[str]:
    """The paragraphs of a help text, each as one line (how an unwrapped page must show it)."""
    text = text.partition("\f")[0]
    return [" ".join(block.split()) for block in text.split("\n\n") if block.strip() and "\b" not in block]


def on_one_line(phrase: str, lines: list[str]) -> bool:
    return any(phrase in line for line in lines)


@WIDTHS
def test_every_help_page_is_unwrapped_when_piped(columns, tmp_path):
    found = list(commands())
    pages = run_pages([[*path, "--help"] for path, _ in found], columns, tmp_path)
    assert len(found) > 20  # every command and sub-command, not a handful
    broken: list[str] = []
    for path, command in found:
        code, lines = pages[" ".join([*path, "--help"])]
        assert code == 0, (path, lines)
        expected = paragraphs(command.help or "")
        expected += [" ".join(param.help.split()) for param in command.params
                     if getattr(param, "help", None) and not getattr(param, "hidden", False)]
        broken += [f"stockstream {' '.join(path)} --help: {phrase!r}" for phrase in expected
                   if not on_one_line(phrase, lines)]
        assert not any("╭" in line or "│" in line for line in lines), (path, lines[:5])  # no boxed rich panels
    assert not broken, "\n".join(broken)


@WIDTHS
def test_error_messages_are_unwrapped_when_piped(columns, tmp_path):
    missing = tmp_path / "nowhere"
    cases = {
        # argv → (exit code, the message as it must appear on one line)
        ("ingest", "--nope"): (2, "Error: No such option: --nope"),
        ("notify", "--since", "2h"): (  # the old spelling of --from (stockstream/cli_vocabulary.py)
            2, "--from only applies to --renotify (the live notifier always resumes where it stopped)"),
        ("notify", "--check", "-s", str(missing / "subscriptions.toml")): (
            2, f"{missing / 'subscriptions.toml'}: cannot read the subscription file: No such file or directory"),
        ("indicators", "--input", str(missing / "ticks.csv"), "--output", str(missing / "out.csv")): (
            2, f"error: cannot open {missing / 'ticks.csv'}: No such file or directory"),
        ("backfill", "--from-offset", "0:x"): (2, "error: offsets look like 1200 or 0:1200,1:800, not '0:x'"),
        ("query", "latest", "not!a!symbol"): (2, "invalid instrument: symbol may hold only letters, digits and - / . _"),
        ("ingest", "--rate", "-1"): (2, "sim_rate: Input should be greater than or equal to 0"),
    }
    pages = run_pages([list(argv) for argv in cases], columns, tmp_path)
    for argv, (exit_code, message) in cases.items():
        code, lines = pages[" ".join(argv)]
        assert code == exit_code, (argv, lines)
        assert on_one_line(message, lines), (argv, lines)


def test_a_terminal_still_gets_rich_help():
    """On a terminal the help stays typer's rich layout (the plain pages are for pipes and files)."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen([STOCKSTREAM, "stack", "--help"], stdin=follower, stdout=follower,  # noqa: S603
                                   stderr=follower, env={**environment("100"), "TERM": "xterm"}, close_fds=True)
        os.close(follower)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(120) == 0
    finally:
        os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert "╭" in text and "Commands" in text
