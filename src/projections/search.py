"""Searching model versions: name prefix, tags, alias, flavor, creation time; paged,
newest registration first."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ledger.shapes import VersionItem
from ledger.storage.database import LedgerDatabase
from ledger.storage.feed import check_limit
from ledger.storage.timestamps import iso, to_microseconds
from projections.paging import Page, decode_token, encode_token
from projections.registry import ALIASES, MODEL_TAGS, VERSION_TAGS, VERSIONS


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


def search_versions(db: LedgerDatabase, query: SearchQuery) -> Page[VersionItem]:
    check_limit(query.limit)
    probes = _probe_tags(db, query)
    driving = _driving_tag(probes)
    if driving is None:
        where, params = _conditions(query, probes, "v")
        statement = (
            f"SELECT {_COLUMNS} FROM {VERSIONS.name} v WHERE {' AND '.join(where) or 'TRUE'} "
            "ORDER BY v.created_position DESC LIMIT ?"
        )
    else:
        # Walk the driving tag's versions newest first; the other criteria filter them.
        others = {k: v for k, v in query.tags.items() if k != driving[0]}
        where, params = _conditions(replace(query, tags=others), probes, "d")
        statement = (
            f"SELECT {_COLUMNS} FROM {VERSION_TAGS.name} d JOIN {VERSIONS.name} v "
            "ON v.model = d.model AND v.version = d.version "
            f"WHERE d.key = ? AND d.value = ? {''.join(' AND ' + c for c in where)} "
            "ORDER BY d.created_position DESC LIMIT ?"
        )
        params = [*driving, *params]
    # The page, with each version's tags and aliases, in one statement.
    rows = db.execute(
        f"WITH page AS ({statement}) "
        f"SELECT p.*, t.key, t.value FROM page p LEFT JOIN {VERSION_TAGS.name} t "
        "ON t.model = p.model AND t.version = p.version "
        f"UNION ALL SELECT p.*, '', a.alias FROM page p JOIN {ALIASES.name} a "
        "ON a.model = p.model AND a.version = p.version "
        "ORDER BY 7 DESC, 8, 9",
        (*params, query.limit + 1),
    )
    versions: dict[tuple[str, int], VersionItem] = {}
    positions: list[int] = []
    for model, number, flavor, status, created_at_us, created_by, position, key, value in rows:
        item = versions.get((model, number))
        if item is None:
            item = versions[model, number] = VersionItem(
                model=model,
                version=number,
                ref=f"{model}:{number}",
                flavor=flavor,
                status=status,
                tags={},
                aliases=[],
                created_at=iso(created_at_us),
                created_by=created_by,
            )
            positions.append(position)
        if key:
            item["tags"][key] = value
        elif key is not None:  # an alias (tag keys are never empty)
            item["aliases"].append(value)
    items = list(versions.values())
    more = len(items) > query.limit
    return Page(items[: query.limit], encode_token(positions[query.limit - 1]) if more else "")


@dataclass(frozen=True)
class _TagProbe:
    """What the search knows of one wanted tag before walking anything."""

    on_models: bool  # some model carries it (and so every version of that model matches)
    reach: int  # created_position of its page-th newest version; -1: fewer than a page


def _probe_tags(db: LedgerDatabase, query: SearchQuery) -> dict[tuple[str, str], _TagProbe]:
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
    query: SearchQuery, probes: dict[tuple[str, str], _TagProbe], row: str
) -> tuple[list[str], list[Any]]:
    """SQL conditions for the criteria; ``row`` names the table alias whose model,
    version and created_position to test (the walked tag index, when there is one: its
    rows are filtered before any version is read)."""
    where: list[str] = []
    params: list[Any] = []
    if query.page_token:
        where.append(f"{row}.created_position < ?")
        params.append(decode_token(query.page_token))
    if query.name_prefix:
        where.append(f"substr({row}.model, 1, ?) = ?")
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
            f"(SELECT t.value FROM {VERSION_TAGS.name} t WHERE t.model = {row}.model "
            f"AND t.version = {row}.version AND t.key = ?) = ?"
        )
        if probes[key, value].on_models:
            where.append(
                f"({on_version} OR (SELECT m.value FROM {MODEL_TAGS.name} m "
                f"WHERE m.model = {row}.model AND m.key = ?) = ?)"
            )
            params += [key, value, key, value]
        else:
            where.append(on_version)
            params += [key, value]
    if query.alias:
        where.append(
            f"(SELECT a.version FROM {ALIASES.name} a WHERE a.model = {row}.model "
            f"AND a.alias = ?) = {row}.version"
        )
        params.append(query.alias)
    return where, params
