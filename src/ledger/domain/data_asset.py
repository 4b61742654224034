"""Data assets: versioned references to data with a digest and a profile."""

from __future__ import annotations

from uuid import UUID

from ledger.domain.base import aggregate_id
from ledger.domain.versioned import VersionedAsset


def data_asset_id(name: str) -> UUID:
    return aggregate_id("data", name)


class DataAsset(VersionedAsset):
    """A data asset name; each version records uri, digest and profile (rows, columns)."""

    kind = "data asset"
