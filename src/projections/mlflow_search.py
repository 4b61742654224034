"""MLflow's search filters and orderings, the part of their grammar the ledger answers.

A filter is comparisons joined by ``AND``: ``metrics.acc > 0.9 AND params.C = '1.0' AND
tags.`mlflow.user` LIKE 'ro%' AND attributes.status = 'FINISHED'``. Operators: ``=``,
``!=``, ``<``, ``<=``, ``>``, ``>=`` (numbers), ``=``, ``!=``, ``LIKE``, ``ILIKE`` (text).
Anything else (``OR``, ``IN``, ``IS NULL``, datasets...) is refused with a message saying
so, never answered wrongly. The grammar is read by :mod:`ledger.mlflow_filter`; records are
matched here, in Python: a run (or experiment, or logged model)
as ``{"attributes": ..., "params": ..., "tags": ..., "metrics": ...}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidInputError
from ledger.mlflow_filter import ENTITIES, Comparison
from ledger.mlflow_filter import parse_filter as parse_comparisons

Record = dict[str, dict[str, Any]]
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_TEXT_OPS = ("=", "!=", "LIKE", "ILIKE")
_KINDS = {"metrics": "number", "params": "text", "tags": "text", "attributes": ""}
_ANSWERED = (
    "the ledger answers comparisons (=, !=, <, <=, >, >=, LIKE, ILIKE) of metrics., params., "
    "tags. and attributes. joined by AND"
)


@dataclass(frozen=True)
class Condition:
    entity: str  # metrics | params | tags | attributes
    key: str
    op: str
    value: str | float


def parse_filter(
    text: str, attributes: dict[str, str], default_entity: str = ""
) -> list[Condition]:
    """The conditions of a filter. ``attributes``: which attributes may be compared, each
    "text" or "number"; ``default_entity``: what a key without a prefix means ("": refused)."""
    return [
        _condition(comparison, attributes, default_entity) for comparison in parse_comparisons(text)
    ]


def _condition(
    comparison: Comparison, attributes: dict[str, str], default_entity: str
) -> Condition:
    entity = comparison.entity or default_entity
    if entity not in _KINDS:
        raise InvalidInputError(
            f"unknown entity {comparison.entity or comparison.key!r} in the filter: use "
            "metrics., params., tags. or attributes."
        )
    key, op, value = comparison.key, comparison.op, comparison.value
    if isinstance(value, tuple):
        raise InvalidInputError(f"{entity}.{key} {op} (...) is not supported: {_ANSWERED}")
    shown = repr(value) if comparison.quoted else value
    kind = _KINDS[entity]
    if entity == "attributes":
        if key not in attributes:
            raise InvalidInputError(
                f"cannot filter on attribute {key!r}; known: {', '.join(sorted(attributes))}"
            )
        kind = attributes[key]
    if kind == "number":
        if comparison.quoted or op not in _NUMBER_OPS:
            raise InvalidInputError(f"{entity}.{key} is compared with a number ({op} {shown})")
        return Condition(entity, key, op, float(value))
    if not comparison.quoted or op not in _TEXT_OPS:
        raise InvalidInputError(
            f"{entity}.{key} is compared with quoted text by =, !=, LIKE or ILIKE ({op} {shown})"
        )
    return Condition(entity, key, op, value)


def _like(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
    "LIKE": lambda a, b: _like(b, ignore_case=False).fullmatch(a) is not None,
    "ILIKE": lambda a, b: _like(b, ignore_case=True).fullmatch(a) is not None,
}


def matches(record: Record, conditions: list[Condition]) -> bool:
    """Whether the record meets every condition (a missing metric, param or tag: no)."""
    for condition in conditions:
        value = record[condition.entity].get(condition.key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if not _COMPARE[condition.op](value, condition.value):
            return False
    return True


@dataclass(frozen=True)
class Ordering:
    entity: str
    key: str
    ascending: bool


def parse_order_by(
    clauses: list[str], attributes: dict[str, str], default_entity: str = "attributes"
) -> list[Ordering]:
    """``["metrics.acc DESC", "attributes.start_time"]`` as orderings."""
    orderings = []
    for clause in clauses:
        words = clause.strip().rsplit(None, 1)
        ascending = True
        if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
            ascending = words[1].upper() == "ASC"
            clause = words[0]
        prefix, dot, key = clause.strip().partition(".")
        entity = ENTITIES.get(prefix.lower()) if dot else default_entity
        key = (key if dot else prefix).strip('`"')
        if entity is None or not key or (entity == "attributes" and key not in attributes):
            raise InvalidInputError(
                f"cannot order by {clause.strip()[:200]!r}: give metrics.KEY, params.KEY, "
                f"tags.KEY or one of {', '.join(sorted(attributes))}, then ASC or DESC"
            )
        orderings.append(Ordering(entity, key, ascending))
    return orderings


def sort_records(records: list[Record], orderings: list[Ordering]) -> list[Record]:
    """Sorted by each ordering in turn (the last one first: Python's sort is stable);
    records without the value come last, whichever the direction."""
    for ordering in reversed(orderings):
        present = [r for r in records if _sortable(r[ordering.entity].get(ordering.key))]
        missing = [r for r in records if not _sortable(r[ordering.entity].get(ordering.key))]
        present.sort(key=lambda r: r[ordering.entity][ordering.key], reverse=not ordering.ascending)
        records = present + missing
    return records


def _sortable(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def needed_entities(conditions: list[Condition], orderings: list[Ordering]) -> dict[str, set[str]]:
    """Which keys of metrics, params and tags a search must load to filter and sort."""
    needed: dict[str, set[str]] = {"metrics": set(), "params": set(), "tags": set()}
    items: list[Condition | Ordering] = [*conditions, *orderings]
    for item in items:
        if item.entity in needed:
            needed[item.entity].add(item.key)
    return needed
