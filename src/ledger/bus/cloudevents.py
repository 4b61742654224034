"""Ledger events as CloudEvents 1.0 (structured JSON mode), and back.

The envelope version is CloudEvents ``specversion`` 1.0; ``data`` holds the ledger's own
envelope unchanged (position, id, type, actor, reason, correlation and causation ids,
data), so a consumer of either format sees the same fields:

    {"specversion": "1.0", "id": "<aggregate id>/<version>", "source": "<LEDGER_EVENT_SOURCE>",
     "type": "ledger.model_version.registered", "subject": "model_version/<aggregate id>",
     "time": "...", "datacontenttype": "application/json", "ledgerposition": 42,
     "data": {"position": 42, "id": ..., "type": "ModelVersion.Registered", ...}}
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ledger.bus.events import BusEvent

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
POSITION_EXTENSION = "ledgerposition"  # lowercase alphanumerics: a valid extension name


def to_cloudevent(event: BusEvent | dict[str, Any], source: str) -> dict[str, Any]:
    """The CloudEvent carrying ``event`` (a BusEvent or its envelope) from ``source``."""
    envelope = event if isinstance(event, dict) else asdict(event)
    aggregate = envelope["subject"].split(".")[1]
    return {
        "specversion": SPEC_VERSION,
        "id": envelope["id"],
        "source": source,
        "type": envelope["subject"],
        "subject": f"{aggregate}/{envelope['aggregate_id']}",
        "time": envelope["time"],
        "datacontenttype": "application/json",
        POSITION_EXTENSION: envelope["position"],
        "data": envelope,
    }


def event_fields(event: BusEvent) -> dict[str, Any]:
    """What webhook filters and rules see: the event's identity and its data, with the
    fields a version's ``spec`` groups (tags, metrics, ...) lifted beside the others."""
    data = dict(event.data)
    spec = data.get("spec")
    if isinstance(spec, dict):
        data = {**spec, **{k: v for k, v in data.items() if k != "spec"}}
    return {
        "id": event.id,
        "type": event.subject,
        "subject": f"{event.subject.split('.')[1]}/{event.aggregate_id}",
        "time": event.time,
        "actor": event.actor,
        "reason": event.reason,
        "position": event.position,
        "data": data,
    }
