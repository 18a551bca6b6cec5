"""Compiling generated Python source: one place for the rule that such code runs without builtins.

The strategy evaluation (:mod:`processors.core.strategies.codegen`) and the indicator update
(:mod:`processors.core.indicators`) are straight-line functions generated from checked input
(slot numbers, number literals, names by ``repr``); nothing of a user's text reaches the source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def compile_function(source: str, where: str, name: str) -> Callable[..., Any]:
    """The function ``name`` defined by ``source``, compiled with no builtins (``where``: its file name in tracebacks)."""
    namespace: dict[str, Any] = {"__builtins__": {}}
    exec(compile(source, where, "exec"), namespace)  # noqa: S102 - generated from checked input only (module docstring)
    function: Callable[..., Any] = namespace[name]
    return function
