"""Moving step data through the artifact store: outputs in, inputs and code out."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from ledger.artifacts.paths import FileEntry
from ledger.artifacts.store import ArtifactStore
from ledger.errors import InvalidInputError
from ledger.step_results import FILE_PREFIX, TREE_PREFIX


def store_output(artifacts: ArtifactStore, path: Path) -> str:
    """Store a step's output file or directory; return its reference."""
    if path.is_file():
        digest, _ = artifacts.put_file(path)
        return FILE_PREFIX + digest
    entries = artifacts.put_tree(path)
    manifest = json.dumps([e.to_dict() for e in entries], sort_keys=True).encode()
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".manifest", delete=False) as out:
        out.write(manifest)
    try:
        digest, _ = artifacts.put_file(Path(out.name))
    finally:
        os.unlink(out.name)
    return TREE_PREFIX + digest


def materialize_output(artifacts: ArtifactStore, reference: str, dest: Path) -> Path:
    """Write a stored output to ``dest`` (a file, or a directory for a tree)."""
    if reference.startswith(TREE_PREFIX):
        with artifacts.open_blob(reference.removeprefix(TREE_PREFIX)) as manifest:
            entries = [FileEntry.from_dict(item) for item in json.load(manifest)]
        artifacts.materialize(entries, dest)
        return dest
    if reference.startswith(FILE_PREFIX):
        digest = reference.removeprefix(FILE_PREFIX)
        artifacts.materialize([FileEntry(path=dest.name, sha256=digest, size=0)], dest.parent)
        return dest
    raise InvalidInputError(f"not an output reference: {reference!r}")


def materialize_code(artifacts: ArtifactStore, digest: str, files: list[dict[str, Any]]) -> Path:
    """The pipeline's code as a directory, written once per code digest and reused."""
    target = Path(tempfile.gettempdir()) / "ledger-code" / digest
    if target.is_dir():
        return target
    staging = target.with_name(f".{digest}.{uuid.uuid4().hex}")
    try:
        artifacts.materialize([FileEntry.from_dict(f) for f in files], staging)
        try:
            staging.rename(target)
        except OSError:  # another process wrote it first: theirs is the same content
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
