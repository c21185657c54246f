"""Leaves stay leaves: the import graph (read from the source, not by importing it).

Settings import nothing from the packages they configure, wire types import no store or
accounting code, and budget periods are defined in one module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import portway

SOURCE = Path(portway.__file__).parent
SETTINGS = ("portway.config", "portway.routing.config")
# What settings and wire types may import: other settings, the wire types, shared leaves.
LEAVES = (
    "portway.periods",
    "portway.records",
    "portway.retention",
    "portway.routing.patterns",
)
# Wire types: the protocol package and each resource home's wire module.
WIRE = (
    "portway.protocol",
    "portway.keys.wire",
    "portway.vector_stores.wire",
    "portway.assistants.wire",
)
PERIOD_NAMES = {"daily", "weekly", "monthly", "total"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in SOURCE.rglob("*.py")}


def _resolve(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(name: str) -> set[str]:
    """Every portway module ``name`` imports anywhere (functions and TYPE_CHECKING too)."""
    path = modules()[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, name, path.name == "__init__.py")
            found.add(module)
            # `from portway import periods` imports the module portway.periods.
            found.update(
                f"{module}.{alias.name}"
                for alias in node.names
                if f"{module}.{alias.name}" in modules()
            )
    return {m for m in found if m == "portway" or m.startswith("portway.")}


def _allowed(imported: str, allowed: tuple[str, ...]) -> bool:
    return imported == "portway" or any(
        imported == prefix or imported.startswith(prefix + ".") for prefix in allowed
    )


def violations(importers: list[str], allowed: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{importer} imports {imported}"
        for importer in importers
        for imported in imports_of(importer)
        if not _allowed(imported, allowed)
    )


def test_the_graph_is_read() -> None:
    assert set(SETTINGS) | set(LEAVES) <= set(modules())
    assert "portway.routing.config" in imports_of("portway.config")
    assert "portway.pipeline.base" in imports_of("portway.routing.router")


def test_settings_import_only_settings_and_leaves() -> None:
    assert violations(list(SETTINGS), (*SETTINGS, *LEAVES)) == []


def test_wire_types_import_no_store_accounting_or_routing_code() -> None:
    wire = [name for name in modules() if _allowed(name, WIRE)]
    assert set(WIRE) - {"portway.protocol"} <= set(wire)
    assert violations(wire, (*WIRE, *LEAVES)) == []


def test_leaves_import_nothing_of_portway() -> None:
    assert violations(list(LEAVES), ()) == []


def _period_sets(tree: ast.AST) -> Iterator[set[str]]:
    """String constants grouped by the tuple, list, set or subscript they appear in."""
    for node in ast.walk(tree):
        elements: list[ast.expr] = []
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elements = list(node.elts)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):
            elements = list(node.slice.elts)
        yield {e.value for e in elements if isinstance(e, ast.Constant) and e.value in PERIOD_NAMES}


def test_budget_periods_are_defined_in_one_module() -> None:
    definers = []
    for name, path in modules().items():
        if ".migrations." in name:
            continue  # a migration is a frozen copy of the schema at its time
        tree = ast.parse(path.read_text())
        if any(found >= {"daily", "weekly", "monthly"} for found in _period_sets(tree)):
            definers.append(name)
    assert definers == ["portway.periods"]
