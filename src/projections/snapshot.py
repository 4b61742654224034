"""The whole registry as plain data: now (from the views) or as of a past log position.

Both read the same rows — the current tables, or the history rows live at the
position — and assemble them the same way, so "as of the head" and "now" agree
by construction and tests can compare either with the aggregates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from projections.database import Row, ViewDatabase
from projections.endpoints import DEPLOYMENTS, ENDPOINTS
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


def registry_now(db: ViewDatabase) -> dict[str, Any]:
    """Models (with versions, tags, aliases) and endpoints (with deployments, traffic)."""
    rows = {
        table.name: db.execute(f"SELECT {', '.join(table.column_names)} FROM {table.name}")
        for table in SNAPSHOT_TABLES
    }
    return assemble(rows)


def registry_as_of(db: ViewDatabase, position: int) -> dict[str, Any]:
    """The registry as it was right after the event at log ``position``."""
    return assemble(rows_live_at(db, position, (table.name for table in SNAPSHOT_TABLES)))


def assemble(rows: dict[str, list[Row]]) -> dict[str, Any]:
    models: dict[str, dict[str, Any]] = {}
    for name, description, latest, created_at_us, created_by, _ in _sorted(rows[MODELS.name]):
        models[name] = {
            "description": description,
            "latest_version": latest,
            "tags": {},
            "aliases": {},
            "versions": {},
            "created_at_us": created_at_us,
            "created_by": created_by,
        }
    for model, key, value in _sorted(rows[MODEL_TAGS.name]):
        models[model]["tags"][key] = value
    for model, alias, version in _sorted(rows[ALIASES.name]):
        models[model]["aliases"][alias] = version
    for model, number, flavor, status, created_at_us, created_by, _ in _sorted(rows[VERSIONS.name]):
        models[model]["versions"][number] = {
            "status": status,
            "flavor": flavor,
            "tags": {},
            "deployments": [],
            "created_at_us": created_at_us,
            "created_by": created_by,
        }
    for model, number, key, value in _sorted(rows[VERSION_TAGS.name]):
        models[model]["versions"][number]["tags"][key] = value
    for model, number, endpoint, deployment in _sorted(rows[VERSION_DEPLOYMENTS.name]):
        models[model]["versions"][number]["deployments"].append(
            {"endpoint": endpoint, "deployment": deployment}
        )
    endpoints: dict[str, dict[str, Any]] = {}
    for name, kind, description, status, created_at_us, created_by, _ in _sorted(
        rows[ENDPOINTS.name]
    ):
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
    for row in _sorted(rows[DEPLOYMENTS.name]):
        endpoint, name, model, version, environment, resources, health, detail = row[:8]
        traffic, mirror = row[8], row[9]
        target = endpoints[endpoint]
        target["deployments"][name] = {
            "model": model,
            "version": version,
            "environment": environment,
            "resources": orjson.loads(resources),
            "health": health,
            "health_detail": detail,
        }
        if traffic:
            target["traffic"][name] = traffic
        if mirror:
            target["mirror"][name] = mirror
    return {"models": models, "endpoints": endpoints}


def _sorted(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=lambda row: tuple(row))
