"""Judging one event against one rule: match, loop guard, chain limit, cooldown, ``when``.

Each returns the reason the rule does not act (None: it acts). ``when`` that is false
names the values it compared, so a skip says why without rerunning anything.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from executors.rules.context import version_fields
from ledger.bus import BusEvent
from ledger.domain.rule import rule_actor
from ledger.errors import InvalidInputError, NotFoundError
from ledger.expression_syntax import Access, Call, Compare, Field, ListOf, Literal, Node
from ledger.expressions import Expression
from ledger.rule_spec import RuleSpec
from projections.views import Views

Functions = dict[str, Any]


def rule_functions(views: Views) -> Functions:
    """``alias(model, alias)`` and ``latest(model)``: the version's fields, or None."""

    def version(ref: str) -> dict[str, Any] | None:
        try:
            return version_fields(dict(views.version(ref)))
        except (NotFoundError, InvalidInputError):
            return None

    return {
        "alias": lambda model, alias: version(f"{model}@{alias}"),
        "latest": lambda model: version(str(model)),
    }


def guard(spec: RuleSpec, rule: Mapping[str, Any], event: BusEvent, views: Views,
          max_chain: int) -> str | None:  # fmt: skip
    """Why the rule must not act on its own effects, or so soon again (None: it may)."""
    if event.actor == rule_actor(spec.name):
        return "loop guard: triggered by the rule's own action"
    correlation = event.correlation_id or event.id  # as executors.rules.firing.correlation
    if views.rule_fired_count(spec.name, correlation) >= max_chain:
        return (
            f"loop guard: fired {max_chain} times already in correlation {correlation} "
            "(LEDGER_RULE_MAX_CHAIN)"
        )
    last = rule.get("last_fired_at")
    if spec.cooldown_s and last:
        elapsed = time.time() - datetime.fromisoformat(last).timestamp()
        if elapsed < spec.cooldown_s:
            return f"cooldown: fired {elapsed:.0f} s ago, cooldown is {spec.cooldown_s:g} s"
    return None


def judge_when(spec: RuleSpec, context: Mapping[str, Any], functions: Functions) -> str | None:
    """Why ``when`` stops the rule (false, or it could not be evaluated); None when true."""
    try:
        expression = spec.condition()
        if expression is None or expression.evaluate(context, functions):
            return None
    except InvalidInputError as error:
        return f"when could not be evaluated: {error}"
    return f"when is false: {_explain(expression, context, functions)}"


def _explain(expression: Expression, context: Mapping[str, Any], functions: Functions) -> str:
    """A top-level comparison with the values on each side; else the expression."""
    root = expression.root
    if not isinstance(root, Compare):
        return expression.text
    sides = []
    for node in (root.left, root.right):
        value = Expression(expression.text, node).evaluate(context, functions)
        text = describe(node)
        sides.append(text if isinstance(node, Literal) else f"{text}={_show(value)}")
    return f"{sides[0]} {root.op} {sides[1]}"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def describe(node: Node) -> str:
    """The node as text (close to how it was written)."""
    if isinstance(node, Literal):
        return _show(node.value)
    if isinstance(node, Field):
        return ".".join(node.path)
    if isinstance(node, Access):
        return ".".join((describe(node.base), *node.path))
    if isinstance(node, ListOf):
        return "[" + ", ".join(describe(item) for item in node.items) + "]"
    if isinstance(node, Call):
        return f"{node.name}({', '.join(describe(arg) for arg in node.args)})"
    return "(...)"
