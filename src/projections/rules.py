"""The rules view: each rule's spec and counts, every firing or skip, and every approval."""

from __future__ import annotations

from typing import Any

import orjson

from ledger.domain import LedgerAggregate
from ledger.domain.approval import Approval, short_id
from ledger.domain.rule import Rule
from ledger.errors import InvalidInputError, NotFoundError
from ledger.storage.database import LedgerDatabase
from ledger.storage.timestamps import iso
from projections.base import Change, Handler, ReadModel
from projections.tables import Table

RULES = Table(
    "ledger_view_rules",
    key={"name": "TEXT"},
    columns={
        "version": "BIGINT NOT NULL",
        "spec": "TEXT NOT NULL",  # JSON: RuleSpec.model_dump(mode="json")
        "enabled": "BIGINT NOT NULL",
        "fired": "BIGINT NOT NULL",
        "skipped": "BIGINT NOT NULL",
        "last_fired_at_us": "BIGINT NOT NULL",  # 0: never
        "since_position": "BIGINT NOT NULL",  # the rule judges only events after its creation
        "updated_by": "TEXT NOT NULL",
        "updated_at_us": "BIGINT NOT NULL",
    },
)
FIRINGS = Table(
    "ledger_view_rule_firings",
    key={"rule": "TEXT", "position": "BIGINT"},
    columns={
        "event_id": "TEXT NOT NULL",
        "subject": "TEXT NOT NULL",
        "outcome": "TEXT NOT NULL",  # fired | skipped
        "reason": "TEXT NOT NULL",
        "actions": "TEXT NOT NULL",  # JSON list of summaries
        "approval_id": "TEXT NOT NULL",  # short id, '' when none
        "correlation_id": "TEXT NOT NULL",
        "time_us": "BIGINT NOT NULL",
    },
    indexes=(("rule", "correlation_id"),),
)
APPROVALS = Table(
    "ledger_view_approvals",
    key={"id": "TEXT"},  # the full id
    columns={
        "short_id": "TEXT NOT NULL",
        "rule": "TEXT NOT NULL",
        "rule_version": "BIGINT NOT NULL",
        "event_id": "TEXT NOT NULL",
        "role": "TEXT NOT NULL",
        "actions": "TEXT NOT NULL",  # JSON list of rendered actions
        "state": "TEXT NOT NULL",  # pending | approved | rejected | expired
        "expires_at": "TEXT NOT NULL",
        "requested_at_us": "BIGINT NOT NULL",
        "decided_by": "TEXT NOT NULL",
        "reason": "TEXT NOT NULL",
        "decided_at_us": "BIGINT NOT NULL",
    },
    indexes=(("short_id",), ("state",)),
)
STATES = ("pending", "approved", "rejected", "expired")
_DECISIONS = {Approval.Approved: "approved", Approval.Rejected: "rejected",
              Approval.Expired: "expired"}  # fmt: skip


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class RulesProjection(ReadModel):
    """Rules by name, their firings, and approvals: what `ledger rule ...`, `ledger
    approval ...`, GET /rules and GET /approvals print, and what the rule engine reads."""

    name = "rules"
    description = "rules: specs, enabled, firings and skips with reasons, approvals"
    tables = (RULES, FIRINGS, APPROVALS)

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        decisions: dict[type[LedgerAggregate.Event], Handler] = {
            event: self._decided for event in _DECISIONS
        }
        return {
            Rule.Applied: self._applied,
            Rule.Disabled: self._enabled,
            Rule.Enabled: self._enabled,
            Rule.Fired: self._fired,
            Rule.Skipped: self._fired,
            Approval.Requested: self._requested,
            **decisions,
        }

    def _applied(self, change: Change) -> None:
        name, event = change.entity.name, change.data
        old = self.get(RULES.name, (name,))
        kept = old[2:6] if old else (int(event["spec"].get("enabled", True)), 0, 0, 0)
        since = old[6] if old else change.position
        row = (event["version"], _json(event["spec"]), *kept, since, event["actor"],
               change.time_us)  # fmt: skip
        self.put(RULES.name, (name,), row)

    def _enabled(self, change: Change) -> None:
        old = self.get(RULES.name, (change.entity.name,))
        if old is not None:
            enabled = int(change.event_type.endswith(".Enabled"))
            row = (*old[:2], enabled, *old[3:7], change.data["actor"], change.time_us)
            self.put(RULES.name, (change.entity.name,), row)

    def _fired(self, change: Change) -> None:
        name, event = change.entity.name, change.data
        fired = change.event_type.endswith(".Fired")
        approval = event.get("approval_id", "")
        row = (event["event_id"], event["subject"], "fired" if fired else "skipped",
               event["reason"], _json(event.get("actions", [])),
               short_id(approval) if approval else "", event["correlation_id"],
               change.time_us)  # fmt: skip
        self.put(FIRINGS.name, (name, change.position), row)
        old = self.get(RULES.name, (name,))
        if old is not None:
            version, spec, enabled, count_fired, count_skipped, last, *rest = old
            if fired:
                count_fired, last = count_fired + 1, change.time_us
            else:
                count_skipped += 1
            row = (version, spec, enabled, count_fired, count_skipped, last, *rest)
            self.put(RULES.name, (name,), row)

    def _requested(self, change: Change) -> None:
        event = change.data
        row = (short_id(change.aggregate_id), event["rule"], event["rule_version"],
               event["event_id"], event["role"], _json(event["actions"]), "pending",
               event["expires_at"], change.time_us, "", "", 0)  # fmt: skip
        self.put(APPROVALS.name, (change.aggregate_id,), row)

    def _decided(self, change: Change) -> None:
        old = self.get(APPROVALS.name, (change.aggregate_id,))
        if old is not None:
            state = change.event_type.rpartition(".")[2].lower()
            row = (*old[:6], state, *old[7:9], change.data["actor"], change.data["reason"],
                   change.time_us)  # fmt: skip
            self.put(APPROVALS.name, (change.aggregate_id,), row)


# -- queries -----------------------------------------------------------------------------

_RULE_COLUMNS = ("name", *RULES.columns)
_FIRING_COLUMNS = ("rule", *FIRINGS.columns, "position")
_APPROVAL_COLUMNS = ("id", *APPROVALS.columns)


def list_rules(db: LedgerDatabase) -> list[dict[str, Any]]:
    rows = db.execute(f"SELECT {', '.join(_RULE_COLUMNS)} FROM {RULES.name} ORDER BY name")
    return [_rule(row) for row in rows]


def read_rule(db: LedgerDatabase, name: str) -> dict[str, Any]:
    rows = db.execute(
        f"SELECT {', '.join(_RULE_COLUMNS)} FROM {RULES.name} WHERE name = ?", (name,)
    )
    if not rows:
        raise NotFoundError(f"rule {name!r} does not exist")
    return _rule(rows[0])


def _rule(row: tuple[Any, ...]) -> dict[str, Any]:
    item = dict(zip(_RULE_COLUMNS, row, strict=True))
    item["spec"] = orjson.loads(item["spec"])
    item["enabled"] = bool(item["enabled"])
    last = item.pop("last_fired_at_us")
    item["last_fired_at"] = iso(last) if last else None
    item["updated_at"] = iso(item.pop("updated_at_us"))
    return item


def rule_firings(
    db: LedgerDatabase, name: str, *, limit: int = 50, correlation_id: str = ""
) -> list[dict[str, Any]]:
    """The rule's firings and skips, the latest first (of one correlation id if given)."""
    where, params = "rule = ?", [name]
    if correlation_id:
        where, params = f"{where} AND correlation_id = ?", [*params, correlation_id]
    rows = db.execute(
        f"SELECT rule, {', '.join(FIRINGS.columns)}, position FROM {FIRINGS.name} "
        f"WHERE {where} ORDER BY position DESC LIMIT ?",
        (*params, limit),
    )
    if not rows and not correlation_id:
        read_rule(db, name)  # NotFoundError for an unknown rule
    return [_firing(row) for row in rows]


def count_fired(db: LedgerDatabase, name: str, correlation_id: str) -> int:
    """How many times the rule fired within one correlation id."""
    rows = db.execute(
        f"SELECT COUNT(*) FROM {FIRINGS.name} "
        "WHERE rule = ? AND correlation_id = ? AND outcome = 'fired'",
        (name, correlation_id),
    )
    return int(rows[0][0])


def _firing(row: tuple[Any, ...]) -> dict[str, Any]:
    item = dict(zip(_FIRING_COLUMNS, row, strict=True))
    item["actions"] = orjson.loads(item["actions"])
    item["time"] = iso(item.pop("time_us"))
    return item


def list_approvals(db: LedgerDatabase, state: str = "") -> list[dict[str, Any]]:
    """Approvals (in ``state``), the latest first."""
    if state and state not in STATES:
        raise InvalidInputError(f"unknown state {state!r}; expected one of {', '.join(STATES)}")
    where, params = ("WHERE state = ?", (state,)) if state else ("", ())
    rows = db.execute(
        f"SELECT {', '.join(_APPROVAL_COLUMNS)} FROM {APPROVALS.name} {where} "
        "ORDER BY requested_at_us DESC",
        params,
    )
    return [_approval(row) for row in rows]


def read_approval(db: LedgerDatabase, approval: str) -> dict[str, Any]:
    """An approval by its short id (or any longer prefix of its hex id, or its full id)."""
    text = approval.strip().lower().replace("-", "")
    if len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
        raise NotFoundError(f"approval {approval!r} does not exist")
    rows = db.execute(
        f"SELECT {', '.join(_APPROVAL_COLUMNS)} FROM {APPROVALS.name} WHERE short_id LIKE ?",
        (text[:12] + "%",),
    )
    found = [row for row in rows if str(row[0]).replace("-", "").startswith(text)]
    if not found:
        raise NotFoundError(f"approval {approval!r} does not exist")
    if len(found) > 1:
        matches = ", ".join(sorted(str(row[0]) for row in found))
        raise InvalidInputError(
            f"approval {approval!r} is ambiguous: it starts {len(found)} approvals ({matches}); "
            "give more of the id"
        )
    return _approval(found[0])


def _approval(row: tuple[Any, ...]) -> dict[str, Any]:
    item = dict(zip(_APPROVAL_COLUMNS, row, strict=True))
    item["actions"] = orjson.loads(item["actions"])
    item["requested_at"] = iso(item.pop("requested_at_us"))
    decided = item.pop("decided_at_us")
    item["decided_at"] = iso(decided) if decided else None
    return item
