"""The public event envelope: the standard fields of every event, and what readers see."""

from __future__ import annotations

from typing import Any

# Standard fields of every event; the rest are the event's own details.
ENVELOPE_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "actor",
        "reason",
        "correlation_id",
        "causation_id",
    }
)
# Fields only the ledger itself reads (a token's hash, which the tokens view matches
# bearer tokens against): never shown to readers, on the feed, the bus or in histories.
SECRET_FIELDS = frozenset({"token_hash"})


def public_details(fields: dict[str, Any]) -> dict[str, Any]:
    """An event's own fields as readers see them: no envelope fields, no secrets."""
    return {k: v for k, v in fields.items() if k not in ENVELOPE_FIELDS | SECRET_FIELDS}
