"""The package graph: every module imports, arrows point one way, no import cycle.

Layers, lowest first: ``gateway.core`` (standard library only) ← ``drivers`` (hardware
seams) and the domain packages of ``gateway`` ← the composition layer (``gateway.app``,
``gateway.cli``, ``gateway.features``) ← ``simulator`` (which also plays the police receiver's peers). ``receiver`` stands beside the
gateway and shares its core and wire model. Imports under ``if TYPE_CHECKING:`` count for the
layering (a type is a dependency too) but not for cycles (they never run).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "drivers", "firmware_stubs", "simulator", "receiver")
COMPOSITION = ("gateway.app", "gateway.cli", "gateway.features")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (a module, or the package it is in)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, *, typing_only: bool = False) -> Iterator[tuple[str, bool]]:
    """(imported name, under TYPE_CHECKING) for every import in ``tree``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.body:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), typing_only=True)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, typing_only
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield f"{node.module}.{alias.name}", typing_only
        else:
            yield from _imports(node, typing_only=typing_only)


def _edges() -> dict[str, dict[str, bool]]:
    """module → {imported project module: only under TYPE_CHECKING}."""
    graph: dict[str, dict[str, bool]] = {}
    for module, path in MODULES.items():
        targets: dict[str, bool] = {}
        for name, typing_only in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = _resolve(name)
            if target and target != module:
                targets[target] = targets.get(target, True) and typing_only
        graph[module] = targets
    return graph


GRAPH = _edges()


def _layer(module: str) -> str:
    if module.startswith("gateway.core"):
        return "core"
    if any(module == c or module.startswith(c + ".") for c in COMPOSITION):
        return "composition"
    return module.split(".")[0] if not module.startswith("gateway") else "domain"


ALLOWED = {
    "core": {"core"},
    "firmware_stubs": {"firmware_stubs"},
    "drivers": {"core", "drivers"},
    "domain": {"core", "domain"},
    "composition": {"core", "domain", "drivers", "composition"},
    "receiver": {"core", "domain", "receiver"},
    "simulator": {
        "core", "domain", "drivers", "composition", "simulator", "firmware_stubs", "receiver"},
}


#: MicroPython firmware: it imports ``machine``, which only the host shim provides
NOT_IMPORTABLE_ON_HOST = {"firmware_stubs.button_node"}


@pytest.mark.parametrize("module", sorted(set(MODULES) - NOT_IMPORTABLE_ON_HOST))
def test_every_module_imports(module: str) -> None:
    importlib.import_module(module)


#: adapters that join a driver to its domain logic: they live beside the logic they serve and
#: may use the driver (the serial bus: frames and the port from drivers, decisions from
#: gateway.serialbus.logic); the logic itself never imports a driver
ADAPTERS = {"gateway.serialbus.bus": {"drivers"}}


def test_arrows_point_one_way() -> None:
    upward = [
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if _layer(target) not in ALLOWED[_layer(module)] | ADAPTERS.get(module, set())
    ]
    assert upward == []


def test_core_uses_the_standard_library_only() -> None:
    import sys

    foreign = []
    for module, path in MODULES.items():
        if _layer(module) != "core":
            continue
        for name, _ in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("gateway", "__future__"):
                foreign.append(f"{module} imports {name}")
    assert foreign == []


def _package(module: str) -> str:
    """The unit of the cycle check: a sub-package of gateway (``gateway.alarms``), else the
    module's top package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "gateway" and len(parts) > 1 else parts[0]


def test_no_import_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        source = _package(module)
        for target, typing_only in targets.items():
            if not typing_only and _package(target) != source:
                graph.setdefault(source, set()).add(_package(target))
    assert _cycles(graph) == []


def test_no_import_cycle_between_modules() -> None:
    graph = {m: {t for t, typing_only in ts.items() if not typing_only} for m, ts in GRAPH.items()}
    assert _cycles(graph) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
