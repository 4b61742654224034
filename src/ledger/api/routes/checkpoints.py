"""Signed checkpoints of the log's Merkle tree, as published: public, like a transparency log.

They hold only a size, a root hash, a time and a signature, so anyone may fetch them
(``ledger verify --checkpoints URL`` does, without a token).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from ledger.api.auth import services_of
from ledger.checkpoints import stored_checkpoints
from ledger.errors import NotFoundError

router = APIRouter(tags=["checkpoints"])


class CheckpointOut(BaseModel):
    """A signed checkpoint; the signature covers every other field (see the README)."""

    format: str
    origin: str = Field(description="Store id: the first 16 hex digits of the first chain hash")
    tree_size: int = Field(description="Events in the tree")
    root_hash: str = Field(description="RFC 9162 Merkle root (hex)")
    timestamp: str
    key_id: str = Field(description="First 16 hex digits of SHA-256 of the raw public key")
    signature: str = Field(description="Ed25519 signature (base64)")


class CheckpointList(BaseModel):
    items: list[CheckpointOut]


def _read(request: Request, limit: int) -> list[dict[str, Any]]:
    with services_of(request).pool.views() as views:
        return [checkpoint.to_dict() for checkpoint in stored_checkpoints(views.db, limit)]


@router.get("/checkpoints", response_model=CheckpointList)
def checkpoints(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    """Checkpoints this server (or `ledger checkpoint`) made, newest first."""
    return {"items": _read(request, limit)}


@router.get("/checkpoints/latest", response_model=CheckpointOut)
def latest_checkpoint(request: Request) -> Any:
    """The newest checkpoint (404 when none was made yet)."""
    found = _read(request, 1)
    if not found:
        raise NotFoundError("no checkpoint was made yet")
    return found[0]
