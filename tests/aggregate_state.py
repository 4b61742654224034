"""The registry as the aggregates (the write side) know it, shaped like the views' snapshot.

Tests compare the views with this: it is built from the domain objects, not from
any projection code.
"""

from __future__ import annotations

from typing import Any

from ledger.domain import Endpoint, Model
from ledger.ledger import Ledger
from ledger.storage.timestamps import to_microseconds


def registry_from_aggregates(ledger: Ledger) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for name in ledger.names_of(Model.Registered):
        model = ledger.models.get(name)
        versions = {}
        for number in range(1, model.latest_version + 1):
            version = ledger.models.get_version(f"{name}:{number}")
            versions[number] = {
                "status": version.status,
                "flavor": version.spec["flavor"],
                "tags": dict(sorted(version.tags.items())),
                "deployments": sorted(version.deployments, key=lambda d: tuple(d.values())),
                "created_at_us": to_microseconds(version.created_on),
                "created_by": _creator(ledger, version.id),
            }
        models[name] = {
            "description": model.description,
            "latest_version": model.latest_version,
            "tags": dict(sorted(model.tags.items())),
            "aliases": dict(sorted(model.aliases.items())),
            "versions": versions,
            "created_at_us": to_microseconds(model.created_on),
            "created_by": _creator(ledger, model.id),
        }
    endpoints: dict[str, Any] = {}
    for name in ledger.names_of(Endpoint.Created):
        endpoint = ledger.endpoints.get(name)
        endpoints[name] = {
            "kind": endpoint.kind,
            "description": endpoint.description,
            "status": "deleted" if endpoint.deleted else "active",
            "deployments": {
                d: {
                    "model": dep["model"],
                    "version": dep["version"],
                    "environment": dep["environment"],
                    "resources": dict(dep["resources"]),
                    "health": dep["health"],
                    "health_detail": dep["health_detail"],
                }
                for d, dep in sorted(endpoint.deployments.items())
            },
            "traffic": dict(sorted(endpoint.traffic.items())),
            "mirror": dict(sorted(endpoint.mirror.items())),
            "created_at_us": to_microseconds(endpoint.created_on),
            "created_by": _creator(ledger, endpoint.id),
        }
    return {"models": models, "endpoints": endpoints}


def _creator(ledger: Ledger, aggregate_id: Any) -> str:
    return ledger.events_of(aggregate_id)[0].actor
