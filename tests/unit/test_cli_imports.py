"""Starting ``stockstream`` imports only the CLI shell: each command imports its engine, notifier, stack
manager or schemas when it runs (stockstream/commands/*). Every command line a person types, a script
runs or a test spawns pays for what the start imports (bench/bench_cli_startup.py measures it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# What some command needs, but no start should import (each is hundreds of ms or more of imports).
NOT_AT_START = (
    "processors.core.strategy",  # the engine and the rule language (indicators, backtest, process)
    "processors.notify.supervisor",  # the notifier (notify)
    "stockstream.stack.manager",  # the local stack (stack, run)
    "schemas.events",  # every event model (tail, query's decoding, the services)
    "confluent_kafka",
    "quixstreams",
    "numpy",
)


def _modules_after(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
                          capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_cli_imports_no_command_s_work_until_it_runs():
    loaded = _modules_after("import stockstream.cli")
    assert "stockstream.commands.indicators" in loaded  # every command is registered (its help is listed)
    assert not [name for name in NOT_AT_START if name in loaded]


@pytest.mark.parametrize("command", ["indicators", "notify", "stack", "tail", "query", "process"])
def test_a_command_s_help_imports_no_command_s_work(command):
    loaded = _modules_after(  # the console script's own path (``main`` exits after the help)
        f"import sys\nsys.argv = ['stockstream', {command!r}, '--help']\nfrom stockstream.cli import main\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert done.code in (0, None), done.code")
    assert not [name for name in NOT_AT_START if name in loaded]


def test_the_version_is_the_installed_distribution_s():
    done = subprocess.run([sys.executable, "-c", "from stockstream.cli import main; main()", "--version"],
                          capture_output=True, text=True, check=True, timeout=120)
    from importlib.metadata import version

    assert done.stdout.strip() == f"stockstream {version('stockstream')}"
