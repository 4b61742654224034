"""Data assets: versioned references to data with a digest and a profile."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.domain.base import aggregate_id
from ledger.domain.versioned import VersionedAsset
from ledger.errors import RuleViolationError


def data_asset_id(name: str) -> UUID:
    return aggregate_id("data", name)


class DataAsset(VersionedAsset):
    """A data asset name; each version records uri, digest and profile (rows, columns)
    and, in its profile, where its sketch is kept (``{"digest": ..., "bytes": ...}``)."""

    kind = "data asset"

    class VersionProfiled(VersionedAsset.Event):
        """A version registered without a sketch got one (its profile gains ``sketch``)."""

        version: int
        sketch: dict[str, Any]

        def apply(self, asset: DataAsset) -> None:
            index = self.version - 1
            content = asset.versions[index]["content"]
            profile = {**content["profile"], "sketch": self.sketch}
            # New dicts: the registering event's content is never changed in place.
            asset.versions[index] = {
                **asset.versions[index],
                "content": {**content, "profile": profile},
            }

    def add_sketch(self, version: int, sketch: dict[str, Any]) -> None:
        """Record the sketch of a version that has none."""
        if "sketch" in self.get_version(version)["content"]["profile"]:
            raise RuleViolationError(f"data asset {self.name}:{version} already has a sketch")
        self.trigger_event(self.VersionProfiled, version=version, sketch=sketch)
