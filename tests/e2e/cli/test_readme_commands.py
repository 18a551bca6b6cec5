"""Every command in the README's ``bash`` and ``console`` blocks works when copied (issue 20), the way
the docs tests run the docs' examples.

Each block is split into simple commands (``$`` lines of a console block, every line of a bash
block; ``\\`` continuations joined, comments dropped, ``&&`` and ``|`` split). Then, by program:

- ``stockstream …``: resolved through the real command tree and its options parsed the way a run
  parses them (a renamed option, a bad value, a missing sub-command fails here); every repository
  path it names exists. The ones that need no infrastructure (:data:`RUN`) are run for real, in a
  scratch folder that sees the repository's ``tests/`` and ``docs/``, and a console block's output
  lines after them must be what they print;
- ``make T``: the Makefile has target T; ``docker build --target S``: the Dockerfile has stage S;
- ``curl``: the URL's path is a route of the API; ``kubectl``/``docker push``/``export``: every
  repository path named exists (they act on a cluster or a registry, not run here).

A program the test does not know fails it, so a new kind of command gets a rule here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import typer.main

from stockstream.cli import app
from stockstream.cli_conventions import apply
from tests.support.cli_parse import parse_words
from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[3]
BLOCK = re.compile(r"^```(bash|console|sh)\n(.*?)^```", re.DOTALL | re.MULTILINE)
# stockstream commands run for real (quick, no services): the first words of the command line.
RUN = (("indicators",), ("--version",))
NOT_RUN = {"kubectl", "export"}


def blocks() -> list[tuple[str, str]]:
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def commands(kind: str, body: str) -> list[tuple[list[str], list[str]]]:
    """(words, the output lines shown after it) of every simple command of a block."""
    found: list[tuple[list[str], list[str]]] = []
    lines = body.replace("\\\n", " ").splitlines()
    for line in lines:
        if kind == "console" and not line.startswith("$ "):
            if found and line.strip():
                found[-1][1].append(line)
            continue
        text = line.removeprefix("$ ")
        words = shlex.split(text, comments=True)
        if not words:
            continue
        piece: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "|"):
                if piece:
                    found.append((piece, []))
                piece = []
            else:
                piece.append(word)
    return found


def every_command() -> list[tuple[list[str], list[str]]]:
    found = [command for kind, body in blocks() for command in commands(kind, body)]
    assert len(found) > 30
    return found


def _parse(root, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Resolve the sub-commands of ``words`` and parse their options the way a run would (no execution)."""
    if words and words[0] in ("--version", "-V", "--install-completion", "--show-completion"):
        return
    command, _rest = parse_words(root, words)
    assert not hasattr(command, "resolve_command"), f"{words}: names a group, not a command"


def repository_paths(words: list[str]) -> list[str]:
    """The words (or ``--option=value`` values) that name a file or folder of this repository."""
    values = [word.partition("=")[2] if word.startswith("-") else word for word in words]
    return [value for value in values if re.match(r"^(docs|tests|ops|bench|processors|stockstream|spark_jobs)/", value)]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("readme")
    for name in ("tests", "docs"):
        (folder / name).symlink_to(ROOT / name)
    return folder


def test_every_readme_command_parses_and_names_real_files() -> None:
    root = typer.main.get_command(app)
    apply(root, plain=True)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    from stockstream.api.app import create_app
    from stockstream.api.settings import ApiSettings

    api = create_app(ApiSettings(api_auth="off"))
    problems: list[str] = []
    for words, _ in every_command():
        program = Path(words[0]).name
        missing = [path for path in repository_paths(words) if not (ROOT / path).exists()]
        problems += [f"{' '.join(words)}: no {path} in the repository" for path in missing]
        if program == "stockstream":
            try:
                _parse(root, words[1:])
            except Exception as error:  # noqa: BLE001 - every failure is a README line that does not work
                problems.append(f"{' '.join(words)}: {type(error).__name__}: {getattr(error, 'message', error)}")
        elif program == "make":
            problems += [f"{' '.join(words)}: no target {target}" for target in words[1:]
                         if not re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE)]
        elif program == "docker":
            if words[1] == "build" and "--target" in words:
                stage = words[words.index("--target") + 1]
                if not re.search(rf"^FROM .* AS {re.escape(stage)}$", dockerfile, re.MULTILINE):
                    problems.append(f"{' '.join(words)}: no stage {stage} in the Dockerfile")
            elif words[1] not in ("build", "push"):
                problems.append(f"{' '.join(words)}: a docker command this test does not know")
        elif program == "curl":
            url = next(word for word in words[1:] if "localhost" in word or "127.0.0.1" in word)
            path = urlsplit(url if "://" in url else f"http://{url}").path
            scope = {"type": "http", "path": path, "method": "GET"}
            if not any(route.matches(scope)[0].name == "FULL" for route in api.routes):  # type: ignore[attr-defined]
                problems.append(f"{' '.join(words)}: {path} is no route of the API")
        elif program not in NOT_RUN and program != "head":
            problems.append(f"{' '.join(words)}: a program this test does not know ({program})")
    assert not problems, "\n".join(problems)


def test_readme_commands_that_need_nothing_run_and_print_what_it_shows(scratch: Path) -> None:
    ran = 0
    for words, shown in every_command():
        program = Path(words[0]).name
        if program == "head":
            done = subprocess.run(words, capture_output=True, text=True, cwd=scratch, timeout=60, check=False)
        elif program == "stockstream" and any(tuple(words[1:1 + len(prefix)]) == prefix for prefix in RUN):
            env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
            done = subprocess.run([STOCKSTREAM, *words[1:]], capture_output=True, text=True, cwd=scratch,
                                  timeout=300, check=False, env=env)
        else:
            continue
        ran += 1
        assert done.returncode == 0, (words, done.stdout[-2000:], done.stderr[-2000:])
        for line in shown:
            assert line in done.stdout.splitlines(), (words, line, done.stdout[-2000:])
    assert ran >= 3
