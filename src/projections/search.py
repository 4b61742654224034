"""Searching model versions: name prefix, tags, alias, flavor, creation time; paged,
newest registration first."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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


_COLUMNS = (
    "v.model, v.version, v.flavor, v.status, v.created_at_us, v.created_by, v.created_position"
)


def search_versions(db: ViewDatabase, query: SearchQuery) -> Page:
    check_limit(query.limit)
    probes = _probe_tags(db, query)
    driving = _driving_tag(probes)
    if driving is None:
        where, params = _conditions(query, probes, "v.created_position")
        statement = (
            f"SELECT {_COLUMNS} FROM {VERSIONS.name} v WHERE {' AND '.join(where) or 'TRUE'} "
            "ORDER BY v.created_position DESC LIMIT ?"
        )
    else:
        # Walk the driving tag's versions newest first; the other criteria filter them.
        others = {k: v for k, v in query.tags.items() if k != driving[0]}
        where, params = _conditions(replace(query, tags=others), probes, "d.created_position")
        statement = (
            f"SELECT {_COLUMNS} FROM {VERSION_TAGS.name} d JOIN {VERSIONS.name} v "
            "ON v.model = d.model AND v.version = d.version "
            f"WHERE d.key = ? AND d.value = ? {''.join(' AND ' + c for c in where)} "
            "ORDER BY d.created_position DESC LIMIT ?"
        )
        params = [*driving, *params]
    rows = db.execute(statement, (*params, query.limit + 1))
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


@dataclass(frozen=True)
class _TagProbe:
    """What the search knows of one wanted tag before walking anything."""

    on_models: bool  # some model carries it (and so every version of that model matches)
    reach: int  # created_position of its page-th newest version; -1: fewer than a page


def _probe_tags(db: ViewDatabase, query: SearchQuery) -> dict[tuple[str, str], _TagProbe]:
    """Probe every wanted tag in one statement (one round trip on PostgreSQL)."""
    tags = sorted(query.tags.items())
    if not tags:
        return {}
    before = decode_token(query.page_token) if query.page_token else 2**62
    probes, params = [], []
    for key, value in tags:
        probes += [
            f"(SELECT 1 FROM {MODEL_TAGS.name} WHERE key = ? AND value = ? LIMIT 1)",
            f"(SELECT created_position FROM {VERSION_TAGS.name} WHERE key = ? AND value = ? "
            "AND created_position < ? ORDER BY created_position DESC LIMIT 1 OFFSET ?)",
        ]
        params += [key, value, key, value, before, query.limit - 1]
    row = db.execute(f"SELECT {', '.join(probes)}", params)[0]
    return {
        tag: _TagProbe(row[2 * i] is not None, -1 if row[2 * i + 1] is None else row[2 * i + 1])
        for i, tag in enumerate(tags)
    }


def _driving_tag(probes: dict[tuple[str, str], _TagProbe]) -> tuple[str, str] | None:
    """The tag whose versions to walk: the sparsest of those set on versions only (the tag
    index lists versions, not the versions of a tagged model).

    Sparseness is read off the index itself: the tag whose page-th newest version was
    registered longest ago is the one with the fewest versions per stretch of the log.
    """
    on_versions = [(probe.reach, tag) for tag, probe in probes.items() if not probe.on_models]
    return min(on_versions)[1] if on_versions else None


def _conditions(
    query: SearchQuery, probes: dict[tuple[str, str], _TagProbe], position_column: str
) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.page_token:
        where.append(f"{position_column} < ?")
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
        # Scalar subqueries (one primary-key probe per candidate) rather than EXISTS: a
        # planner working from stale statistics cannot turn them into a join over every
        # version carrying the tag.
        on_version = (
            f"(SELECT t.value FROM {VERSION_TAGS.name} t WHERE t.model = v.model "
            "AND t.version = v.version AND t.key = ?) = ?"
        )
        if probes[key, value].on_models:
            where.append(
                f"({on_version} OR (SELECT m.value FROM {MODEL_TAGS.name} m "
                "WHERE m.model = v.model AND m.key = ?) = ?)"
            )
            params += [key, value, key, value]
        else:
            where.append(on_version)
            params += [key, value]
    if query.alias:
        where.append(
            f"(SELECT a.version FROM {ALIASES.name} a WHERE a.model = v.model "
            "AND a.alias = ?) = v.version"
        )
        params.append(query.alias)
    return where, params


def _tags_and_aliases(
    db: ViewDatabase, keys: list[tuple[str, int]]
) -> tuple[dict[tuple[str, int], dict[str, str]], dict[tuple[str, int], list[str]]]:
    """Tags and aliases of the given versions, in one statement."""
    tags: dict[tuple[str, int], dict[str, str]] = {}
    aliases: dict[tuple[str, int], list[str]] = {}
    if not keys:
        return tags, aliases
    which = " OR ".join(["(model = ? AND version = ?)"] * len(keys))
    params = [part for key in keys for part in key]
    for model, number, key, value in db.execute(
        f"SELECT model, version, key, value FROM {VERSION_TAGS.name} WHERE {which} "
        f"UNION ALL SELECT model, version, '', alias FROM {ALIASES.name} WHERE {which} "
        "ORDER BY 3, 4",
        params * 2,
    ):
        if key:
            tags.setdefault((model, number), {})[key] = value
        else:  # an alias (tag keys are never empty)
            aliases.setdefault((model, number), []).append(value)
    return tags, aliases
