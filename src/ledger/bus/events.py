"""What consumers receive: one ledger event, and the subject patterns that select it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import orjson

from ledger.errors import InvalidInputError

ROOT = "ledger"  # the first token of every event's subject
EVERYTHING = f"{ROOT}.>"


@dataclass(frozen=True)
class BusEvent:
    """A ledger event as published: the envelope of ``ledger.storage.feed.event_envelope``."""

    position: int  # in the ledger's log
    id: str  # "aggregate_id/version": stable, the key of exactly-once handling
    subject: str  # ledger.<aggregate>.<event>
    type: str  # "ModelVersion.Registered"
    aggregate_id: str
    aggregate_version: int
    time: str  # ISO 8601, UTC
    actor: str
    reason: str
    correlation_id: str
    causation_id: str
    data: dict[str, Any]

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> BusEvent:
        """The event; fields a newer relay may add are ignored (TypeError if one is missing)."""
        return cls(**{name: envelope[name] for name in _FIELDS if name in envelope})

    @classmethod
    def from_json(cls, payload: bytes) -> BusEvent:
        envelope = orjson.loads(payload)
        if not isinstance(envelope, dict):
            raise TypeError("an event envelope is a JSON object")
        return cls.from_envelope(ledger_envelope(envelope))


_FIELDS = tuple(field.name for field in fields(BusEvent))


def ledger_envelope(payload: dict[str, Any]) -> dict[str, Any]:
    """The ledger envelope in ``payload``: the payload itself, or the ``data`` of a
    CloudEvent carrying one (``ledger.bus.cloudevents``; LEDGER_NATS_EVENT_FORMAT)."""
    data = payload.get("data")
    return data if "specversion" in payload and isinstance(data, dict) else payload


def check_pattern(pattern: str) -> str:
    """A subject pattern must start with ``ledger.``; ``*`` is one token, ``>`` the rest."""
    tokens = pattern.split(".")
    if (
        tokens[0] != ROOT
        or len(tokens) < 2
        or any(not t for t in tokens)
        or ">" in tokens[:-1]
        or any(t not in ("*", ">") and ("*" in t or ">" in t) for t in tokens)
    ):
        raise InvalidInputError(
            f"bad subject pattern {pattern!r}: expected ledger.<aggregate>.<event>, "
            "where * stands for one token and a final > for the rest (e.g. ledger.job.>)"
        )
    return pattern


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: ``ledger.model_version.*``, ``ledger.>``..."""
    wanted = pattern.split(".")
    tokens = subject.split(".")
    for i, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > i
        if i >= len(tokens) or (token != "*" and token != tokens[i]):
            return False
    return len(tokens) == len(wanted)
