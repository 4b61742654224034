"""The tracked artifacts view: each path of MLflow's artifact proxy and the blob it holds.

Paths are matched by prefix with ``substr`` rather than ``LIKE`` (case-insensitive on
SQLite, and ``%``/``_`` in names) or a range (PostgreSQL compares text by collation), and
sorted here, byte for byte, so both stores list the same thing in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ledger.domain import LedgerAggregate, TrackedArtifact
from ledger.errors import NotFoundError
from ledger.storage.database import LedgerDatabase
from ledger.storage.timestamps import iso
from projections.base import Change, Handler, ReadModel
from projections.tables import Table

TRACKED_ARTIFACTS = Table(
    "ledger_view_tracked_artifacts",
    key={"path": "TEXT"},
    columns={
        "sha256": "TEXT NOT NULL",
        "size": "BIGINT NOT NULL",
        "uploaded_by": "TEXT NOT NULL",
        "uploaded_at_us": "BIGINT NOT NULL",
        "uploaded_position": "BIGINT NOT NULL",
    },
)
_COLUMNS = TRACKED_ARTIFACTS.column_names


class TrackedArtifactsProjection(ReadModel):
    """The live files of the MLflow artifact proxy by path (a deleted one is removed)."""

    name = "tracked_artifacts"
    description = "files uploaded through the MLflow artifact proxy: path, digest, size"
    tables = (TRACKED_ARTIFACTS,)

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        return {TrackedArtifact.Uploaded: self._uploaded, TrackedArtifact.Deleted: self._deleted}

    def _uploaded(self, change: Change) -> None:
        event = change.data
        row = (event["sha256"], event["size"], event["actor"], change.time_us, change.position)
        self.put(TRACKED_ARTIFACTS.name, (event["path"],), row)

    def _deleted(self, change: Change) -> None:
        self.delete(TRACKED_ARTIFACTS.name, (change.data["path"],))


# -- queries -----------------------------------------------------------------------------


def read_tracked_artifact(db: LedgerDatabase, path: str) -> dict[str, Any]:
    """The live file at ``path``: path, sha256, size, uploaded_by, uploaded_at and
    uploaded_position; NotFoundError when no file is there."""
    rows = db.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM {TRACKED_ARTIFACTS.name} WHERE path = ?", (path,)
    )
    if not rows:
        raise NotFoundError(f"artifact {path!r} does not exist")
    item = dict(zip(_COLUMNS, rows[0], strict=True))
    item["uploaded_at"] = iso(item.pop("uploaded_at_us"))
    return item


def _folder_prefix(folder: str) -> str:
    """``"a/b"`` (or ``"a/b/"``) as ``"a/b/"``; the root (``""``) as ``""``."""
    stripped = folder.strip("/")
    return f"{stripped}/" if stripped else ""


def tracked_artifacts_under(db: LedgerDatabase, folder: str) -> list[dict[str, Any]]:
    """Every live file under ``folder`` (recursively; ``""``: all of them), sorted by path,
    as ``{"path", "sha256", "size"}`` with the path relative to ``folder``."""
    prefix = _folder_prefix(folder)
    where, params = "", []
    if prefix:
        where = "WHERE substr(path, 1, CAST(? AS INTEGER)) = ?"
        params = [len(prefix), prefix]
    rows = db.execute(f"SELECT path, sha256, size FROM {TRACKED_ARTIFACTS.name} {where}", params)
    found = [
        {"path": str(path)[len(prefix) :], "sha256": sha256, "size": int(size)}
        for path, sha256, size in rows
    ]
    return sorted(found, key=lambda item: item["path"])


def tracked_artifact_folder(db: LedgerDatabase, folder: str) -> list[dict[str, Any]]:
    """One level of ``folder`` (``""``: the root), see :func:`folder_entries`."""
    return folder_entries(tracked_artifacts_under(db, folder))


def folder_entries(files: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One level of a folder whose ``files`` have paths relative to it: its files as
    ``{"path": name, "is_dir": False, "size"}`` and sub-folders as ``{"path": name,
    "is_dir": True}``, sorted by name (a name may be both, as in an object store)."""
    entries: dict[tuple[str, bool], dict[str, Any]] = {}
    for item in files:
        name, slash, _ = str(item["path"]).partition("/")
        if slash:
            entries.setdefault((name, True), {"path": name, "is_dir": True})
        else:
            entries[name, False] = {"path": name, "is_dir": False, "size": item["size"]}
    return [entries[key] for key in sorted(entries)]
