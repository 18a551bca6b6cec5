"""The floors of docs/CONTRIBUTING.md hold: each package imports only from the floors below it, and no
two modules import each other, directly or round a longer circle (imports inside functions count too).

Floors, lowest first: ``schemas`` ← ``processors.core`` ← ``processors.runtime`` ← the services
(``processors.*``) and ``spark_jobs`` ← ``stockstream`` (the CLI, API and dashboard shell).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "processors", "spark_jobs", "stockstream")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (a module, or the package holding a name), None if outside."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _floor(module: str) -> int:
    if module.startswith("schemas"):
        return 0
    if module.startswith("processors.core"):
        return 1
    if module.startswith("processors.runtime") or module == "processors":
        return 2
    if module.startswith(("processors.", "spark_jobs")):
        return 3
    return 4


def test_every_package_is_found() -> None:
    assert {"schemas.events", "processors.core.indicators", "processors.runtime.settings",
            "spark_jobs.backfill.job", "stockstream.cli"} <= MODULES.keys()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_from_its_own_floor_or_below(module: str) -> None:
    upward = sorted(target for target in GRAPH[module] if _floor(target) > _floor(module))
    assert not upward, f"{module} (floor {_floor(module)}) imports from a higher floor: {upward}"


def test_services_and_spark_jobs_never_import_the_shell() -> None:
    offenders = sorted(module for module, targets in GRAPH.items()
                       if not module.startswith("stockstream") and any(t.startswith("stockstream") for t in targets))
    assert not offenders


def test_no_import_circle() -> None:
    """Tarjan's strongly connected components: every component must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not circles, f"modules importing each other: {circles}"
