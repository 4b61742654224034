"""The public shape of a model, a model version and an endpoint: one definition each.

The views build them (``projections.registry_queries``, ``projections.search``), the
API returns and documents them (they are its response models), and the CLI prints
them with ``--json``. A write answered before the views have caught up with it builds
the same shape from the command's result (``committed_version``, ``committed_endpoint``).
They are typed dicts: free to build, and pydantic turns them into the OpenAPI schema
(which is why they come from typing_extensions: pydantic needs that before Python 3.12).
"""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from ledger.domain.endpoint import Deployment, Endpoint, sampling_rate_of
from ledger.domain.model import (
    DeploymentRef,
    Lineage,
    ModelVersion,
    Origin,
    StoredFile,
    VersionSpec,
)
from ledger.storage.timestamps import iso, to_microseconds


class ModelOut(TypedDict):
    """A registered model: its tags, its aliases (alias -> version) and live versions."""

    name: str
    description: str
    latest_version: int
    live_versions: int
    tags: dict[str, str]
    aliases: dict[str, int]
    created_at: str
    created_by: str


class VersionOut(TypedDict):
    """A model version with everything known about it, and where it is deployed."""

    model: str
    version: int
    ref: str
    status: str
    flavor: str
    description: str
    tags: dict[str, str]
    aliases: list[str]
    metrics: dict[str, float]
    signature: dict[str, Any]
    lineage: Lineage
    origin: Origin
    files: list[StoredFile]
    size: int
    deployments: list[DeploymentRef]
    created_at: str
    created_by: str


class VersionItem(TypedDict):
    """A model version as a search lists it: without its spec and deployments."""

    model: str
    version: int
    ref: str
    flavor: str
    status: str
    tags: dict[str, str]
    aliases: list[str]
    created_at: str
    created_by: str


class DeploymentOut(Deployment):
    """A deployment of an endpoint, with its shares of the traffic and of the mirror."""

    traffic: int
    mirror: int
    deployed_at: str
    deployed_by: str


class EndpointOut(TypedDict):
    """An endpoint, its deployments, and the non-zero traffic and mirror shares."""

    name: str
    kind: str
    description: str
    deleted: bool
    deployments: dict[str, DeploymentOut]
    traffic: dict[str, int]
    mirror: dict[str, int]
    created_at: str
    created_by: str


def version_out(
    model: str,
    number: int,
    spec: VersionSpec,
    *,
    status: str,
    tags: dict[str, str],
    aliases: list[str],
    deployments: list[DeploymentRef],
    created_at_us: int,
    created_by: str,
) -> VersionOut:
    """A version's public shape from what it was registered with (``spec``) and what
    has happened to it since."""
    return VersionOut(
        model=model,
        version=number,
        ref=f"{model}:{number}",
        status=status,
        flavor=spec["flavor"],
        description=spec["description"],
        tags=tags,
        aliases=aliases,
        metrics=spec["metrics"],
        signature=spec["signature"],
        lineage=spec["lineage"],
        origin=spec.get("origin", {}),
        files=spec["files"],
        size=sum(f["size"] for f in spec["files"]),
        deployments=deployments,
        created_at=iso(created_at_us),
        created_by=created_by,
    )


def committed_version(version: ModelVersion, created_by: str) -> VersionOut:
    """A version just registered, from the command's result (no alias points at it yet)."""
    return version_out(
        version.model_name,
        version.number,
        version.spec,
        status=version.status,
        tags=dict(version.tags),
        aliases=[],
        deployments=list(version.deployments),
        created_at_us=to_microseconds(version.created_on),
        created_by=created_by,
    )


def committed_endpoint(endpoint: Endpoint) -> EndpointOut:
    """An endpoint just written, from the command's result. Who created it and who
    deployed what, and when, are in the views once they catch up (empty here)."""
    deployments = {
        name: DeploymentOut(
            **(deployment | {"sampling_rate": sampling_rate_of(deployment)}),
            traffic=endpoint.traffic.get(name, 0),
            mirror=endpoint.mirror.get(name, 0),
            deployed_at="",
            deployed_by="",
        )
        for name, deployment in endpoint.deployments.items()
    }
    return EndpointOut(
        name=endpoint.name,
        kind=endpoint.kind,
        description=endpoint.description,
        deleted=endpoint.deleted,
        deployments=deployments,
        traffic={d: share for d, share in endpoint.traffic.items() if share},
        mirror={d: share for d, share in endpoint.mirror.items() if share},
        created_at=iso(to_microseconds(endpoint.created_on)),
        created_by="",
    )
