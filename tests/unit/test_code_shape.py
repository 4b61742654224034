"""The size rule (DESIGN "Layout"): no function over 60 lines, no module over 400 lines
in src/. No exceptions: split what grows past them by concern."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.paths import SRC

SRC = SRC
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def source_files() -> Iterator[Path]:
    yield from sorted(SRC.rglob("*.py"))


Function = ast.FunctionDef | ast.AsyncFunctionDef


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, Function]]:
    """Every function and method, with its qualified name (``Class.method``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = prefix + node.name
            if not isinstance(node, ast.ClassDef):
                yield name, node
            yield from functions(node, name + ".")
        else:
            yield from functions(node, prefix)


def long_modules() -> dict[str, int]:
    lengths = {
        path.relative_to(SRC).as_posix(): len(path.read_text().splitlines())
        for path in source_files()
    }
    return {path: lines for path, lines in lengths.items() if lines > MAX_MODULE_LINES}


def long_functions() -> dict[str, tuple[int, int]]:
    """``path:name`` -> (line, length) of every function over the limit."""
    found: dict[str, tuple[int, int]] = {}
    for path in source_files():
        for name, node in functions(ast.parse(path.read_text())):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found[f"{path.relative_to(SRC).as_posix()}:{name}"] = (node.lineno, length)
    return found


def test_no_module_is_over_400_lines() -> None:
    too_long = [
        f"src/{path} has {lines} lines (at most {MAX_MODULE_LINES}): split it by concern"
        for path, lines in long_modules().items()
    ]
    assert not too_long, "\n".join(too_long)


def test_no_function_is_over_60_lines() -> None:
    too_long = [
        f"src/{where.replace(':', f':{line} ')} has {length} lines (at most {MAX_FUNCTION_LINES})"
        for where, (line, length) in long_functions().items()
    ]
    assert not too_long, "\n".join(too_long)
