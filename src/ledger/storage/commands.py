"""Command ids, recorded in the same transaction as the events a command appends.

A save whose acknowledgement was lost (the connection dropped during COMMIT) is
resent by the store; the resend then collides with the first copy. The command
row says whether that first copy committed, and whether it was this very save
(same ``attempt``) or an earlier call with the same command id: a retried
request, which gets the earlier result instead of making the change twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

COMMANDS_TABLE = "ledger_commands"


def new_attempt() -> str:
    """A random token naming one save of one command."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class CommandStamp:
    """What a save records beside its events: the command id and this save's token."""

    command_id: str
    attempt: str = field(default_factory=new_attempt)


@dataclass(frozen=True)
class CommittedCommand:
    """A command id found in the store: which save committed it, and where its events are."""

    command_id: str
    attempt: str
    first_position: int
    event_count: int


def create_commands_table_statement(schema_prefix: str = "") -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {schema_prefix}{COMMANDS_TABLE} "
        "(command_id TEXT PRIMARY KEY, attempt TEXT NOT NULL, "
        "first_position BIGINT NOT NULL, event_count BIGINT NOT NULL)"
    )
