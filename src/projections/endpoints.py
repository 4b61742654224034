"""The endpoints view: deployments, their resources and health, and the traffic split."""

from __future__ import annotations

from typing import Any

import orjson

from ledger.domain import Endpoint, LedgerAggregate
from ledger.domain.endpoint import Deployment
from ledger.storage.rows import Row
from projections.base import Change, Handler, ReadModel
from projections.tables import Table

ENDPOINTS = Table(
    "ledger_view_endpoints",
    key={"name": "TEXT"},
    columns={
        "kind": "TEXT NOT NULL",
        "description": "TEXT NOT NULL",
        "status": "TEXT NOT NULL",
        "created_at_us": "BIGINT NOT NULL",
        "created_by": "TEXT NOT NULL",
        "created_position": "BIGINT NOT NULL",
    },
    historized=True,
)
DEPLOYMENTS = Table(
    "ledger_view_deployments",
    key={"endpoint": "TEXT", "deployment": "TEXT"},
    columns={
        "model": "TEXT NOT NULL",
        "version": "BIGINT NOT NULL",
        "environment": "TEXT NOT NULL",
        "resources": "TEXT NOT NULL",
        "health": "TEXT NOT NULL",
        "health_detail": "TEXT NOT NULL",
        "traffic": "INTEGER NOT NULL",
        "mirror": "INTEGER NOT NULL",
        "created_at_us": "BIGINT NOT NULL",
        "created_by": "TEXT NOT NULL",
        "sampling_rate": "FLOAT8 NOT NULL",
    },
    indexes=(("model", "version"),),
    historized=True,
)
# Column positions in a DEPLOYMENTS row (after the key).
_HEALTH, _TRAFFIC, _MIRROR, _SAMPLING = 4, 6, 7, 10


def deployment_view(row: Row) -> Deployment:
    """What a deployment serves, how it is doing and what share of its requests it
    collects, from a DEPLOYMENTS row after its key."""
    model, version, environment, resources, health, detail = row[:6]
    return Deployment(
        model=model,
        version=version,
        environment=environment,
        resources=orjson.loads(resources),
        health=health,
        health_detail=detail,
        sampling_rate=float(row[_SAMPLING]),
    )


class EndpointsProjection(ReadModel):
    """Endpoints as operators see them: who serves what, with which share of traffic."""

    name = "endpoints"
    description = "endpoints, deployments, resources, traffic, mirror, health"
    tables = (ENDPOINTS, DEPLOYMENTS)

    def __init__(self) -> None:
        super().__init__()
        self._deployments_of: dict[str, set[str]] = {}

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        return {
            Endpoint.Created: self._created,
            Endpoint.Deleted: self._deleted,
            Endpoint.DeploymentCreated: self._deployment_created,
            Endpoint.DeploymentDeleted: self._deployment_deleted,
            Endpoint.TrafficChanged: self._traffic_changed,
            Endpoint.MirrorChanged: self._mirror_changed,
            Endpoint.HealthReported: self._health_reported,
            Endpoint.DataCollectionChanged: self._data_collection_changed,
        }

    def load(self, db: Any) -> None:
        super().load(db)
        self._deployments_of = {}
        for endpoint, deployment in self.state[DEPLOYMENTS.name].rows:
            self._deployments_of.setdefault(endpoint, set()).add(deployment)

    def forget(self) -> None:
        super().forget()
        self._deployments_of = {}

    def _created(self, change: Change) -> None:
        event = change.data
        self.put(
            ENDPOINTS.name,
            (event["name"],),
            (event["kind"], event["description"], "active", change.time_us, event["actor"],
             change.position),
        )  # fmt: skip

    def _deleted(self, change: Change) -> None:
        key = (change.entity.name,)
        row = self.get(ENDPOINTS.name, key)
        if row is not None:
            self.put(ENDPOINTS.name, key, (row[0], row[1], "deleted", *row[3:]))

    def _deployment_created(self, change: Change) -> None:
        event = change.data
        endpoint = change.entity.name
        self.put(
            DEPLOYMENTS.name,
            (endpoint, event["deployment"]),
            (event["model"], event["version"], event["environment"],
             orjson.dumps(event["resources"]).decode(), "pending", "", 0, 0, change.time_us,
             event["actor"], 0.0),
        )  # fmt: skip
        self._deployments_of.setdefault(endpoint, set()).add(event["deployment"])

    def _deployment_deleted(self, change: Change) -> None:
        event = change.data
        endpoint = change.entity.name
        self.delete(DEPLOYMENTS.name, (endpoint, event["deployment"]))
        self._deployments_of.get(endpoint, set()).discard(event["deployment"])

    def _set_shares(self, endpoint: str, column: int, shares: dict[str, int]) -> None:
        for deployment in sorted(self._deployments_of.get(endpoint, ())):
            key = (endpoint, deployment)
            row = self.get(DEPLOYMENTS.name, key)
            if row is not None:
                share = shares.get(deployment, 0)
                self.put(DEPLOYMENTS.name, key, (*row[:column], share, *row[column + 1 :]))

    def _traffic_changed(self, change: Change) -> None:
        event = change.data
        self._set_shares(change.entity.name, _TRAFFIC, event["weights"])

    def _mirror_changed(self, change: Change) -> None:
        event = change.data
        self._set_shares(change.entity.name, _MIRROR, event["mirror"])

    def _health_reported(self, change: Change) -> None:
        event = change.data
        key = (change.entity.name, event["deployment"])
        row = self.get(DEPLOYMENTS.name, key)
        if row is not None:
            self.put(
                DEPLOYMENTS.name,
                key,
                (*row[:_HEALTH], event["status"], event["detail"], *row[_HEALTH + 2 :]),
            )

    def _data_collection_changed(self, change: Change) -> None:
        event = change.data
        key = (change.entity.name, event["deployment"])
        row = self.get(DEPLOYMENTS.name, key)
        if row is not None:
            rate = float(event["sampling_rate"])
            self.put(DEPLOYMENTS.name, key, (*row[:_SAMPLING], rate, *row[_SAMPLING + 1 :]))
