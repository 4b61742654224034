"""`ledger checkpoint [keygen|list]`, `ledger prove` and `ledger verify --checkpoints`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ledger.checkpoint_service import checkpoint_now
from ledger.checkpoints import (
    Checkpoint,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    public_pem,
    read_directory,
    stored_checkpoints,
)
from ledger.cli.context import AsJson, console, err_console, load_settings, open_ledger, print_json
from ledger.errors import InvalidInputError, NotFoundError
from ledger.ledger import Ledger
from ledger.proofs import CheckpointCheck, check_checkpoints, prove_entity
from ledger.storage.database import LedgerDatabase

app = typer.Typer(
    help="Signed checkpoints of the log's Merkle tree (run without a command: make one).",
    invoke_without_command=True,
)
URL_TIMEOUT_S = 30

CheckpointsOption = Annotated[
    str,
    typer.Option(
        "--checkpoints",
        help="Also prove each checkpoint (a directory, a file or a server's URL) is a prefix "
        "of today's log",
    ),
]
PublicKeyOption = Annotated[
    Path | None, typer.Option("--public-key", help="Public key (PEM) of the checkpoints' signer")
]


@app.callback()
def checkpoint(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Sign the log's current Merkle tree (size + root) and publish the checkpoint."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    with open_ledger():  # the first use of a store creates it
        pass
    made, published = checkpoint_now(settings)
    if as_json:
        print_json(made.to_dict() | {"published": published})
        return
    console.print(
        f"checkpoint: {made.tree_size:,} events, root {made.root_hash}, key {made.key_id}",
        highlight=False,
        soft_wrap=True,
    )
    for where in published:
        console.print(f"published: {where}", highlight=False, soft_wrap=True)


@app.command()
def keygen(
    out: Annotated[
        Path | None, typer.Option(help="Private key file (default: LEDGER_CHECKPOINT_KEY)")
    ] = None,
) -> None:
    """Create an Ed25519 signing key (mode 0600) and print its public key (also in KEY.pub)."""
    path = out or load_settings().checkpoint_key
    if path is None:
        raise InvalidInputError("name the key file: --out FILE or LEDGER_CHECKPOINT_KEY")
    public = generate_key(path)
    err_console.print(
        f"private key: {path} (keep it off the database host's backups)", soft_wrap=True
    )
    err_console.print(f"public key: {path}.pub, key id {key_id(public)}", soft_wrap=True)
    console.print(public_pem(public), end="", highlight=False)


@app.command("public-key")
def public_key() -> None:
    """Print the public key of LEDGER_CHECKPOINT_KEY (PEM), to give to verifiers."""
    path = load_settings().checkpoint_key
    if path is None:
        raise InvalidInputError("LEDGER_CHECKPOINT_KEY is not set")
    console.print(public_pem(load_private_key(path).public_key()), end="", highlight=False)


@app.command("list")
def list_checkpoints(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first")] = 20,
    as_json: AsJson = False,
) -> None:
    """Checkpoints made on this store (its side table), newest first."""
    with open_ledger() as ledger:
        db = LedgerDatabase(ledger.settings)
        try:
            found = stored_checkpoints(db, limit)
        finally:
            db.close()
    if as_json:
        print_json([c.to_dict() for c in found])
        return
    table = Table("events", "root", "time", "key")
    for c in found:
        table.add_row(f"{c.tree_size:,}", c.root_hash, c.timestamp, c.key_id)
    console.print(table)


def load_checkpoints(source: str) -> list[Checkpoint]:
    """Checkpoints from a directory, a checkpoint file, or a ledger server's URL."""
    if source.startswith(("http://", "https://")):
        return _fetch(source)
    path = Path(source)
    if path.is_file():
        try:
            return [Checkpoint.from_dict(json.loads(path.read_text()))]
        except ValueError as error:
            raise InvalidInputError(f"{path}: {error}") from None
    return read_directory(path)


def _fetch(url: str) -> list[Checkpoint]:
    base = url.rstrip("/")
    if not base.endswith("/checkpoints"):
        base += "/checkpoints"
    try:
        with urllib.request.urlopen(f"{base}?limit=1000", timeout=URL_TIMEOUT_S) as response:
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise InvalidInputError(f"cannot read checkpoints from {base}: {error}") from None
    items = data.get("items", []) if isinstance(data, dict) else []
    return [Checkpoint.from_dict(item) for item in items]


@dataclass(frozen=True)
class CheckpointsReport:
    """Today's tree, and each checkpoint checked against it."""

    tree_size: int
    root_hash: str
    checks: list[CheckpointCheck]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "checkpoints": [check.to_dict() for check in self.checks],
        }


def check_against_checkpoints(
    ledger: Ledger, source: str, public_key_file: Path | None
) -> CheckpointsReport:
    """`ledger verify --checkpoints`: each checkpoint is signed and a prefix of today's log."""
    if public_key_file is None:
        raise InvalidInputError("--checkpoints needs --public-key FILE (the signer's public key)")
    key = load_public_key(public_key_file)
    checkpoints = load_checkpoints(source)
    if not checkpoints:
        raise NotFoundError(f"no checkpoints in {source}")
    db = LedgerDatabase(ledger.settings)
    try:
        tree, checks = check_checkpoints(db, checkpoints, key)
    finally:
        db.close()
    return CheckpointsReport(tree.size, tree.root.hex(), checks)


def print_checkpoints_report(report: CheckpointsReport) -> None:
    for check in report.checks:
        if check.ok:
            console.print(
                f"OK: {check.checkpoint.label} is a prefix of today's log", soft_wrap=True
            )
        else:
            err_console.print(
                f"TAMPERED: {check.checkpoint.label} (root {check.checkpoint.root_hash}): "
                f"{check.problem}",
                highlight=False,
                soft_wrap=True,
            )
    console.print(
        f"today's log: {report.tree_size:,} events, Merkle root {report.root_hash}",
        highlight=False,
        soft_wrap=True,
    )


def prove(
    entity: Annotated[
        str,
        typer.Argument(help="KIND:NAME[:VERSION], e.g. model:iris, model:iris:2, endpoint:shop"),
    ],
    checkpoint_file: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="Checkpoint file (default: the latest made here)"),
    ] = None,
) -> None:
    """Print (JSON) an inclusion proof of each event of an entity against a checkpoint;
    scripts/verify_proof.py checks it offline."""
    with open_ledger() as ledger:
        db = LedgerDatabase(ledger.settings)
        try:
            if checkpoint_file is not None:
                chosen = load_checkpoints(str(checkpoint_file))
            else:
                chosen = stored_checkpoints(db, 1)
            if len(chosen) != 1:
                raise NotFoundError(
                    "no checkpoint to prove against: make one (ledger checkpoint) or "
                    "name one (--checkpoint FILE)"
                )
            proof = prove_entity(db, entity, chosen[0])
        finally:
            db.close()
    print(json.dumps(proof, indent=2))
