"""The lineage view: a graph from data to job to model version to deployment to endpoint.

Nodes are named ``kind:name[:version]`` (``data:iris-train:1``, ``job:<id>``,
``model:iris:2``, ``deployment:shop/blue``, ``endpoint:shop``); an edge points
from what was used to what it produced. Provenance never changes, so nodes and
edges are only ever added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.domain import (
    DataAsset,
    Endpoint,
    Environment,
    Job,
    LedgerAggregate,
    ModelVersion,
    Pipeline,
)
from ledger.errors import InvalidInputError, NotFoundError
from ledger.storage.database import LedgerDatabase
from projections.base import AppendOnlyReadModel, Change, Handler
from projections.tables import Table

NODES = Table(
    "ledger_view_lineage_nodes",
    key={"node": "TEXT"},
    columns={"kind": "TEXT NOT NULL", "label": "TEXT NOT NULL", "position": "BIGINT NOT NULL"},
)
EDGES = Table(
    "ledger_view_lineage_edges",
    key={"src": "TEXT", "dst": "TEXT"},
    columns={"relation": "TEXT NOT NULL", "position": "BIGINT NOT NULL"},
    indexes=(("dst",),),
)
NODE_KINDS = ("data", "environment", "pipeline", "job", "model", "deployment", "endpoint")


def node_id(kind: str, name: str) -> str:
    return f"{kind}:{name}"


class LineageProjection(AppendOnlyReadModel):
    """Where every model version came from, and where it went."""

    name = "lineage"
    description = "data -> job -> model version -> deployment -> endpoint graph"
    tables = (NODES, EDGES)

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        return {
            DataAsset.VersionRegistered: self._asset_version("data"),
            Environment.VersionRegistered: self._asset_version("environment"),
            Pipeline.VersionRegistered: self._asset_version("pipeline"),
            Pipeline.Created: self._pipeline_created,
            Job.Submitted: self._job_submitted,
            ModelVersion.Registered: self._model_version_registered,
            ModelVersion.RenamedFrom: self._model_version_renamed,
            Endpoint.Created: self._endpoint_created,
            Endpoint.DeploymentCreated: self._deployment_created,
        }

    def _node(self, change: Change, kind: str, name: str) -> str:
        node = node_id(kind, name)
        self.add(NODES.name, (node, kind, name, change.position))
        return node

    def _edge(self, change: Change, src: str, dst: str, relation: str) -> None:
        self.add(EDGES.name, (src, dst, relation, change.position))

    def _asset_version(self, kind: str) -> Handler:
        def add_version(change: Change) -> None:
            version: int = change.data["version"]
            self._node(change, kind, f"{change.entity.name}:{version}")

        return add_version

    def _pipeline_created(self, change: Change) -> None:
        event = change.data
        if event["origin"]:  # a clone starts at version 1 of the new pipeline
            clone = node_id("pipeline", f"{event['name']}:1")
            self._edge(change, node_id("pipeline", event["origin"]), clone, "cloned_into")

    def _job_submitted(self, change: Change) -> None:
        event = change.data
        job = self._node(change, "job", change.entity.name)
        pipeline = f"{event['pipeline']}:{event['pipeline_version']}"
        self._edge(change, node_id("pipeline", pipeline), job, "ran")
        for data in event["snapshot"]["data"]:
            self._edge(change, node_id("data", data), job, "input")
        if event["snapshot"]["environment"]:
            self._edge(change, node_id("environment", event["snapshot"]["environment"]), job,
                       "environment")  # fmt: skip

    def _model_version_registered(self, change: Change) -> None:
        event = change.data
        version = self._node(change, "model", change.entity.name)
        lineage = event["spec"]["lineage"]
        if "job" in lineage:
            self._edge(change, node_id("job", lineage["job"]), version, "produced")
        for data in lineage.get("data", []):
            self._edge(change, node_id("data", data), version, "trained_on")
        if "environment" in lineage:
            self._edge(change, node_id("environment", lineage["environment"]), version,
                       "environment")  # fmt: skip
        if "pipeline" in lineage:
            self._edge(change, node_id("pipeline", lineage["pipeline"]), version, "pipeline")
        if "derived_from" in lineage:
            self._edge(change, node_id("model", lineage["derived_from"]), version, "derived")

    def _model_version_renamed(self, change: Change) -> None:
        """A version moved by a rename: what made it made the new one too."""
        self._model_version_registered(change)
        old = node_id("model", f"{change.data['old_name']}:{change.data['version']}")
        self._edge(change, old, node_id("model", change.entity.name), "renamed")

    def _endpoint_created(self, change: Change) -> None:
        self._node(change, "endpoint", change.entity.name)

    def _deployment_created(self, change: Change) -> None:
        event = change.data
        endpoint = change.entity.name
        deployment = self._node(change, "deployment", f"{endpoint}/{event['deployment']}")
        model = node_id("model", f"{event['model']}:{event['version']}")
        self._edge(change, model, deployment, "deployed_as")
        if event["environment"]:
            self._edge(change, node_id("environment", event["environment"]), deployment,
                       "environment")  # fmt: skip
        self._edge(change, deployment, node_id("endpoint", endpoint), "serves")


@dataclass(frozen=True)
class LineageGraph:
    """The nodes reached from ``root`` (with their distance) and the edges walked."""

    root: str
    direction: str
    nodes: dict[str, int]
    edges: list[tuple[str, str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "nodes": [{"node": n, "depth": d} for n, d in self.nodes.items()],
            "edges": [{"from": s, "to": t, "relation": r} for s, t, r in self.edges],
        }


def walk_lineage(db: LedgerDatabase, root: str, direction: str, depth: int) -> LineageGraph:
    """Nodes upstream (what ``root`` came from) or downstream (what came of it), up to
    ``depth`` edges away, breadth first."""
    if direction not in ("upstream", "downstream"):
        raise InvalidInputError("direction must be upstream or downstream")
    if depth < 1:
        raise InvalidInputError("depth must be at least 1")
    if not db.execute(f"SELECT 1 FROM {NODES.name} WHERE node = ?", (root,)):
        raise NotFoundError(
            f"no lineage node {root!r}; nodes are named kind:name[:version] with kind one of "
            f"{', '.join(NODE_KINDS)} (e.g. model:iris:2, data:train:1, deployment:shop/blue)"
        )
    near = "dst" if direction == "upstream" else "src"
    nodes = {root: 0}
    edges: list[tuple[str, str, str]] = []
    frontier = [root]
    for level in range(1, depth + 1):
        found: list[str] = []
        for start in range(0, len(frontier), 500):
            chunk = frontier[start : start + 500]
            for src, dst, relation in db.execute(
                f"SELECT src, dst, relation FROM {EDGES.name} "
                f"WHERE {near} IN ({', '.join('?' * len(chunk))}) ORDER BY position, src, dst",
                chunk,
            ):
                edges.append((src, dst, relation))
                reached = src if direction == "upstream" else dst
                if reached not in nodes:
                    nodes[reached] = level
                    found.append(reached)
        if not found:
            break
        frontier = found
    return LineageGraph(root, direction, nodes, edges)
