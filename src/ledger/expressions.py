"""A small, safe expression language for filters and rule conditions.

``metrics.accuracy >= alias('iris-classifier', 'champion').metrics.accuracy`` or
``data.tags.stage in [candidate, staging]``: literals, dotted field access on plain
dict/list values, comparisons, ``in`` / ``not in``, ``and`` / ``or`` / ``not``,
parentheses, and calls to the few functions named at compile time. The text is
tokenized and parsed by hand into a tree of frozen dataclasses; nothing is ever handed
to Python's ``eval``, and no Python attribute is reachable. Names may hold ``-``
(``iris-classifier``, ``tags.f1-score``): there is no arithmetic to confuse it with.

Semantics: a missing field is None; ordering (``< <= > >=``) with None is False,
``==`` / ``!=`` compare it; ``in`` is membership by equality (``x in null`` is False,
``x not in null`` True); ordering between a number and a string raises ExpressionError.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidInputError
from ledger.expression_syntax import (
    Access,
    Compare,
    Field,
    ListOf,
    Literal,
    Logical,
    Node,
    Not,
    parse,
)

__all__ = ["Expression", "ExpressionError", "compile_expression", "lookup"]


class ExpressionError(InvalidInputError):
    """An expression met values it cannot judge (e.g. ``'a' < 3``) when evaluated."""


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path through dicts (lists by integer index); None when missing."""
    return _walk(context, tuple(path.split(".")))


def _walk(value: Any, path: Sequence[str]) -> Any:
    for segment in path:
        if isinstance(value, Mapping):
            value = value.get(segment)
        elif isinstance(value, list | tuple) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None  # never getattr: a Python object's attributes stay out of reach
    return value


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False  # true is not 1
    return bool(left == right)


def _contains(left: Any, right: Any) -> bool:
    if right is None:
        return False
    if isinstance(right, list | tuple):
        return any(_equal(left, item) for item in right)
    if isinstance(right, str | Mapping) and isinstance(left, str):
        return left in right
    raise ExpressionError(f"cannot test {_show(left)} in {_show(right)}")


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op == "in":
        return _contains(left, right)
    if op == "not in":
        return not _contains(left, right)
    if left is None or right is None:
        return False
    if not (
        (_is_number(left) and _is_number(right))
        or (isinstance(left, str) and isinstance(right, str))
    ):
        raise ExpressionError(f"cannot compare {_show(left)} {op} {_show(right)}")
    return _ORDERINGS[op](left, right)


Functions = Mapping[str, Callable[..., Any]]


def _evaluate(node: Node, context: Mapping[str, Any], functions: Functions) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Field):
        return _walk(context, node.path)
    if isinstance(node, Access):
        return _walk(_evaluate(node.base, context, functions), node.path)
    if isinstance(node, ListOf):
        return [_evaluate(item, context, functions) for item in node.items]
    if isinstance(node, Compare):
        left = _evaluate(node.left, context, functions)
        return _compare(node.op, left, _evaluate(node.right, context, functions))
    if isinstance(node, Not):
        return not _evaluate(node.operand, context, functions)
    if isinstance(node, Logical):
        judge = all if node.op == "and" else any
        return judge(bool(_evaluate(item, context, functions)) for item in node.operands)
    function = functions.get(node.name)
    if function is None:
        raise ExpressionError(f"{node.name}() is not available here")
    args = [_evaluate(arg, context, functions) for arg in node.args]
    try:
        inspect.signature(function).bind(*args)
    except TypeError as error:
        raise ExpressionError(f"{node.name}(): {error}") from None
    return function(*args)


@dataclass(frozen=True)
class Expression:
    """A compiled expression: its source text and its tree."""

    text: str
    root: Node

    def evaluate(self, context: Mapping[str, Any], functions: Functions | None = None) -> Any:
        """The expression's value over ``context``; ExpressionError on a type error."""
        return _evaluate(self.root, context, functions or {})


def compile_expression(text: str, *, functions: Collection[str] = ()) -> Expression:
    """Parse ``text``; InvalidInputError naming the 1-based column of anything outside the
    grammar, including calls to functions other than ``functions``."""
    return Expression(text, parse(text, functions))
