"""The dependency rule (DESIGN "Layout"), read from the source with ``ast``.

Within ``ledger`` only the composition roots (``ledger.cli``, ``ledger.api``) import
``projections`` or ``executors``; ``projections`` never imports ``executors``; and no
modules import each other in a cycle. Imports inside functions count; those under
``if TYPE_CHECKING:`` count for the layers but not for cycles (they never run).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.paths import SRC

SRC = SRC
COMPOSITION_ROOTS = ("ledger.cli", "ledger.api")
# Importer prefix -> the prefixes it must not import.
FORBIDDEN = {
    "ledger": ("projections", "executors"),
    "projections": ("executors",),
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    where: str  # path:line, for the message
    type_checking_only: bool


def module_paths() -> dict[str, Path]:
    """Every module under src/ by dotted name (a package by its ``__init__``)."""
    modules = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def in_package(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for statement in node.body:
                inside.update(id(child) for child in ast.walk(statement))
    return inside


def imported_modules(
    node: ast.Import | ast.ImportFrom, module: str, modules: dict[str, Path]
) -> set[str]:
    """The modules under src/ a statement imports: ``from a import b`` imports the module
    ``a.b`` when there is one, else ``a``; ``import a.b.c`` imports ``a.b.c``."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: climb from this module's package
            package = module.split(".")
            if modules[module].name != "__init__.py":
                package.pop()
            base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names
        ]
    found = set()
    for name in names:
        while name and name not in modules:  # a name inside a module: the module
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def imports() -> Iterator[Import]:
    """Every import of a module under src/ by another, each at its statement."""
    modules = module_paths()
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        guarded = type_checking_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                where = f"src/{path.relative_to(SRC).as_posix()}:{node.lineno}"
                for target in sorted(imported_modules(node, module, modules)):
                    yield Import(module, target, where, id(node) in guarded)


def layer_violations() -> list[Import]:
    found = []
    for edge in imports():
        if any(in_package(edge.importer, root) for root in COMPOSITION_ROOTS):
            continue
        for layer, forbidden in FORBIDDEN.items():
            if in_package(edge.importer, layer) and any(
                in_package(edge.imported, banned) for banned in forbidden
            ):
                found.append(edge)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return [*path[path.index(child) :], child]
            elif child not in done:
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
                on_path.add(child)
    return None


def test_only_the_composition_roots_wire_the_layers_together() -> None:
    broken = [
        f"{edge.importer} imports {edge.imported} ({edge.where}): outside "
        f"{' and '.join(COMPOSITION_ROOTS)}, {edge.importer.split('.')[0]} must not import "
        f"{edge.imported.split('.')[0]}"
        for edge in layer_violations()
    ]
    assert not broken, "\n".join(broken)


def test_no_modules_import_each_other_in_a_cycle() -> None:
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for edge in imports():
        if not edge.type_checking_only:
            graph.setdefault(edge.importer, set()).add(edge.imported)
            where.setdefault((edge.importer, edge.imported), edge.where)
    cycle = find_cycle(graph)
    assert cycle is None, (
        "import cycle: "
        + " -> ".join(f"{a} ({where[a, b]})" for a, b in itertools.pairwise(cycle))
        + f" -> {cycle[-1]}"
    )


def test_the_checks_see_a_cycle_and_a_function_level_import() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # The worker entry point loads executors inside a function: the walk still sees it.
    assert any(
        edge.importer == "ledger.cli.worker" and edge.imported == "executors.worker"
        for edge in imports()
    )
