"""MLflow's registry search filter and order_by, mapped onto the registry search's
conditions and orders (the grammar is read by :mod:`ledger.mlflow_filter`).

The registry answers::

    name = 'iris'    name LIKE 'ir%'    name ILIKE '%IS'    name != 'x'
    name IN ('a', 'b')    run_id = '...'    run_id IN ('...')    source_path = '...'
    version_number >= 3    tag.stage = 'prod'    tags.`mlflow.prompt.is_prompt` != 'true'

(models: ``name`` and tags; versions: also ``run_id``, ``source_path`` and
``version_number``). Anything else is an InvalidInputError (INVALID_PARAMETER_VALUE) saying
what is not supported.
"""

from __future__ import annotations

import re

from ledger.api.mlflow.fields import Fields
from ledger.errors import InvalidInputError
from ledger.mlflow_filter import Comparison
from ledger.mlflow_filter import parse_filter as parse_comparisons
from projections.registry_filters import MAX_RESULTS, Condition, Order, RecordSearch

_ATTRIBUTE_PREFIXES = ("attribute.", "attributes.")
# Each entity's searchable attributes, as MLflow names them -> the registry's field.
MODEL_ATTRIBUTES = {"name": "name"}
VERSION_ATTRIBUTES = {
    "name": "name", "run_id": "run_id", "source_path": "source", "version_number": "version",
}  # fmt: skip
_TIMES = {"creation_timestamp": "created", "last_updated_timestamp": "updated"}
MODEL_ORDER_KEYS = {"name": "name", "timestamp": "updated", **_TIMES}
VERSION_ORDER_KEYS = {"name": "name", "version_number": "version", **_TIMES}
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")


def record_search(
    fields: Fields, attributes: dict[str, str], order_keys: dict[str, str], default_limit: int
) -> RecordSearch:
    """The registry search a request's ``filter``, ``order_by``, ``max_results`` and
    ``page_token`` ask for, over ``attributes`` and tags, ordered by ``order_keys``."""
    limit = fields.number("max_results", default_limit)
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidInputError(f"max_results must be between 1 and {MAX_RESULTS}, got {limit}")
    return RecordSearch(
        conditions=parse_filter(fields.text("filter"), attributes),
        order=parse_order_by(fields.texts("order_by"), order_keys),
        limit=limit,
        page_token=fields.text("page_token"),
    )


def parse_filter(text: str, attributes: dict[str, str]) -> tuple[Condition, ...]:
    """The conditions of ``text`` ("" for none), over ``attributes`` and tags."""
    return tuple(_condition(comparison, attributes) for comparison in parse_comparisons(text))


def _condition(comparison: Comparison, attributes: dict[str, str]) -> Condition:
    field, key = _field(comparison, attributes)
    op, value = comparison.op, comparison.value
    numeric = field == "version"
    allowed: tuple[str, ...]
    if numeric:
        allowed = _NUMBER_OPS
    else:
        allowed = _STRING_OPS if field in ("name", "run_id") else _STRING_OPS[:4]
    if op not in allowed:
        subject = f"tag {key!r}" if field == "tag" else _mlflow_name(field, attributes)
        raise InvalidInputError(
            f"invalid filter: {subject} does not support {op} (use {', '.join(allowed)})"
        )
    if isinstance(value, tuple):
        return Condition(field, op, value, key)
    if numeric:
        if re.fullmatch(r"-?\d{1,18}", value):
            return Condition(field, op, int(value), key)
        raise InvalidInputError(
            f"invalid filter: version_number takes a whole number, got {value!r}"
        )
    if not comparison.quoted:
        raise InvalidInputError(f"invalid filter: expected a quoted string, got {value!r}")
    return Condition(field, op, value, key)


def _field(comparison: Comparison, attributes: dict[str, str]) -> tuple[str, str]:
    """(field, tag key) of the comparison's identifier."""
    if comparison.entity == "tags":
        return "tag", comparison.key
    name = comparison.key.lower()
    if comparison.entity in ("", "attributes") and name in attributes:
        return attributes[name], ""
    supported = ", ".join([*attributes, "tag.<key>"])
    raise InvalidInputError(
        f"invalid filter: {comparison.written!r} is not supported here (use {supported})"
    )


def _mlflow_name(field: str, attributes: dict[str, str]) -> str:
    return next(name for name, f in attributes.items() if f == field)


def parse_order_by(clauses: list[str], keys: dict[str, str]) -> tuple[Order, ...]:
    """``["name", "last_updated_timestamp DESC"]`` as orders over ``keys``."""
    orders = []
    for clause in clauses:
        parts = clause.split()
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        name = parts[0].strip("`").lower() if parts else ""
        for prefix in _ATTRIBUTE_PREFIXES:
            name = name.removeprefix(prefix)
        if len(parts) not in (1, 2) or direction not in ("ASC", "DESC") or name not in keys:
            raise InvalidInputError(
                f"invalid order_by {clause!r}: use one of {', '.join(keys)}, "
                "optionally followed by ASC or DESC"
            )
        orders.append(Order(keys[name], direction == "DESC"))
    fields = [o.field for o in orders]
    if len(set(fields)) != len(fields):
        raise InvalidInputError(f"order_by names a field twice: {clauses}")
    return tuple(orders)
