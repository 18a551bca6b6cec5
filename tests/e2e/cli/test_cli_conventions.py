"""The conventions a newcomer expects from the command line (issue 20): ``--version``, shell
completion, readable metavars, examples in every command's help (each one parses), ``-y`` for
``--yes``, ``NO_COLOR``, ``stack status --json``.

Walks the click tree, so a command added later is held to the same conventions.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import typer.main

from processors.runtime import package_version
from stockstream.cli import app
from stockstream.cli_examples import EXAMPLES
from tests.support.cli_parse import parse_words
from tests.support.ports import free_port
from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[3]
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7]|38;[0-9;]+|48;[0-9;]+)m")
RAW_METAVAR = re.compile(r"<[^<>\s]*(?:str|int|float|bool|path|datetime|list\[|%Y)[^<>\s]*>", re.IGNORECASE)


def stockstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STOCKSTREAM, *args], capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def from_bash(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The console script started by bash, as from a user's bash prompt.

    Typer finds the shell among the process's ancestors (shellingham), not in ``$SHELL``: run as a child of the test,
    it found the shell that started the suite (``Shell sh is not supported.`` from a suite started by ``sh``, the
    zsh script from zsh).
    """
    command = " ".join(shlex.quote(part) for part in (STOCKSTREAM, *args)) + "; exit $?"  # not exec'd: bash stays
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
                          env={**os.environ, **env})


def in_terminal(*args: str, env: dict[str, str]) -> str:
    """Run the console script on a pseudo-terminal; its whole output, escape codes included."""
    leader, follower = pty.openpty()
    environment = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "FORCE_COLOR")}
    try:
        process = subprocess.Popen([STOCKSTREAM, *args], stdin=follower, stdout=follower, stderr=follower,  # noqa: S603
                                   env={**environment, "TERM": "xterm-256color", "COLUMNS": "120", **env},
                                   close_fds=True, cwd=ROOT)
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
        process.wait(120)
    finally:
        os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def all_commands() -> list[tuple[str, ...]]:
    from stockstream.cli_conventions import walk

    return [path for path, _ in walk(typer.main.get_command(app))]


def test_version() -> None:
    for flag in ("--version", "-V"):
        result = stockstream(flag)
        assert result.returncode == 0 and result.stdout == f"stockstream {package_version()}\n"


def test_bash_completion_completes_commands_and_options(tmp_path: Path) -> None:
    script = from_bash("--show-completion", env={"SHELL": "/bin/bash"})
    assert script.returncode == 0 and "complete" in script.stdout
    (tmp_path / "completion.sh").write_text(script.stdout)
    probe = f"""
source {tmp_path / 'completion.sh'}
COMP_WORDS=(stockstream que); COMP_CWORD=1; _stockstream_completion stockstream; echo "1:${{COMPREPLY[*]}}"
COMP_WORDS=(stockstream stack st); COMP_CWORD=2; _stockstream_completion stockstream; echo "2:${{COMPREPLY[*]}}"
COMP_WORDS=(stockstream tail --idle-e); COMP_CWORD=2; _stockstream_completion stockstream; echo "3:${{COMPREPLY[*]}}"
"""
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PATH": f"{Path(STOCKSTREAM).parent}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    assert "1:query" in done.stdout.splitlines()
    assert "2:status" in done.stdout.splitlines()
    assert "3:--idle-exit" in done.stdout.splitlines()


def test_install_completion_writes_the_shell_startup_file(tmp_path: Path) -> None:
    result = from_bash("--install-completion", env={"HOME": str(tmp_path), "SHELL": "/bin/bash"})
    assert result.returncode == 0, result.stderr
    assert "stockstream" in (tmp_path / ".bashrc").read_text()


@pytest.fixture(scope="module")
def help_pages() -> dict[tuple[str, ...], str]:
    """Every command's piped --help, in one interpreter (the real entry point)."""
    paths = all_commands()
    driver = """
import json, sys
from stockstream.cli import main
for argv in json.loads(sys.argv[1]):
    print("=== page", " ".join(argv), flush=True)
    sys.argv = ["stockstream", *argv]
    try:
        main()
    except SystemExit:
        pass
"""
    done = subprocess.run([str(Path(STOCKSTREAM).with_name("python")), "-c", driver,
                           json.dumps([[*path, "--help"] for path in paths])],
                          capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    pages: dict[tuple[str, ...], str] = {}
    for block in done.stdout.split("=== page ")[1:]:
        title, _, body = block.partition("\n")
        pages[tuple(title.split()[:-1])] = body
    assert set(pages) == set(paths)
    return pages


def test_no_raw_metavar_and_no_braces_in_usage(help_pages: dict[tuple[str, ...], str]) -> None:
    for path, page in help_pages.items():
        assert not RAW_METAVAR.findall(page), (path, RAW_METAVAR.findall(page))
        usage = page.splitlines()[0]
        assert "{" not in usage, (path, usage)
        for line in page.splitlines():
            if line.strip().startswith("--") and "/" not in line.split()[0]:
                assert "<bool>" not in line and "[true|false]" not in line.split("  ")[0], (path, line)


def test_every_command_has_examples_and_every_example_parses(help_pages: dict[tuple[str, ...], str]) -> None:
    from stockstream.cli_conventions import apply

    root = typer.main.get_command(app)
    apply(root, plain=True)  # the common options and old spellings, as every run has them
    missing = [" ".join(path) or "stockstream" for path in all_commands() if not EXAMPLES.get(" ".join(path))]
    assert not missing, f"commands without examples in stockstream/cli_examples.py: {missing}"
    for path, page in help_pages.items():
        examples = EXAMPLES[" ".join(path)]
        assert "Examples:" in page, path
        for example in examples:
            assert example in page, (path, example)  # each example on one line, as written
            words = shlex.split(example, comments=True)
            assert words[0] == "stockstream"
            _parse(root, words[1:])


def _parse(root, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Resolve the sub-commands of ``words`` and parse their options the way a run would (no execution)."""
    before = dict(os.environ)
    command, rest = parse_words(root, words)
    assert not hasattr(command, "resolve_command") or not rest, words
    assert dict(os.environ) == before, words


def test_yes_has_its_short_form(help_pages: dict[tuple[str, ...], str]) -> None:
    for path, page in help_pages.items():
        for line in page.splitlines():
            if re.search(r"(?<![\w-])--yes\b", line) and line.strip().startswith("-"):
                assert "-y, --yes" in line, (path, line)
    assert "-y, --yes" in help_pages[("replay",)]


def test_no_color_is_honoured() -> None:
    bad_symbol = ("query", "latest", "not!a!symbol")
    coloured = in_terminal(*bad_symbol, env={})
    assert "invalid instrument" in coloured and COLOUR.search(coloured), repr(coloured[:300])
    plain = in_terminal(*bad_symbol, env={"NO_COLOR": "1"})
    assert "invalid instrument" in plain and not COLOUR.search(plain), repr(plain[:300])
    help_text = in_terminal("stack", "--help", env={"NO_COLOR": "1"})
    assert "Commands" in help_text and not COLOUR.search(help_text), repr(help_text[:300])


def test_stack_status_json_with_nothing_running(tmp_path: Path) -> None:
    env = {"STACK_DIR": str(tmp_path / "stack"), "STACK_KAFKA_PORT": str(free_port()),
           "STACK_REDIS_PORT": str(free_port()), "STACK_PROMETHEUS_PORT": str(free_port()),
           "STACK_ALERTMANAGER_PORT": str(free_port()), "STACK_KAFKA_JMX_PORT": str(free_port()),
           "STACK_REDIS_EXPORTER_PORT": str(free_port())}  # every service on a port of its own (none answers)
    result = stockstream("stack", "status", "--json", env=env)
    assert result.returncode == 1
    status = json.loads(result.stdout)
    assert status["healthy"] is False and status["state_dir"] == str(tmp_path / "stack")
    assert {service["name"] for service in status["services"]} >= {"kafka", "redis", "prometheus"}
    assert all(service["state"] == "down" and service["pid"] is None and service["answering"] is False
               for service in status["services"])
    kafka = next(service for service in status["services"] if service["name"] == "kafka")
    assert kafka["address"] == f"127.0.0.1:{env['STACK_KAFKA_PORT']}"


@pytest.mark.integration
def test_stack_status_json_on_the_running_stack(stack) -> None:  # type: ignore[no-untyped-def]
    result = stockstream("stack", "status", "--json")
    status = json.loads(result.stdout)
    states = {service["name"]: service["state"] for service in status["services"]}
    for name in ("kafka", "redis", "prometheus"):
        assert states[name] in ("up", "external"), states  # external: started from another stack folder
    assert result.returncode == (0 if status["healthy"] else 1)
