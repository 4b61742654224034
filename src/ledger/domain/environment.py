"""Environments: versioned runtime specs (python, pip, conda, base image)."""

from __future__ import annotations

from uuid import UUID

from ledger.domain.base import aggregate_id
from ledger.domain.versioned import VersionedAsset


def environment_id(name: str) -> UUID:
    return aggregate_id("environment", name)


class Environment(VersionedAsset):
    """An environment name; registering an identical spec again reuses its version."""

    kind = "environment"
