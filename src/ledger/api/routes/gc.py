"""`POST /gc` (admin): a run of the artifact store's garbage collector, as `ledger gc`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ledger.api.auth import Admin
from ledger.api.routes.common import run_command
from ledger.api.schemas import Body, Reason
from ledger.domain.monitor import parse_duration

router = APIRouter(tags=["operations"])


class GcBody(Body):
    older_than: str = Field(
        "", description="Grace period, ISO 8601 (PT1H, P7D); default: LEDGER_GC_GRACE"
    )
    dry_run: bool = Field(False, description="Report what would go; change and record nothing")
    reason: str = Reason


class Tally(BaseModel):
    count: int
    bytes: int


class GcOut(BaseModel):
    """What the run removed (blobs and data into the trash), purged from the trash and put
    back from it, per kind; unreferenced objects kept as too recent; objects it failed on."""

    started_at: str
    dry_run: bool
    removed: dict[str, Tally]
    purged: dict[str, Tally]
    restored: dict[str, Tally]
    kept_recent: Tally
    failed: int
    freed_bytes: int


@router.post("/gc", response_model=GcOut)
def collect_garbage(request: Request, principal: Admin, body: GcBody) -> Any:
    """Remove from the artifact store what no live event references (see the README's
    "Garbage collection"); the run is recorded as `GarbageCollector.Collected`."""
    grace = parse_duration(body.older_than, "older_than") if body.older_than else None
    report = run_command(
        request,
        principal,
        lambda ledger: ledger.gc.collect(
            older_than=grace, dry_run=body.dry_run, reason=body.reason
        ),
    )
    return report.to_dict()
