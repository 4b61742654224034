"""Searching model versions: name prefix, tags, alias, flavor, creation time; paged,
newest registration first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from projections.database import ViewDatabase
from projections.paging import Page, check_limit, decode_token, encode_token
from projections.registry import ALIASES, MODEL_TAGS, VERSION_TAGS, VERSIONS
from projections.timestamps import iso, to_microseconds


@dataclass(frozen=True)
class SearchQuery:
    """What to look for; every given criterion must hold (AND)."""

    name_prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)  # on the version or on its model
    alias: str = ""
    flavor: str = ""
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    include_deleted: bool = False
    limit: int = 50
    page_token: str = ""


def search_versions(db: ViewDatabase, query: SearchQuery) -> Page:
    check_limit(query.limit)
    where, params = _conditions(query)
    rows = db.execute(
        f"SELECT v.model, v.version, v.flavor, v.status, v.created_at_us, v.created_by, "
        f"v.created_position FROM {VERSIONS.name} v WHERE {' AND '.join(where) or 'TRUE'} "
        "ORDER BY v.created_position DESC LIMIT ?",
        (*params, query.limit + 1),
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    tags, aliases = _tags_and_aliases(db, [(r[0], r[1]) for r in rows])
    items = [
        {
            "model": model,
            "version": number,
            "ref": f"{model}:{number}",
            "flavor": flavor,
            "status": status,
            "tags": tags.get((model, number), {}),
            "aliases": aliases.get((model, number), []),
            "created_at": iso(created_at_us),
            "created_by": created_by,
        }
        for model, number, flavor, status, created_at_us, created_by, _ in rows
    ]
    return Page(items, encode_token(rows[-1][6]) if more else "")


def _conditions(query: SearchQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.page_token:
        where.append("v.created_position < ?")
        params.append(decode_token(query.page_token))
    if query.name_prefix:
        where.append("substr(v.model, 1, ?) = ?")
        params += [len(query.name_prefix), query.name_prefix]
    if query.flavor:
        where.append("v.flavor = ?")
        params.append(query.flavor)
    if not query.include_deleted:
        where.append("v.status != 'deleted'")
    if query.created_after is not None:
        where.append("v.created_at_us >= ?")
        params.append(to_microseconds(query.created_after))
    if query.created_before is not None:
        where.append("v.created_at_us < ?")
        params.append(to_microseconds(query.created_before))
    for key, value in sorted(query.tags.items()):
        where.append(
            f"(EXISTS (SELECT 1 FROM {VERSION_TAGS.name} t WHERE t.model = v.model "
            "AND t.version = v.version AND t.key = ? AND t.value = ?) "
            f"OR EXISTS (SELECT 1 FROM {MODEL_TAGS.name} m WHERE m.model = v.model "
            "AND m.key = ? AND m.value = ?))"
        )
        params += [key, value, key, value]
    if query.alias:
        where.append(
            f"EXISTS (SELECT 1 FROM {ALIASES.name} a WHERE a.model = v.model "
            "AND a.version = v.version AND a.alias = ?)"
        )
        params.append(query.alias)
    return where, params


def _tags_and_aliases(
    db: ViewDatabase, keys: list[tuple[str, int]]
) -> tuple[dict[tuple[str, int], dict[str, str]], dict[tuple[str, int], list[str]]]:
    """Tags and aliases of the given versions, in two queries."""
    tags: dict[tuple[str, int], dict[str, str]] = {}
    aliases: dict[tuple[str, int], list[str]] = {}
    if not keys:
        return tags, aliases
    which = " OR ".join(["(model = ? AND version = ?)"] * len(keys))
    params = [part for key in keys for part in key]
    for model, number, key, value in db.execute(
        f"SELECT model, version, key, value FROM {VERSION_TAGS.name} WHERE {which} ORDER BY key",
        params,
    ):
        tags.setdefault((model, number), {})[key] = value
    for model, number, alias in db.execute(
        f"SELECT model, version, alias FROM {ALIASES.name} WHERE {which} ORDER BY alias", params
    ):
        aliases.setdefault((model, number), []).append(alias)
    return tags, aliases
