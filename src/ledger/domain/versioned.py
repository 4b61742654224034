"""Named, versioned content: the shape shared by environments, data assets and pipelines."""

from __future__ import annotations

from typing import Any, TypedDict

from ledger.domain.base import LedgerAggregate
from ledger.errors import NotFoundError


class AssetVersion(TypedDict):
    version: int
    digest: str
    content: dict[str, Any]


class VersionedAsset(LedgerAggregate):
    """A name whose versions are numbered 1, 2, 3... and identified by a content digest."""

    kind = "asset"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Each kind of asset has events of its own, so that the log's topics say which kind
        # changed (``ledger.domain.environment:Environment.Created``). Eventsourcing
        # redefines the event classes found on the aggregate class itself, with that
        # class's name: putting the shared ones there gives each kind its own.
        for name in ("Created", "VersionRegistered"):
            if name not in cls.__dict__:
                setattr(cls, name, getattr(VersionedAsset, name))
        super().__init_subclass__(**kwargs)

    def __init__(self) -> None:
        self.name = ""
        self.origin = ""
        self.versions: list[AssetVersion] = []

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        name: str
        origin: str  # where it came from, e.g. the pipeline it was cloned from

        def apply(self, asset: VersionedAsset) -> None:
            asset.name = self.name
            asset.origin = self.origin

    class VersionRegistered(Event):
        version: int
        digest: str
        content: dict[str, Any]

        def apply(self, asset: VersionedAsset) -> None:
            asset.versions.append(
                {"version": self.version, "digest": self.digest, "content": self.content}
            )

    @property
    def latest(self) -> AssetVersion:
        if not self.versions:
            raise NotFoundError(f"{self.kind} {self.name!r} has no versions")
        return self.versions[-1]

    def add_version(self, digest: str, content: dict[str, Any]) -> int:
        version = len(self.versions) + 1
        self.trigger_event(self.VersionRegistered, version=version, digest=digest, content=content)
        return version

    def get_version(self, version: int | None = None) -> AssetVersion:
        """The given version, or the latest when ``version`` is None."""
        if version is None:
            return self.latest
        if not 1 <= version <= len(self.versions):
            raise NotFoundError(f"{self.kind} {self.name}:{version} does not exist")
        return self.versions[version - 1]
