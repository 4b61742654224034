"""An endpoint's traffic history: who changed its deployments, traffic or mirror split (or
saw its health change), when and why, and the split after each change.

Read from the audit view (the endpoint's rows, joined with the events for their details)
and replayed in log order, so each change carries the state it left behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.domain import Endpoint
from ledger.storage.database import LedgerDatabase
from projections.audit import AUDIT, audit_row
from projections.base import event_type

_END = 2**62  # beyond any log position
# The endpoint's events a timeline shows (not data collection nor ground truth).
TIMELINE_EVENTS = tuple(
    event_type(cls)
    for cls in (
        Endpoint.Created,
        Endpoint.DeploymentCreated,
        Endpoint.DeploymentDeleted,
        Endpoint.TrafficChanged,
        Endpoint.MirrorChanged,
        Endpoint.HealthReported,
        Endpoint.Deleted,
    )
)


@dataclass
class TrafficHistory:
    """An endpoint's changes in log order, each with ``traffic``, ``mirror`` and
    ``serving`` (deployment -> "model:version") as they were after it; and per deployment
    still there, who deployed it and when, and when its health was last reported."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    deployed: dict[str, dict[str, str]] = field(default_factory=dict)
    health_at: dict[str, str] = field(default_factory=dict)


def traffic_history(db: LedgerDatabase, endpoint: str, until: int | None = None) -> TrafficHistory:
    """The history of ``endpoint`` up to log position ``until`` (inclusive; None: now)."""
    events, position = db.events_table
    columns = ", ".join(f"a.{c}" for c in AUDIT.column_names)
    types = ", ".join("?" * len(TIMELINE_EVENTS))
    rows = db.execute(
        f"SELECT {columns}, e.state FROM {AUDIT.name} a "
        f"JOIN {events} e ON e.{position} = a.position "
        f"WHERE a.kind = 'endpoint' AND a.scope = ? AND a.name = ? AND a.position <= ? "
        f"AND a.event_type IN ({types}) ORDER BY a.position",
        (endpoint, endpoint, _END if until is None else until, *TIMELINE_EVENTS),
    )
    history = TrafficHistory()
    traffic: dict[str, int] = {}
    mirror: dict[str, int] = {}
    serving: dict[str, str] = {}
    for row in rows:
        change = audit_row(row)
        details = change["details"]
        kind = change["event_type"].rpartition(".")[2]
        deployment = details.get("deployment", "")
        if kind == "DeploymentCreated":
            serving[deployment] = f"{details['model']}:{details['version']}"
            history.deployed[deployment] = {"by": change["actor"], "at": change["time"]}
        elif kind == "DeploymentDeleted":
            serving.pop(deployment, None)
            traffic.pop(deployment, None)
            history.deployed.pop(deployment, None)
            history.health_at.pop(deployment, None)
        elif kind == "TrafficChanged":
            traffic = {name: share for name, share in details["weights"].items() if share}
        elif kind == "MirrorChanged":
            mirror = {name: share for name, share in details["mirror"].items() if share}
        elif kind == "HealthReported":
            history.health_at[deployment] = change["time"]
        change.update(
            change=kind, traffic=dict(traffic), mirror=dict(mirror), serving=dict(serving)
        )
        history.changes.append(change)
    return history
