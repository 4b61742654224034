"""The webhooks view: each subscription's URL, events, filter, state and who made it."""

from __future__ import annotations

from typing import Any

import orjson

from ledger.domain import LedgerAggregate
from ledger.domain.webhook import Webhook
from ledger.errors import NotFoundError
from ledger.storage.database import LedgerDatabase
from ledger.storage.timestamps import iso
from projections.base import Change, Handler, ReadModel
from projections.tables import Table

WEBHOOKS = Table(
    "ledger_view_webhooks",
    key={"name": "TEXT"},
    columns={
        "url": "TEXT NOT NULL",
        "events": "TEXT NOT NULL",  # JSON list of subject patterns
        "filter": "TEXT NOT NULL",
        "secret_fingerprint": "TEXT NOT NULL",
        "description": "TEXT NOT NULL",
        "state": "TEXT NOT NULL",  # active | paused | deleted
        "pause_cause": "TEXT NOT NULL",  # "" | user | gone
        "created_by": "TEXT NOT NULL",
        "created_at_us": "BIGINT NOT NULL",
        "updated_at_us": "BIGINT NOT NULL",
        "created_position": "BIGINT NOT NULL",  # of its Created event: deliveries start after
    },
)
_COLUMNS = ("name", *WEBHOOKS.columns)
_UPDATABLE = ("url", "events", "filter", "secret_fingerprint", "description")


class WebhooksProjection(ReadModel):
    """Webhook subscriptions by name (deleted ones stay, marked deleted): what `ledger
    webhook list|show`, GET /webhooks and the delivery dispatcher read."""

    name = "webhooks"
    description = "webhook subscriptions: URL, events, filter, state"
    tables = (WEBHOOKS,)

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        return {
            Webhook.Created: self._created,
            Webhook.Updated: self._updated,
            Webhook.Paused: self._paused,
            Webhook.Resumed: self._resumed,
            Webhook.Deleted: self._deleted,
        }

    def _created(self, change: Change) -> None:
        event = change.data
        row = (event["url"], orjson.dumps(event["events"]).decode(), event["filter"],
               event["secret_fingerprint"], event["description"], "active", "",
               event["actor"], change.time_us, change.time_us, change.position)  # fmt: skip
        self.put(WEBHOOKS.name, (event["name"],), row)

    def _updated(self, change: Change) -> None:
        values = dict(zip(_COLUMNS[1:], self._row(change), strict=True))
        for field in _UPDATABLE:
            value = change.data.get(field)
            if value is not None:
                values[field] = orjson.dumps(value).decode() if field == "events" else value
        self._put(change, values)

    def _paused(self, change: Change) -> None:
        values = dict(zip(_COLUMNS[1:], self._row(change), strict=True))
        self._put(change, values | {"state": "paused", "pause_cause": change.data["cause"]})

    def _resumed(self, change: Change) -> None:
        values = dict(zip(_COLUMNS[1:], self._row(change), strict=True))
        self._put(change, values | {"state": "active", "pause_cause": ""})

    def _deleted(self, change: Change) -> None:
        values = dict(zip(_COLUMNS[1:], self._row(change), strict=True))
        self._put(change, values | {"state": "deleted"})

    def _row(self, change: Change) -> tuple[Any, ...]:
        row = self.get(WEBHOOKS.name, (change.entity.name,))
        if row is None:
            raise NotFoundError(f"webhook {change.entity.name!r} is not in the view")
        return tuple(row)

    def _put(self, change: Change, values: dict[str, Any]) -> None:
        values["updated_at_us"] = change.time_us
        self.put(WEBHOOKS.name, (change.entity.name,), tuple(values[c] for c in _COLUMNS[1:]))


# -- queries -----------------------------------------------------------------------------


def list_webhooks(db: LedgerDatabase, *, deleted: bool = False) -> list[dict[str, Any]]:
    """Every webhook by name (deleted ones too with ``deleted``)."""
    clause = "" if deleted else "WHERE state <> 'deleted'"
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM {WEBHOOKS.name} {clause} ORDER BY name")
    return [_webhook(row) for row in rows]


def read_webhook(db: LedgerDatabase, name: str) -> dict[str, Any]:
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM {WEBHOOKS.name} WHERE name = ?", (name,))
    if not rows:
        raise NotFoundError(f"webhook {name!r} does not exist")
    return _webhook(rows[0])


def _webhook(row: tuple[Any, ...]) -> dict[str, Any]:
    item = dict(zip(_COLUMNS, row, strict=True))
    item["events"] = orjson.loads(item["events"])
    item["created_at"] = iso(item.pop("created_at_us"))
    item["updated_at"] = iso(item.pop("updated_at_us"))
    return item
