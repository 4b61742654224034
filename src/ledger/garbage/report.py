"""What a `ledger gc` run did (or, dry, would do): objects and bytes per kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KINDS = {"sha256/": "blobs", "data/": "data", "tmp/": "staged", "collected/": "collected"}
"""The store's folders the collector cleans, and the kind each holds."""
TRASHED_KINDS = ("blobs", "data")
"""The kinds that go through the trash (those events reference)."""


def kind_of(key: str) -> str:
    """The kind of object a key (or a trash entry's original key) names."""
    return next((kind for prefix, kind in KINDS.items() if key.startswith(prefix)), "other")


@dataclass
class Tally:
    """How many objects, and how many bytes."""

    count: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.count += 1
        self.bytes += size

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "bytes": self.bytes}


def _tallies(kinds: tuple[str, ...]) -> dict[str, Tally]:
    return {kind: Tally() for kind in kinds}


@dataclass
class GcReport:
    """A run: what left the store's folders (``removed``; blobs and data into the trash,
    the rest deleted), what left the trash for good (``purged``) and what went back from
    it (``restored``), what unreferenced objects were ``kept`` as too recent, and how many
    objects could not be handled (``failed``, logged)."""

    started_at: datetime
    dry_run: bool
    removed: dict[str, Tally] = field(default_factory=lambda: _tallies(tuple(KINDS.values())))
    purged: dict[str, Tally] = field(default_factory=lambda: _tallies(TRASHED_KINDS))
    restored: dict[str, Tally] = field(default_factory=lambda: _tallies(TRASHED_KINDS))
    kept: Tally = field(default_factory=Tally)
    failed: int = 0

    @property
    def freed_bytes(self) -> int:
        """Bytes the store no longer holds: deleted, or purged from the trash."""
        deleted = sum(t.bytes for k, t in self.removed.items() if k not in TRASHED_KINDS)
        return deleted + sum(t.bytes for t in self.purged.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "dry_run": self.dry_run,
            "removed": {kind: tally.to_dict() for kind, tally in self.removed.items()},
            "purged": {kind: tally.to_dict() for kind, tally in self.purged.items()},
            "restored": {kind: tally.to_dict() for kind, tally in self.restored.items()},
            "kept_recent": self.kept.to_dict(),
            "failed": self.failed,
            "freed_bytes": self.freed_bytes,
        }
