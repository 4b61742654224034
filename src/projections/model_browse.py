"""The registry as people browse it (the web UI's models pages): models found by name
prefix, tags, alias and flavor, a page at a time in name order; and one model's metrics
across every version.

A model matches when its name starts with the prefix and, if tags, an alias or a flavor
are asked for, either one of its live versions meets all of them (a tag counts when that
version or the model carries it) or, with tags alone, the model itself carries every tag.
The same rule is applied to the registry as of a past point (``filter_models``).

Walking models in name order, a test per model stops at its first matching version: quick
while matches are common. A filter met by few versions (a rare tag or flavor, an alias) is
read off its index instead, and only those versions are tested.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.errors import InvalidInputError
from ledger.shapes import ModelOut
from ledger.storage.database import LedgerDatabase
from ledger.storage.rows import Row
from ledger.storage.timestamps import iso
from projections.paging import Page
from projections.registry import (
    ALIASES,
    MODEL_TAGS,
    MODELS,
    VERSION_SPECS,
    VERSION_TAGS,
    VERSIONS,
)
from projections.registry_filters import Order, decode_key, encode_key

# A filter met by fewer versions than this is read off its index (see the module's doc).
SPARSE = 1_000
_BY_NAME = (Order("name"),)


@dataclass(frozen=True)
class ModelFilter:
    """What the models list shows: every given criterion must hold (see the module's doc)."""

    prefix: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    alias: str = ""
    flavor: str = ""
    limit: int = 50
    page_token: str = ""  # the previous page's next_token

    def __post_init__(self) -> None:
        searched = [self.prefix, self.alias, self.flavor, *(k + v for k, v in self.tags)]
        if any("\0" in text for text in searched):
            raise InvalidInputError("model filters cannot contain NUL characters")

    @property
    def on_versions(self) -> bool:
        return bool(self.tags or self.alias or self.flavor)

    def after(self) -> str | None:
        """The last name of the previous page (None on the first)."""
        if not self.page_token:
            return None
        name: str = decode_key(self.page_token, _BY_NAME)[0]
        return name


def search_models(db: LedgerDatabase, query: ModelFilter) -> Page[ModelOut]:
    """A page of the live models ``query`` matches, in name order."""
    if not 1 <= query.limit <= 1_000:
        raise InvalidInputError("limit must be between 1 and 1000")
    with db.snapshot():
        if db.kind == "postgres":  # compiling these short queries costs more than running them
            db.execute("SELECT set_config('jit', 'off', true)")
        rows = _search(db, query)
    models: dict[str, tuple[int, ModelOut]] = {}
    for what, rank, name, text, number, created_at_us, created_by in rows:
        if what == "m":
            models[name] = (rank, ModelOut(
                name=name, description=text, latest_version=number, live_versions=0, tags={},
                aliases={}, created_at=iso(created_at_us), created_by=created_by,
            ))  # fmt: skip
    for what, _, name, text, number, _, value in rows:
        item = models[name][1]
        if what == "t":
            item["tags"][text] = value
        elif what == "a":
            item["aliases"][text] = number
        elif what == "n":
            item["live_versions"] = number
    ranked = [item for _, item in sorted(models.values(), key=lambda pair: pair[0])]
    return _page(ranked, query.limit)


def _search(db: LedgerDatabase, query: ModelFilter) -> list[Row]:
    """The page's models ranked, with their tags, aliases and live version counts: one
    statement whose first column says what each row is (one round trip on PostgreSQL)."""
    names, params = _matching_names(db, query)
    return db.execute(
        f"WITH page AS ({names} ORDER BY 1 LIMIT ?), ranked AS (SELECT name, "
        "ROW_NUMBER() OVER (ORDER BY name) AS rn FROM page) "
        "SELECT 'm', r.rn, m.name, m.description, m.latest_version, m.created_at_us, "
        f"m.created_by FROM ranked r JOIN {MODELS.name} m ON m.name = r.name "
        f"UNION ALL SELECT 't', NULL, t.model, t.key, NULL, NULL, t.value "
        f"FROM ranked r JOIN {MODEL_TAGS.name} t ON t.model = r.name "
        f"UNION ALL SELECT 'a', NULL, a.model, a.alias, a.version, NULL, NULL "
        f"FROM ranked r JOIN {ALIASES.name} a ON a.model = r.name "
        f"UNION ALL SELECT 'n', NULL, r.name, NULL, (SELECT count(*) FROM {VERSIONS.name} v "
        "WHERE v.model = r.name AND v.status != 'deleted'), NULL, NULL FROM ranked r",
        (*params, query.limit + 1),
    )


def _page(items: list[ModelOut], limit: int) -> Page[ModelOut]:
    for item in items:
        item["tags"] = dict(sorted(item["tags"].items()))
        item["aliases"] = dict(sorted(item["aliases"].items()))
    if len(items) <= limit:
        return Page(items, "")
    return Page(items[:limit], encode_key([items[limit - 1]["name"]]))


def _matching_names(db: LedgerDatabase, query: ModelFilter) -> tuple[str, list[Any]]:
    """SQL (with its parameters) for the names of the matching models after the page
    token, unordered and uncut."""
    where, params = _name_conditions(query, "m.name")
    if not query.on_versions:
        return f"SELECT m.name FROM {MODELS.name} m WHERE {where}", params
    # A model walked: it carries every tag itself, or one of its versions meets all. The
    # primary key leads the walk through its versions (``v.version > 0`` tells SQLite,
    # which keeps no statistics, that it narrows more than the flavor's index).
    itself, itself_params = _model_itself(query)
    version_test, version_params = _version_conditions(query, "m.name")
    walked = (
        f"({itself} OR EXISTS (SELECT 1 FROM {VERSIONS.name} v WHERE v.model = m.name "
        f"AND v.version > 0 AND {version_test}))"
    )
    walked_params = [*itself_params, *version_params]
    driver = _sparse_driver(db, query)
    if driver is None:
        return f"SELECT m.name FROM {MODELS.name} m WHERE {where} AND {walked}", [
            *params, *walked_params]  # fmt: skip
    # Only the candidates of the sparsest criterion: versions meeting it (tested alone),
    # and models meeting it by a tag of their own (walked).
    pairs, pairs_params, owners, owners_params = driver
    on_version, name_params = _name_conditions(query, "v.model")
    pair_test, pair_params = _version_conditions(query, "v.model")
    return (
        f"SELECT v.model AS name FROM ({pairs}) d JOIN {VERSIONS.name} v "
        f"ON v.model = d.model AND v.version = d.version WHERE {on_version} AND {pair_test} "
        f"UNION SELECT m.name FROM {MODELS.name} m WHERE {where} AND m.name IN ({owners}) "
        f"AND {walked}",
        [*pairs_params, *name_params, *pair_params, *params, *owners_params, *walked_params],
    )


def _name_conditions(query: ModelFilter, column: str) -> tuple[str, list[Any]]:
    clauses, params = ["TRUE"], []
    if query.prefix:
        clauses.append(f"substr({column}, 1, ?) = ?")
        params += [len(query.prefix), query.prefix]
    after = query.after()
    if after is not None:
        clauses.append(f"{column} > ?")
        params.append(after)
    return " AND ".join(clauses), params


def _version_conditions(query: ModelFilter, model: str) -> tuple[str, list[Any]]:
    """A test of a live version ``v`` of the model named by ``model`` (SQL): its flavor,
    the alias on it, each tag on it or on its model (scalar subqueries: one primary-key
    probe each)."""
    clauses, params = ["v.status != 'deleted'"], []
    if query.flavor:
        clauses.append("v.flavor = ?")
        params.append(query.flavor)
    if query.alias:
        clauses.append(
            f"v.version = (SELECT a.version FROM {ALIASES.name} a WHERE a.model = {model} "
            "AND a.alias = ?)"
        )
        params.append(query.alias)
    for key, value in query.tags:
        clauses.append(
            f"((SELECT t.value FROM {VERSION_TAGS.name} t WHERE t.model = v.model "
            "AND t.version = v.version AND t.key = ?) = ? OR (SELECT mt.value FROM "
            f"{MODEL_TAGS.name} mt WHERE mt.model = {model} AND mt.key = ?) = ?)"
        )
        params += [key, value, key, value]
    return " AND ".join(clauses), params


def _model_itself(query: ModelFilter) -> tuple[str, list[Any]]:
    """A test of model ``m`` carrying every tag asked (false with an alias or flavor)."""
    if query.alias or query.flavor or not query.tags:
        return "FALSE", []
    clauses, params = [], []
    for key, value in query.tags:
        clauses.append(
            f"(SELECT mt.value FROM {MODEL_TAGS.name} mt WHERE mt.model = m.name "
            "AND mt.key = ?) = ?"
        )
        params += [key, value]
    return "(" + " AND ".join(clauses) + ")", params


Driver = tuple[str, list[Any], str, list[Any]]


def _sparse_driver(db: LedgerDatabase, query: ModelFilter) -> Driver | None:
    """The candidates of the criterion (flavor or tag) met by the fewest versions and
    models, when fewer than ``SPARSE``: SQL for (model, version) pairs meeting it, and for
    the names of models meeting it by a tag of their own (with their parameters); None to
    walk every model instead."""
    candidates: list[Driver] = []
    probes: list[str] = []
    params: list[Any] = []
    capped = "(SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} LIMIT " + str(SPARSE) + ") x)"
    if query.flavor:
        candidates.append((f"SELECT model, version FROM {VERSIONS.name} WHERE flavor = ?",
                           [query.flavor], "SELECT NULL", []))  # fmt: skip
        probes.append(capped.format(VERSIONS.name, "flavor = ?"))
        params.append(query.flavor)
    for key, value in query.tags:
        candidates.append((
            f"SELECT model, version FROM {VERSION_TAGS.name} WHERE key = ? AND value = ?",
            [key, value],
            f"SELECT model FROM {MODEL_TAGS.name} WHERE key = ? AND value = ?",
            [key, value],
        ))  # fmt: skip
        pair = "key = ? AND value = ?"
        probes.append(
            f"{capped.format(VERSION_TAGS.name, pair)} + {capped.format(MODEL_TAGS.name, pair)}"
        )
        params += [key, value, key, value]
    if not candidates:  # an alias alone: each model's test is a probe or two
        return None
    counts = db.execute(f"SELECT {', '.join(probes)}", params)[0]
    fewest, index = min(zip(counts, range(len(candidates)), strict=True))
    return candidates[index] if fewest < SPARSE else None


# -- the same rule over a past registry (``projections.snapshot``'s models) ---------------


def filter_models(models: dict[str, dict[str, Any]], query: ModelFilter) -> Page[ModelOut]:
    """A page of the models (a registry snapshot's, by name) ``query`` matches."""
    after = query.after()
    found: list[ModelOut] = []
    for name in sorted(models):
        if len(found) > query.limit:
            break
        model = models[name]
        wanted = name.startswith(query.prefix) and (after is None or name > after)
        if wanted and _snapshot_matches(model, query):
            found.append(_snapshot_item(name, model))
    return _page(found, query.limit)


def _snapshot_matches(model: dict[str, Any], query: ModelFilter) -> bool:
    if not query.on_versions:
        return True
    tags = dict(query.tags)
    own: dict[str, str] = model["tags"]
    if not (query.alias or query.flavor) and all(own.get(k) == v for k, v in tags.items()):
        return True
    for number, version in model["versions"].items():
        if version["status"] == "deleted":
            continue
        if query.flavor and version["flavor"] != query.flavor:
            continue
        if query.alias and model["aliases"].get(query.alias) != number:
            continue
        if all(version["tags"].get(k) == v or own.get(k) == v for k, v in tags.items()):
            return True
    return False


def _snapshot_item(name: str, model: dict[str, Any]) -> ModelOut:
    live = sum(1 for v in model["versions"].values() if v["status"] != "deleted")
    return ModelOut(
        name=name, description=model["description"], latest_version=model["latest_version"],
        live_versions=live, tags=dict(model["tags"]), aliases=dict(model["aliases"]),
        created_at=iso(model["created_at_us"]), created_by=model["created_by"],
    )  # fmt: skip


# -- metrics ----------------------------------------------------------------------------


def metrics_by_version(
    db: LedgerDatabase, model: str, *, include_deleted: bool = False
) -> list[tuple[int, dict[str, float]]]:
    """Every version of ``model`` (live ones, unless ``include_deleted``) with its metrics,
    oldest first: only the metrics are read out of each registration's record."""
    metrics = (
        "(s.spec::json -> 'metrics')::text"
        if db.kind == "postgres"
        else "json_extract(s.spec, '$.metrics')"
    )
    hide = "" if include_deleted else "AND v.status != 'deleted' "
    rows = db.execute(
        f"SELECT v.version, {metrics} FROM {VERSIONS.name} v JOIN {VERSION_SPECS.name} s "
        f"ON s.model = v.model AND s.version = v.version WHERE v.model = ? {hide}"
        "ORDER BY v.version",
        (model,),
    )
    return [(number, _metrics(text)) for number, text in rows]


def _metrics(text: str | None) -> dict[str, float]:
    found = orjson.loads(text) if text else {}
    return found if isinstance(found, dict) else {}


def metric_names(series: Iterable[tuple[int, dict[str, float]]]) -> list[str]:
    """The metric names any of the versions has, sorted."""
    return sorted({name for _, metrics in series for name in metrics})
