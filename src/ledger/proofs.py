"""Proofs over the log's Merkle tree: checkpoints are prefixes of today's log (consistency),
an entity's events are in a checkpoint's tree (inclusion)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoints import Checkpoint, signature_problem, store_id, stored_blocks
from ledger.domain.base import aggregate_id
from ledger.errors import InvalidInputError, NotFoundError
from ledger.log_tree import BLOCK, LogTree, StoredEvent, events_of
from ledger.merkle import consistency_proof, inclusion_proof, verify_consistency
from ledger.storage.database import LedgerDatabase

PROOF_FORMAT = "lifecycle-ledger-inclusion/v1"
# KIND of `ledger prove KIND:NAME[:VERSION]` -> the kind its aggregate ids derive from.
KINDS = {
    "model": "model",
    "endpoint": "endpoint",
    "environment": "environment",
    "env": "environment",
    "data": "data",
    "pipeline": "pipeline",
    "token": "token",
    "job": "job",
}


@dataclass(frozen=True)
class CheckpointCheck:
    """One checkpoint checked against today's log: OK, or what is wrong."""

    checkpoint: Checkpoint
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    def to_dict(self) -> dict[str, Any]:
        return {
            "tree_size": self.checkpoint.tree_size,
            "timestamp": self.checkpoint.timestamp,
            "root_hash": self.checkpoint.root_hash,
            "ok": self.ok,
            "problem": self.problem,
        }


def check_checkpoints(
    db: LedgerDatabase, checkpoints: list[Checkpoint], public_key: Ed25519PublicKey
) -> tuple[LogTree, list[CheckpointCheck]]:
    """Check each checkpoint's signature, then prove with a consistency proof from the
    tree computed from today's events that the checkpoint's tree is a prefix of it."""
    tree = LogTree(db)
    origin = store_id(db)
    checks = []
    for checkpoint in sorted(checkpoints, key=lambda c: (c.tree_size, c.timestamp)):
        checks.append(CheckpointCheck(checkpoint, _problem(tree, origin, checkpoint, public_key)))
    return tree, checks


def _problem(
    tree: LogTree, origin: str, checkpoint: Checkpoint, public_key: Ed25519PublicKey
) -> str:
    if problem := signature_problem(checkpoint, public_key):
        return problem
    if checkpoint.origin != origin:
        return (
            f"made on store {checkpoint.origin}, but this log's first event makes it "
            f"{origin or 'empty'} (another store, or the first events were rewritten)"
        )
    size = checkpoint.tree_size
    if size > tree.size:
        return (
            f"the checkpoint covers {size:,} events but the log has only {tree.size:,}: "
            "events were deleted"
        )
    proof = consistency_proof(size, tree.size, tree.subtree)
    if not verify_consistency(
        size, tree.size, bytes.fromhex(checkpoint.root_hash), tree.root, proof
    ):
        return (
            f"the log's first {size:,} events are not the ones checkpointed: "
            "events were edited, deleted, inserted or reordered"
        )
    return ""


# -- inclusion proofs ------------------------------------------------------------------------


def parse_entity(entity: str) -> tuple[str, str, int | None]:
    """``KIND:NAME[:VERSION]`` -> (kind, name, version)."""
    kind, _, rest = entity.partition(":")
    name, version = rest, None
    head, sep, tail = rest.rpartition(":")
    if sep and tail.isdigit():
        name, version = head, int(tail)
    if kind not in KINDS or not name:
        raise InvalidInputError(
            f"expected KIND:NAME[:VERSION] with KIND one of {', '.join(KINDS)}, got {entity!r}"
        )
    return KINDS[kind], name, version


def entity_events(db: LedgerDatabase, entity: str) -> list[StoredEvent]:
    """The stored events of an entity: model:iris (the model and its versions),
    model:iris:2, endpoint:shop, data:x:1 (the events of that version), job:<id>..."""
    kind, name, version = parse_entity(entity)
    if kind == "job":
        try:
            ids = [UUID(name)]
        except ValueError:
            raise InvalidInputError(f"a job is named by its id, got {name!r}") from None
        found = events_of(db, ids)
    elif kind == "model":
        found = _model_events(db, name, version)
    else:
        found = events_of(db, [aggregate_id(kind, name)])
        if version is not None:
            found = [e for e in found if json.loads(e.state).get("version") == version]
    if not found:
        raise NotFoundError(f"no events for {entity}")
    return found


def _model_events(db: LedgerDatabase, name: str, version: int | None) -> list[StoredEvent]:
    if version is not None:
        return events_of(db, [aggregate_id("model-version", name, version)])
    found = events_of(db, [aggregate_id("model", name)])
    number = 1
    while versions := events_of(db, [aggregate_id("model-version", name, number)]):
        found.extend(versions)
        number += 1
    return sorted(found, key=lambda event: event.position)


def prove_entity(db: LedgerDatabase, entity: str, checkpoint: Checkpoint) -> dict[str, Any]:
    """An inclusion proof of each event of ``entity`` in the tree ``checkpoint`` signed."""
    events = entity_events(db, entity)
    size = checkpoint.tree_size
    tree = LogTree(db, size, known=stored_blocks(db, size // BLOCK))
    if tree.size != size or tree.root.hex() != checkpoint.root_hash:
        tree = LogTree(db, size)  # the block cache may be stale: the events decide
    if tree.size != size or tree.root.hex() != checkpoint.root_hash:
        raise InvalidInputError(
            f"today's log does not match {checkpoint.label}: run `ledger verify --checkpoints`"
        )
    proofs = []
    for event in events:
        index = tree.index_of(event.position)
        if index is None:
            continue  # appended after the checkpoint
        path = inclusion_proof(index, tree.size, tree.subtree)
        proofs.append(
            {
                "leaf_index": index,
                "position": event.position,
                "aggregate_id": str(event.aggregate_id),
                "aggregate_version": event.version,
                "topic": event.topic,
                "state": base64.b64encode(event.state).decode(),
                "audit_path": [node.hex() for node in path],
            }
        )
    if not proofs:
        raise NotFoundError(f"{entity} has no events in {checkpoint.label}; make a newer one")
    return {
        "format": PROOF_FORMAT,
        "entity": entity,
        "checkpoint": checkpoint.to_dict(),
        "events": proofs,
    }
