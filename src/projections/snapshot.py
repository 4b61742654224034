"""The whole registry as plain data: now (from the views) or as of a past log position.

Both read the same rows — the current tables, or the history rows live at the
position — and assemble them the same way, so "as of the head" and "now" agree
by construction and tests can compare either with the aggregates.
"""

from __future__ import annotations

from typing import Any

import orjson

from ledger.storage.database import LedgerDatabase
from ledger.storage.rows import Row
from projections.endpoints import DEPLOYMENTS, ENDPOINTS, deployment_view
from projections.registry import (
    ALIASES,
    MODEL_TAGS,
    MODELS,
    VERSION_DEPLOYMENTS,
    VERSION_TAGS,
    VERSIONS,
)
from projections.tables import Table, rows_live_at

SNAPSHOT_TABLES: tuple[Table, ...] = (
    MODELS, MODEL_TAGS, ALIASES, VERSIONS, VERSION_TAGS, VERSION_DEPLOYMENTS, ENDPOINTS,
    DEPLOYMENTS,
)  # fmt: skip


def registry_now(db: LedgerDatabase) -> dict[str, Any]:
    """Models (with versions, tags, aliases) and endpoints (with deployments, traffic)."""
    rows = {
        table.name: db.execute(f"SELECT {', '.join(table.column_names)} FROM {table.name}")
        for table in SNAPSHOT_TABLES
    }
    return assemble(rows)


def registry_as_of(db: LedgerDatabase, position: int) -> dict[str, Any]:
    """The registry as it was right after the event at log ``position``."""
    return assemble(rows_live_at(db, position, (table.name for table in SNAPSHOT_TABLES)))


# The tables holding models and their versions; every row's key starts with the model's name.
MODEL_TABLES: tuple[Table, ...] = (
    MODELS, MODEL_TAGS, ALIASES, VERSIONS, VERSION_TAGS, VERSION_DEPLOYMENTS,
)  # fmt: skip


def models_as_of(
    db: LedgerDatabase, position: int, *, name: str = "", version_tags: bool = True
) -> dict[str, dict[str, Any]]:
    """The models (as ``registry_as_of`` has them) right after log ``position``, reading
    only the models' rows: ``name``'s alone when given; without ``version_tags``, the
    versions' tags are left out (empty)."""
    tables = [t.name for t in MODEL_TABLES if version_tags or t is not VERSION_TAGS]
    prefix = orjson.dumps([name]).decode()[:-1] + "," if name else ""
    rows = rows_live_at(db, position, tables, prefix=prefix)
    empty: list[Row] = []
    rows |= {table.name: empty for table in SNAPSHOT_TABLES if table.name not in rows}
    models = assemble(rows)["models"]
    return {name: models[name]} if name in models else ({} if name else models)


def assemble(rows: dict[str, list[Row]]) -> dict[str, Any]:
    models = _assemble_models(rows)
    endpoints = _assemble_endpoints(rows)
    return {"models": dict(sorted(models.items())), "endpoints": dict(sorted(endpoints.items()))}


def _assemble_models(rows: dict[str, list[Row]]) -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    for name, description, latest, created_at_us, created_by, *_ in rows[MODELS.name]:
        models[name] = {
            "description": description,
            "latest_version": latest,
            "tags": {},
            "aliases": {},
            "versions": {},
            "created_at_us": created_at_us,
            "created_by": created_by,
        }
    for model, key, value in rows[MODEL_TAGS.name]:
        models[model]["tags"][key] = value
    for model, alias, version in rows[ALIASES.name]:
        models[model]["aliases"][alias] = version
    # A deleted model's versions stay (deleted) in their table, and show again beside it
    # when it is created again.
    versions: dict[tuple[str, int], dict[str, Any]] = {}
    for model, number, flavor, status, created_at_us, created_by, _ in rows[VERSIONS.name]:
        if model not in models:
            continue
        versions[model, number] = models[model]["versions"][number] = {
            "status": status,
            "flavor": flavor,
            "tags": {},
            "deployments": [],
            "created_at_us": created_at_us,
            "created_by": created_by,
        }
    for model, number, key, value, *_ in rows[VERSION_TAGS.name]:
        if (model, number) in versions:
            versions[model, number]["tags"][key] = value
    for model, number, endpoint, deployment in rows[VERSION_DEPLOYMENTS.name]:
        if (model, number) in versions:
            versions[model, number]["deployments"].append(
                {"endpoint": endpoint, "deployment": deployment}
            )
    for model in models.values():
        model["versions"] = dict(sorted(model["versions"].items()))
        for version in model["versions"].values():
            version["deployments"].sort(key=lambda d: (d["endpoint"], d["deployment"]))
    return models


def _assemble_endpoints(rows: dict[str, list[Row]]) -> dict[str, dict[str, Any]]:
    endpoints: dict[str, dict[str, Any]] = {}
    for name, kind, description, status, created_at_us, created_by, _ in rows[ENDPOINTS.name]:
        endpoints[name] = {
            "kind": kind,
            "description": description,
            "status": status,
            "deployments": {},
            "traffic": {},
            "mirror": {},
            "created_at_us": created_at_us,
            "created_by": created_by,
        }
    for row in rows[DEPLOYMENTS.name]:
        endpoint, name, traffic, mirror = row[0], row[1], row[8], row[9]
        target = endpoints[endpoint]
        target["deployments"][name] = deployment_view(row[2:])
        if traffic:
            target["traffic"][name] = traffic
        if mirror:
            target["mirror"][name] = mirror
    return endpoints
