"""`ledger verify --artifacts`: re-hash stored files, name the versions whose files are damaged."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.application import LedgerApplication
from ledger.artifact_audit import ArtifactReport, audit_artifacts
from ledger.cli.context import byte_progress, console, err_console

ArtifactsOption = Annotated[
    bool,
    typer.Option(
        "--artifacts",
        help="Also re-hash every stored file of model versions (not deleted) and pipelines",
    ),
]


def check_artifacts(ledger: LedgerApplication) -> ArtifactReport:
    """Audit the artifact store with a progress bar (on stderr, gone when done)."""
    with byte_progress("re-hashing stored files") as on_progress:
        return audit_artifacts(ledger, on_progress=on_progress)


def print_artifact_report(report: ArtifactReport) -> None:
    """OK with counts, or one line per damaged file naming its version (on stderr)."""
    if report.ok:
        console.print(
            f"OK: {report.files:,} stored files ({report.blobs:,} blobs, {report.bytes:,} bytes) "
            f"of {len(report.owners):,} versions match their digests"
        )
        return
    for damaged in report.damaged:
        err_console.print(
            f"DAMAGED {damaged.ref.owner}, file {damaged.ref.path!r}: {damaged.damage.describe()}",
            highlight=False,
            soft_wrap=True,
        )
    err_console.print(
        f"{len(report.damaged):,} damaged file(s) in {len(report.damaged_owners):,} version(s): "
        + ", ".join(report.damaged_owners),
        highlight=False,
        soft_wrap=True,
    )
