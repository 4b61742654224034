"""Files uploaded through MLflow's artifact proxy, one aggregate per path.

The bytes live in the content-addressed artifact store; the log records which blob a
path holds (``Uploaded``, again on every re-upload) and when it went (``Deleted``). The
``ledger/`` folder is not uploadable: the proxy serves registered model versions there.
"""

from __future__ import annotations

from uuid import UUID

from ledger.artifacts.paths import check_digest, safe_relative_path
from ledger.domain.base import LedgerAggregate, aggregate_id
from ledger.errors import InvalidInputError, RuleViolationError

RESERVED_FOLDER = "ledger"
"""The proxy's read-only folder: ``ledger/models/<name>/<version>/...`` are the files of
registered model versions."""


def tracked_artifact_id(path: str) -> UUID:
    return aggregate_id("tracked_artifact", path)


def check_artifact_path(path: str) -> str:
    """``path`` normalised (see safe_relative_path), refused when under ``ledger/``."""
    relative = safe_relative_path(path)
    if relative.split("/", 1)[0] == RESERVED_FOLDER:
        raise InvalidInputError(
            f"artifact path {path[:200]!r} is under {RESERVED_FOLDER}/, which is read-only: "
            "it serves the files of registered model versions"
        )
    return relative


class TrackedArtifact(LedgerAggregate):
    """One path of the proxy's artifact tree and the blob it holds (none once deleted)."""

    def __init__(self) -> None:
        self.path = ""
        self.sha256 = ""
        self.size = 0
        self.deleted = True  # until its first upload

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        path: str

        def apply(self, artifact: TrackedArtifact) -> None:
            artifact.path = self.path

    class Uploaded(Event):
        path: str
        sha256: str
        size: int

        def apply(self, artifact: TrackedArtifact) -> None:
            artifact.sha256, artifact.size, artifact.deleted = self.sha256, self.size, False

    class Deleted(Event):
        path: str

        def apply(self, artifact: TrackedArtifact) -> None:
            artifact.sha256, artifact.size, artifact.deleted = "", 0, True

    @classmethod
    def create(cls, path: str) -> TrackedArtifact:
        checked = check_artifact_path(path)
        return cls._create(cls.Created, id=tracked_artifact_id(checked), path=checked)

    def upload(self, sha256: str, size: int) -> None:
        """The path now holds the blob ``sha256`` of ``size`` bytes (again, on a re-upload)."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInputError(f"an artifact's size must be a non-negative integer: {size!r}")
        self.trigger_event(self.Uploaded, path=self.path, sha256=check_digest(sha256), size=size)

    def delete(self) -> None:
        if self.deleted:
            raise RuleViolationError(f"artifact {self.path!r} does not exist")
        self.trigger_event(self.Deleted, path=self.path)
