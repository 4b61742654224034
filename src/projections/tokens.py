"""The tokens view: which API token hash belongs to which name and role."""

from __future__ import annotations

from typing import Any

from ledger.domain import ApiToken, LedgerAggregate
from ledger.storage.database import LedgerDatabase
from ledger.storage.timestamps import iso
from projections.base import Change, Handler, ReadModel
from projections.tables import Table

TOKENS = Table(
    "ledger_view_tokens",
    key={"name": "TEXT"},
    columns={
        "role": "TEXT NOT NULL",
        "token_hash": "TEXT NOT NULL",
        "revoked": "BIGINT NOT NULL",
        "issued_at_us": "BIGINT NOT NULL",
        "issued_by": "TEXT NOT NULL",
    },
    indexes=(("token_hash",),),
)


class TokensProjection(ReadModel):
    """API tokens by name, looked up by hash on every authenticated request."""

    name = "tokens"
    description = "API token names, roles and hashes (never the secrets)"
    tables = (TOKENS,)

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        return {
            ApiToken.Issued: self._issued,
            ApiToken.Reissued: self._issued,
            ApiToken.Revoked: self._revoked,
        }

    def _issued(self, change: Change) -> None:
        event = change.data
        row = (event["role"], event["token_hash"], 0, change.time_us, event["actor"])
        self.put(TOKENS.name, (change.entity.name,), row)

    def _revoked(self, change: Change) -> None:
        key = (change.entity.name,)
        row = self.get(TOKENS.name, key)
        if row is not None:
            self.put(TOKENS.name, key, (row[0], row[1], 1, *row[3:]))


def token_holder(db: LedgerDatabase, token_hash: str) -> tuple[str, str] | None:
    """(name, role) of the live token with this hash, or None."""
    rows = db.execute(
        f"SELECT name, role FROM {TOKENS.name} WHERE token_hash = ? AND revoked = 0",
        (token_hash,),
    )
    return (rows[0][0], rows[0][1]) if rows else None


def list_tokens(db: LedgerDatabase) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "role": role,
            "revoked": bool(revoked),
            "issued_at": iso(issued_at_us),
            "issued_by": issued_by,
        }
        for name, role, revoked, issued_at_us, issued_by in db.execute(
            f"SELECT name, role, revoked, issued_at_us, issued_by FROM {TOKENS.name} ORDER BY name"
        )
    ]
