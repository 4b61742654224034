"""Helpers of the garbage collection tests: runs at a chosen time, and what a store holds."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from ledger.garbage.collector import Collection, GcPolicy
from ledger.garbage.report import GcReport
from ledger.ledger import Ledger

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def later(offset: timedelta):  # type: ignore[no-untyped-def]
    """A clock ``offset`` ahead of the real one: what the store holds looks that much older."""
    return lambda: datetime.now(UTC) + offset


def collect(
    ledger: Ledger,
    *,
    ahead: timedelta = timedelta(0),
    grace: timedelta = HOUR,
    deleted_retention: timedelta = 30 * DAY,
    monitor_retention: timedelta = 90 * DAY,
    dry_run: bool = False,
) -> GcReport:
    """One run as if the clock were ``ahead`` of now (not recorded as an event)."""
    policy = GcPolicy(grace, deleted_retention, monitor_retention)
    return Collection(ledger, policy, dry_run=dry_run, clock=later(ahead)).run()


def keys(ledger: Ledger, prefix: str) -> set[str]:
    return {stored.key for stored in ledger.artifacts.blobs.listing(prefix)}


def blob_keys(ledger: Ledger) -> set[str]:
    """The digests of the blobs in service."""
    return {key.rsplit("/", 1)[-1] for key in keys(ledger, "sha256/")}


def orphan(ledger: Ledger, content: bytes) -> str:
    """A blob no event references (as a refused command leaves behind); its digest."""
    digest, _ = ledger.artifacts.put_stream(io.BytesIO(content))
    return digest


def version_digests(ledger: Ledger, ref: str) -> set[str]:
    return {f["sha256"] for f in ledger.models.get_version(ref).spec["files"]}
