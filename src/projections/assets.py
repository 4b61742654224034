"""The assets view: environments, data assets and pipelines, with every version's content."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ledger.domain import DataAsset, Environment, LedgerAggregate, Pipeline
from ledger.errors import NotFoundError
from ledger.refs import parse_ref
from ledger.storage.database import LedgerDatabase
from ledger.storage.timestamps import iso
from projections.base import Change, Handler, ReadModel
from projections.tables import Table

# The three kinds share one shape (ledger.domain.versioned); ``kind`` is the entity kind.
ASSETS = Table(
    "ledger_view_assets",
    key={"kind": "TEXT", "name": "TEXT"},
    columns={
        "origin": "TEXT NOT NULL",
        "latest_version": "BIGINT NOT NULL",
        "created_at_us": "BIGINT NOT NULL",
        "created_by": "TEXT NOT NULL",
        "updated_at_us": "BIGINT NOT NULL",
    },
)
# A version's content never changes once registered, except that a data asset version
# registered before sketches were kept gains one in its profile (``VersionProfiled``).
ASSET_VERSIONS = Table(
    "ledger_view_asset_versions",
    key={"kind": "TEXT", "name": "TEXT", "version": "BIGINT"},
    columns={
        "digest": "TEXT NOT NULL",
        "content": "TEXT NOT NULL",
        "created_at_us": "BIGINT NOT NULL",
        "created_by": "TEXT NOT NULL",
    },
)
ASSET_KINDS = ("environment", "data", "pipeline")
# How messages name each kind (as the aggregates' own errors do).
_LABELS = {"environment": "environment", "data": "data asset", "pipeline": "pipeline"}


class AssetsProjection(ReadModel):
    """Environments, data assets and pipelines by kind and name, and each of their versions."""

    name = "assets"
    description = "environments, data assets, pipelines and the content of every version"
    tables = (ASSETS, ASSET_VERSIONS)

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        handlers: dict[type[LedgerAggregate.Event], Handler] = {}
        for cls in (Environment, DataAsset, Pipeline):
            handlers[cls.Created] = self._created
            handlers[cls.VersionRegistered] = self._version_registered
        handlers[DataAsset.VersionProfiled] = self._version_profiled
        return handlers

    def _created(self, change: Change) -> None:
        event = change.data
        row = (event["origin"], 0, change.time_us, event["actor"], change.time_us)
        self.put(ASSETS.name, (change.entity.kind, event["name"]), row)

    def _version_registered(self, change: Change) -> None:
        event = change.data
        kind, name = change.entity.kind, change.entity.name
        content = orjson.dumps(event["content"]).decode()
        self.put(
            ASSET_VERSIONS.name,
            (kind, name, event["version"]),
            (event["digest"], content, change.time_us, event["actor"]),
        )
        row = self.get(ASSETS.name, (kind, name))
        if row is not None:
            origin, _, created_at_us, created_by, _ = row
            updated = (origin, event["version"], created_at_us, created_by, change.time_us)
            self.put(ASSETS.name, (kind, name), updated)

    def _version_profiled(self, change: Change) -> None:
        event = change.data
        key = ("data", change.entity.name, event["version"])
        row = self.get(ASSET_VERSIONS.name, key)
        if row is None:
            return
        digest, content, created_at_us, created_by = row
        content = orjson.loads(content)
        content["profile"]["sketch"] = event["sketch"]
        row = (digest, orjson.dumps(content).decode(), created_at_us, created_by)
        self.put(ASSET_VERSIONS.name, key, row)


def read_asset(db: LedgerDatabase, kind: str, name: str) -> dict[str, Any]:
    """An environment, data asset or pipeline with all its versions, oldest first."""
    rows = db.execute(
        f"SELECT origin, created_at_us, created_by, updated_at_us FROM {ASSETS.name} "
        "WHERE kind = ? AND name = ?",
        (kind, name),
    )
    if not rows:
        raise NotFoundError(f"{_LABELS[kind]} {name!r} does not exist")
    origin, created_at_us, created_by, updated_at_us = rows[0]
    versions = db.execute(
        f"SELECT version, digest, content, created_at_us, created_by FROM {ASSET_VERSIONS.name} "
        "WHERE kind = ? AND name = ? ORDER BY version",
        (kind, name),
    )
    return {
        "kind": kind,
        "name": name,
        "origin": origin,
        "versions": [_version(row) for row in versions],
        "created_at": iso(created_at_us),
        "created_by": created_by,
        "updated_at": iso(updated_at_us),
    }


def read_asset_version(db: LedgerDatabase, kind: str, ref_text: str) -> dict[str, Any]:
    """``name`` (the latest version) or ``name:version`` of an environment, data asset or
    pipeline: its number, digest and content."""
    ref = parse_ref(ref_text, allow_alias=False)
    label = f"{_LABELS[kind]} {ref.name}"
    latest = db.execute(
        f"SELECT latest_version FROM {ASSETS.name} WHERE kind = ? AND name = ?", (kind, ref.name)
    )
    if not latest:
        raise NotFoundError(f"{_LABELS[kind]} {ref.name!r} does not exist")
    number = ref.version if ref.version is not None else latest[0][0]
    rows = db.execute(
        f"SELECT version, digest, content, created_at_us, created_by FROM {ASSET_VERSIONS.name} "
        "WHERE kind = ? AND name = ? AND version = ?",
        (kind, ref.name, number),
    )
    if not rows:
        raise NotFoundError(f"{label}:{number} does not exist")
    return _version(rows[0])


def _version(row: tuple[Any, ...]) -> dict[str, Any]:
    version, digest, content, created_at_us, created_by = row
    return {
        "version": version,
        "digest": digest,
        "content": orjson.loads(content),
        "created_at": iso(created_at_us),
        "created_by": created_by,
    }


def data_version_with_digest(db: LedgerDatabase, name: str, digest: str) -> int | None:
    """The newest version of data asset ``name`` whose content digest is or starts with
    ``digest`` (at least 8 hex digits: MLflow keeps 36 characters of a dataset's digest);
    None if none."""
    if not re.fullmatch("[0-9a-f]{8,64}", digest):
        return None
    rows = db.execute(
        f"SELECT max(version) FROM {ASSET_VERSIONS.name} "
        "WHERE kind = 'data' AND name = ? AND substr(digest, 1, ?) = ?",
        (name, len(digest), digest),
    )
    return rows[0][0] if rows else None
