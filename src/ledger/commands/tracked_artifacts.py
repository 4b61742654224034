"""Artifacts uploaded through MLflow's artifact proxy: upload (store the bytes once, then
record which blob the path holds) and delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from ledger.application import LedgerApplication
from ledger.artifacts.paths import FileEntry
from ledger.domain.tracked_artifact import (
    TrackedArtifact,
    check_artifact_path,
    tracked_artifact_id,
)


class TrackedArtifactCommands:
    """Commands for the files of the MLflow artifact proxy (``TrackedArtifact``)."""

    def __init__(self, application: LedgerApplication) -> None:
        self._app = application

    def upload(
        self,
        path: str,
        reader: BinaryIO,
        *,
        expected_sha256: str | None = None,
        reason: str = "",
    ) -> FileEntry:
        """Store what ``reader`` holds (read once, never whole in memory) and record it as
        the content of ``path``, replacing what the path held before. With
        ``expected_sha256`` the bytes go straight to their blob (one copy); a mismatch
        stores and records nothing (IntegrityViolationError)."""
        checked = check_artifact_path(path)  # before any byte is stored
        sha256, size = self._app.artifacts.put_stream(reader, expected_sha256=expected_sha256)
        return self.record_upload(checked, sha256, size, reason=reason)

    def record_upload(self, path: str, sha256: str, size: int, *, reason: str = "") -> FileEntry:
        """Record that ``path`` holds the stored blob ``sha256`` (``size`` bytes)."""
        checked = check_artifact_path(path)

        def command() -> FileEntry:
            artifact = self._app.find(
                TrackedArtifact, tracked_artifact_id(checked), for_update=True
            )
            if artifact is None:
                artifact = TrackedArtifact.create(checked)
            artifact.upload(sha256, size)
            self._app.save(artifact)
            return FileEntry(checked, artifact.sha256, artifact.size)

        return self._app.execute(reason, command)

    def delete(self, paths: Iterable[str], *, reason: str = "") -> list[str]:
        """Delete the artifacts at ``paths`` in one atomic change; those already gone are
        left out. Returns the paths deleted."""
        checked = sorted({check_artifact_path(path) for path in paths})

        def command() -> list[str]:
            deleted = []
            for path in checked:
                artifact = self._app.find(
                    TrackedArtifact, tracked_artifact_id(path), for_update=True
                )
                if artifact is not None and not artifact.deleted:
                    artifact.delete()
                    deleted.append(artifact)
            if deleted:
                self._app.save(*deleted)
            return [artifact.path for artifact in deleted]

        return self._app.execute(reason, command)
