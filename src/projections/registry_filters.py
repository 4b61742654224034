"""Searching models and versions by conditions (another registry's filter language, parsed
elsewhere into :class:`Condition`), in a chosen order, a page at a time.

Pages continue after the last row's sort key (keyset paging: a page token holds that key),
so they stay stable while models and versions are added. Every order ends with the name
(and, for versions, the number), which makes the key unique. A tag condition probes the
tag tables' primary keys (``!=``: no tag of that key with that value, a missing tag
included: a filter that excludes one value keeps what has no such tag).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson

from ledger.errors import InvalidInputError
from ledger.storage.database import LedgerDatabase
from projections.paging import Page
from projections.registry import MODEL_TAGS, MODELS, VERSION_SPECS, VERSION_TAGS, VERSIONS
from projections.registry_records import (
    ModelRecord,
    VersionRecord,
    gather_models,
    gather_versions,
    model_rows,
    select_row,
    version_rows,
)

R = TypeVar("R", ModelRecord, VersionRecord)
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
PATTERNS = ("LIKE", "ILIKE")
LISTS = ("IN", "NOT IN")
MAX_RESULTS = 10_000


@dataclass(frozen=True)
class Condition:
    """``field op value``: field is name, run_id, source or version (a number), or tag
    (the tag ``key``); ``value`` is a tuple for IN and NOT IN."""

    field: str
    op: str
    value: str | int | tuple[str, ...]
    key: str = ""


@dataclass(frozen=True)
class Order:
    """Sort by ``field``: name, created or updated, and for versions also version."""

    field: str
    descending: bool = False


@dataclass(frozen=True)
class RecordSearch:
    conditions: tuple[Condition, ...] = ()
    order: tuple[Order, ...] = ()
    limit: int = 100
    page_token: str = ""


# The SQL of each field: models are ``m``, versions ``v`` and their specs ``s``. Creation
# order is log order (the position of the model's or version's first event).
MODEL_COLUMNS = {"name": "m.name", "created": "m.created_position", "updated": "m.updated_at_us"}
VERSION_COLUMNS = {
    "name": "v.model", "version": "v.version", "created": "v.created_position",
    "updated": "s.updated_at_us", "run_id": "s.run_id", "source": "s.source",
}  # fmt: skip
# The record keys the order fields are read from (for the next page's token).
_MODEL_KEYS = {"name": "name", "created": "position", "updated": "updated_at_us"}
_VERSION_KEYS = {"name": "model", "version": "version", "created": "position",
                 "updated": "updated_at_us"}  # fmt: skip


def search_model_records(db: LedgerDatabase, query: RecordSearch) -> Page[ModelRecord]:
    """Live models meeting every condition (fields name and tag), ``query.order`` then name."""
    order = _complete(query.order, (Order("name"),), MODEL_COLUMNS)
    where, params = _where(db, query, order, MODEL_COLUMNS, MODEL_TAGS.name, "t.model = m.name")
    page = f"SELECT m.name, {_order_keys(order, MODEL_COLUMNS)} FROM {MODELS.name} m WHERE {where}"
    ranks = select_row("r", model="name", created="rn")
    rows = db.execute(_ranked(page, "name", order, MODEL_COLUMNS, ranks) + model_rows("ranked"),
                      (*params, query.limit + 1))  # fmt: skip
    models = gather_models(rows)
    ranked = sorted((rank, name) for what, name, _, _, _, rank, *_ in rows if what == "r")
    return _page([models[name] for _, name in ranked], query.limit, order, _MODEL_KEYS)


def search_version_records(db: LedgerDatabase, query: RecordSearch) -> Page[VersionRecord]:
    """Live versions meeting every condition, ``query.order`` then name and newest number.

    Newest or oldest first with a tag to equal, the walk follows that tag's index (key,
    value, registration position) and stops after a page, the other conditions filtering."""
    order = _complete(query.order, (Order("name"), Order("version", True)), VERSION_COLUMNS)
    driving = _driving_tag(query, order)
    columns = VERSION_COLUMNS | ({"created": "d.created_position"} if driving else {})
    owner = "t.model = v.model AND t.version = v.version"
    rest = replace(query, conditions=tuple(c for c in query.conditions if c is not driving))
    where, params = _where(db, rest, order, columns, VERSION_TAGS.name, owner)
    tables = f"{VERSIONS.name} v "
    if driving is not None:
        tables = (f"{VERSION_TAGS.name} d JOIN {tables}ON v.model = d.model "
                  "AND v.version = d.version ")  # fmt: skip
        where, params = f"d.key = ? AND d.value = ? AND {where}", [driving.key, driving.value,
                                                                     *params]  # fmt: skip
    if any(o.field == "updated" for o in order) or any(
        c.field in ("run_id", "source") for c in query.conditions
    ):  # the specs only where a condition or the order reads them (a probe per candidate)
        tables += f"JOIN {VERSION_SPECS.name} s ON s.model = v.model AND s.version = v.version "
    page = (
        f"SELECT v.model, v.version, {_order_keys(order, columns)} "
        f"FROM {tables}WHERE v.status != 'deleted' AND {where}"
    )
    ranks = select_row("r", model="model", version="version", created="rn")
    rows = db.execute(_ranked(page, "model, version", order, columns, ranks)
                      + version_rows("ranked"), (*params, query.limit + 1))  # fmt: skip
    versions = gather_versions(rows)
    ranked = sorted((rank, model, n) for what, model, n, _, _, rank, *_ in rows if what == "r")
    found = [versions[model, number] for _, model, number in ranked]
    return _page(found, query.limit, order, _VERSION_KEYS)


def _driving_tag(query: RecordSearch, order: tuple[Order, ...]) -> Condition | None:
    """The first tag to equal, when the order is by creation first (else None)."""
    if order[0].field != "created":
        return None
    return next((c for c in query.conditions if c.field == "tag" and c.op == "="), None)


def _order_keys(order: tuple[Order, ...], columns: dict[str, str]) -> str:
    return ", ".join(f"{columns[o.field]} AS k{i}" for i, o in enumerate(order))


def _ranked(
    page: str, keys: str, order: tuple[Order, ...], columns: dict[str, str], ranks: str
) -> str:
    """``page`` (whose rows have ``keys`` and the order's values k0, k1...) sorted and cut
    to a page, as the relation ``ranked`` with each row's rank, and the ``ranks`` rows
    giving those: the page's order as the database sorts (its collation), never re-sorted
    here."""
    by_sql = _order_sql(order, columns)
    by_keys = ", ".join(f"k{i} {'DESC' if o.descending else 'ASC'}" for i, o in enumerate(order))
    return (
        f"WITH page AS ({page} ORDER BY {by_sql} LIMIT ?), ranked AS (SELECT {keys}, "
        f"ROW_NUMBER() OVER (ORDER BY {by_keys}) AS rn FROM page) {ranks} FROM ranked UNION ALL "
    )


def _complete(
    order: tuple[Order, ...], tail: tuple[Order, ...], columns: dict[str, str]
) -> tuple[Order, ...]:
    """The order asked for, then the fields of ``tail`` it does not sort by already."""
    fields = [o.field for o in order]
    for o in order:
        if o.field not in columns or o.field in ("run_id", "source"):
            raise InvalidInputError(f"cannot order by {o.field!r}")
    if len(set(fields)) != len(fields):
        raise InvalidInputError(f"the order names a field twice: {', '.join(fields)}")
    return order + tuple(t for t in tail if t.field not in fields)


def _order_sql(order: tuple[Order, ...], columns: dict[str, str]) -> str:
    return ", ".join(f"{columns[o.field]} {'DESC' if o.descending else 'ASC'}" for o in order)


def _where(
    db: LedgerDatabase,
    query: RecordSearch,
    order: tuple[Order, ...],
    columns: dict[str, str],
    tags: str,
    owner: str,
) -> tuple[str, list[Any]]:
    """The WHERE clause of ``query``'s conditions and page, and its parameters."""
    if not 1 <= query.limit <= MAX_RESULTS:
        raise InvalidInputError(f"max_results must be between 1 and {MAX_RESULTS}")
    clauses: list[str] = []
    params: list[Any] = []
    for condition in query.conditions:
        if condition.field == "tag":
            clause, values = _tag_sql(db.kind, condition, tags, owner)
        elif condition.field in columns and condition.field not in ("created", "updated"):
            clause, values = _column_sql(db.kind, condition, columns[condition.field])
        else:
            raise InvalidInputError(f"cannot search by {condition.field!r}")
        clauses.append(clause)
        params += values
    if query.page_token:
        clause, values = _after(order, columns, decode_key(query.page_token, order))
        clauses.append(clause)
        params += values
    return " AND ".join(clauses) or "TRUE", params


def _tag_sql(kind: str, condition: Condition, tags: str, owner: str) -> tuple[str, list[Any]]:
    """A tag's value, read by a scalar subquery (a primary-key probe per candidate: a planner
    cannot turn it into a join over every row of that tag), compared; ``!=``: no such tag
    with that value."""
    if condition.op not in ("=", "!=", *PATTERNS):
        raise InvalidInputError(f"tags compare with =, !=, LIKE or ILIKE, not {condition.op}")
    value = f"(SELECT t.value FROM {tags} t WHERE {owner} AND t.key = ?)"
    if condition.op in PATTERNS:
        test, values = _pattern_sql(kind, condition.op, value, str(condition.value))
        return test, [condition.key, *values]
    if condition.op == "=":
        return f"{value} = ?", [condition.key, condition.value]
    exists = f"EXISTS (SELECT 1 FROM {tags} t WHERE {owner} AND t.key = ? AND t.value = ?)"
    return f"NOT {exists}", [condition.key, condition.value]


def _column_sql(kind: str, condition: Condition, column: str) -> tuple[str, list[Any]]:
    op, value = condition.op, condition.value
    numeric = column == "v.version"
    if numeric != isinstance(value, int) or (numeric and op not in COMPARISONS):
        raise InvalidInputError(f"{condition.field} {op} {value!r} is not a valid comparison")
    if op in COMPARISONS:
        if not numeric and op not in ("=", "!="):
            raise InvalidInputError(f"{condition.field} compares with =, !=, LIKE, ILIKE, IN")
        return f"{column} {op} ?", [value]
    if op in PATTERNS:
        return _pattern_sql(kind, op, column, str(value))
    if op in LISTS and isinstance(value, tuple) and value:
        return f"{column} {op} ({', '.join('?' * len(value))})", list(value)
    raise InvalidInputError(f"{condition.field} {op} {value!r} is not a valid comparison")


def _pattern_sql(kind: str, op: str, column: str, pattern: str) -> tuple[str, list[Any]]:
    """SQL's LIKE (case-sensitive, ``\\`` escapes) or ILIKE, the same on both stores: SQLite's
    LIKE ignores case, so its LIKE is a GLOB."""
    if kind == "postgres":
        return f"{column} {op} ?", [pattern]
    if op == "ILIKE":
        return f"{column} LIKE ? ESCAPE '\\'", [pattern]
    return f"{column} GLOB ?", [like_to_glob(pattern)]


def like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, ``\\`` escaping the next character) as a GLOB."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            char = next(chars, "\\")
            out.append(f"[{char}]" if char in "*?[" else char)
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(f"[{char}]" if char in "*?[" else char)
    return "".join(out)


def _after(
    order: tuple[Order, ...], columns: dict[str, str], last: list[Any]
) -> tuple[str, list[Any]]:
    """Rows after ``last`` (the previous page's last sort key) in ``order``."""
    alternatives, params = [], []
    for i, current in enumerate(order):
        equal = [f"{columns[o.field]} = ?" for o in order[:i]]
        step = f"{columns[current.field]} {'<' if current.descending else '>'} ?"
        alternatives.append("(" + " AND ".join([*equal, step]) + ")")
        params += [*last[:i], last[i]]
    return "(" + " OR ".join(alternatives) + ")", params


def _page(items: list[R], limit: int, order: tuple[Order, ...], keys: dict[str, str]) -> Page[R]:
    if len(items) <= limit:
        return Page(items, "")
    last: Any = items[limit - 1]
    return Page(items[:limit], encode_key([last[keys[o.field]] for o in order]))


def encode_key(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": values})).decode()


def decode_key(token: str, order: tuple[Order, ...]) -> list[Any]:
    """The sort key a page token holds (a name for name, else a number); InvalidInputError
    for anything else."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != len(order)
        or not all(
            isinstance(v, str) if o.field == "name" else _is_number(v)
            for v, o in zip(values, order, strict=True)
        )
    ):
        raise InvalidInputError("invalid page token: pass the next_page_token of the same search")
    return values


def _is_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
