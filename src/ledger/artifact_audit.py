"""`ledger verify --artifacts`: re-hash every stored file the ledger still hands out.

What is referenced is read from the event log itself (not from the views): the files of
every model version that is not deleted, and the code files of every pipeline version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ledger.application import LedgerApplication
from ledger.artifact_integrity import BlobDamage, inspect_blob
from ledger.domain import ModelVersion, Pipeline

_MODEL_VERSION_STATUS: dict[type[Any], str] = {
    ModelVersion.Archived: "archived",
    ModelVersion.Restored: "ready",
    ModelVersion.Deleted: "deleted",
    ModelVersion.Renamed: "deleted",  # its files live on under the new name
}
_READ: tuple[type[Any], ...] = (
    *_MODEL_VERSION_STATUS,
    ModelVersion.Registered,
    ModelVersion.RenamedFrom,
    Pipeline.Created,
    Pipeline.VersionRegistered,
)
PAGE = 1_000


@dataclass(frozen=True)
class FileRef:
    """One file of something the ledger hands out: ``owner`` names it (``model iris:3``)."""

    owner: str
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DamagedFile:
    ref: FileRef
    damage: BlobDamage

    def to_dict(self) -> dict[str, Any]:
        return {"owner": self.ref.owner, "path": self.ref.path, **self.damage.to_dict()}


@dataclass
class ArtifactReport:
    """What ``audit_artifacts`` found: counts, and every damaged file with its owner."""

    files: int = 0
    blobs: int = 0
    bytes: int = 0
    owners: set[str] = field(default_factory=set)
    damaged: list[DamagedFile] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damaged

    @property
    def damaged_owners(self) -> list[str]:
        return sorted({d.ref.owner for d in self.damaged})

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "owners": len(self.owners),
            "damaged_owners": self.damaged_owners,
            "damaged": [d.to_dict() for d in self.damaged],
        }


def referenced_files(ledger: LedgerApplication) -> list[FileRef]:
    """Files of live and archived model versions and of pipeline versions, in log order."""
    versions: dict[Any, tuple[str, list[dict[str, Any]]]] = {}
    status: dict[Any, str] = {}
    pipelines: dict[Any, str] = {}
    found: list[FileRef] = []
    for event in _events(ledger, _READ):
        key = event.originator_id
        if isinstance(event, ModelVersion.Registered):
            files = [dict(f) for f in event.spec["files"]]
            versions[key] = (f"model {event.model_name}:{event.version}", files)
            status[key] = getattr(event, "status", "ready")  # a renamed one keeps its own
        elif type(event) in _MODEL_VERSION_STATUS:
            status[key] = _MODEL_VERSION_STATUS[type(event)]
        elif isinstance(event, Pipeline.Created):
            pipelines[key] = event.name
        elif isinstance(event, Pipeline.VersionRegistered):
            owner = f"pipeline {pipelines.get(key, key)}:{event.version}"
            code = event.content.get("code") or {}
            found.extend(_file_refs(owner, code.get("files", [])))
    for key, (owner, files) in versions.items():
        if status[key] != "deleted":
            found.extend(_file_refs(owner, files))
    return found


def _file_refs(owner: str, files: list[dict[str, Any]]) -> Iterator[FileRef]:
    for f in files:
        yield FileRef(owner, str(f["path"]), str(f["sha256"]), int(f["size"]))


def _events(ledger: LedgerApplication, classes: tuple[type[Any], ...]) -> Iterator[Any]:
    """The events of these classes, in log order (read by topic, a page at a time)."""
    topics = [f"{cls.__module__}:{cls.__qualname__}" for cls in classes]
    start = 1
    while page := ledger.recorder.select_notifications(start, PAGE, topics=topics):
        for notification in page:
            yield ledger.mapper.to_domain_event(notification)
        start = page[-1].id + 1


def audit_artifacts(
    ledger: LedgerApplication,
    files: list[FileRef] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ArtifactReport:
    """Re-hash each referenced blob once; report every file whose blob is damaged.

    ``on_progress`` is called with (bytes hashed, bytes in all).
    """
    refs = referenced_files(ledger) if files is None else files
    by_blob: dict[tuple[str, int], list[FileRef]] = {}
    for ref in refs:
        by_blob.setdefault((ref.sha256, ref.size), []).append(ref)
    report = ArtifactReport(files=len(refs), blobs=len(by_blob), owners={r.owner for r in refs})
    report.bytes = sum(size for _, size in by_blob)
    done = 0

    def on_bytes(count: int) -> None:
        nonlocal done
        done += count
        if on_progress is not None:
            on_progress(done, report.bytes)

    for (sha256, size), owners in by_blob.items():
        before = done
        damage = inspect_blob(ledger.artifacts, sha256, size, on_bytes)
        on_bytes(max(0, size - (done - before)))  # missing or short blobs count as done
        if damage is not None:
            report.damaged.extend(DamagedFile(ref, damage) for ref in owners)
    return report
