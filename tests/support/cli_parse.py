"""Parse a ``stockstream`` command line the way a run would, without running it (the CLI tests)."""

from __future__ import annotations

from typing import Any


def parse_words(root: Any, words: list[str]) -> tuple[Any, list[str]]:
    """Resolve the sub-commands of ``words`` and parse their options; the last command and what is left.

    Every click context is closed before returning: a common option (``--redis-url`` …) sets its
    variable until its context closes, and an open one would leak it into this process's environment.
    """
    def remaining(context: Any) -> list[str]:
        protected = getattr(context, "_protected_args", None) or getattr(context, "protected_args", None) or []
        return [*protected, *context.args]

    context = root.make_context("stockstream", list(words), resilient_parsing=False)
    contexts = [context]
    try:
        command, rest = root, remaining(context)
        while hasattr(command, "resolve_command") and rest:
            name, command, rest = command.resolve_command(context, rest)
            context = command.make_context(name, list(rest), parent=context)
            contexts.append(context)
            rest = remaining(context) if hasattr(command, "resolve_command") else []
        return command, rest
    finally:
        for opened in reversed(contexts):
            opened.close()
