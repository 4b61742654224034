"""Checking stored blobs against the digest and size the ledger recorded for them.

A content-addressed blob can still be damaged on disk (a flipped bit, a truncated copy, a
deleted file). Readers use these helpers so that damage is reported, never handed out as
if it were the registered content.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ledger.artifacts.files import CHUNK_SIZE, ProgressCallback, hash_stream
from ledger.artifacts.paths import FileEntry, safe_relative_path
from ledger.artifacts.store import ArtifactStore
from ledger.errors import IntegrityViolationError, InvalidInputError, NotFoundError

DamageKind = Literal["missing", "wrong size", "digest mismatch"]


@dataclass(frozen=True)
class BlobDamage:
    """How a stored blob differs from what the ledger recorded."""

    sha256: str
    size: int
    kind: DamageKind
    actual_size: int | None = None
    actual_sha256: str | None = None

    def describe(self) -> str:
        """One line for people: what is wrong with the blob."""
        if self.kind == "missing":
            return f"blob sha256:{self.sha256} is missing from the artifact store"
        if self.kind == "wrong size":
            return (
                f"blob sha256:{self.sha256} holds {self.actual_size:,} bytes, "
                f"{self.size:,} expected (truncated or overwritten)"
            )
        return f"blob content hashes to sha256:{self.actual_sha256}, expected sha256:{self.sha256}"

    def to_dict(self) -> dict[str, object]:
        return {
            "problem": self.kind,
            "expected_sha256": self.sha256,
            "expected_size": self.size,
            "actual_sha256": self.actual_sha256,
            "actual_size": self.actual_size,
        }


class ArtifactDamagedError(IntegrityViolationError):
    """A blob the ledger references is missing or does not match its digest."""

    def __init__(self, damage: BlobDamage, what: str = "") -> None:
        prefix = f"{what}: " if what else ""
        super().__init__(f"{prefix}{damage.describe()}; run `ledger verify --artifacts`")
        self.damage = damage


def check_present(store: ArtifactStore, sha256: str, size: int) -> BlobDamage | None:
    """Cheap check (one stat): the blob exists and has the recorded size."""
    stored = store.size(sha256)
    if stored is None:
        return BlobDamage(sha256, size, "missing")
    if stored != size:
        return BlobDamage(sha256, size, "wrong size", actual_size=stored)
    return None


def inspect_blob(
    store: ArtifactStore, sha256: str, size: int, on_bytes: ProgressCallback | None = None
) -> BlobDamage | None:
    """Full check: re-hash the blob; None when it is intact."""
    damage = check_present(store, sha256, size)
    if damage is not None:
        return damage
    try:
        with store.open_blob(sha256) as stream:
            actual, actual_size = hash_stream(stream, on_bytes)
    except NotFoundError:  # removed since the check
        return BlobDamage(sha256, size, "missing")
    if actual_size != size:
        return BlobDamage(sha256, size, "wrong size", actual_size=actual_size)
    if actual != sha256:
        return BlobDamage(sha256, size, "digest mismatch", size, actual)
    return None


def verified_chunks(
    store: ArtifactStore, sha256: str, size: int, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """The blob's bytes, with the last chunk held back until the whole blob is checked.

    On a mismatch ArtifactDamagedError is raised instead of the last chunk, so a receiver
    never gets all ``size`` bytes of damaged content.
    """
    hasher = hashlib.sha256()
    total = 0
    pending = b""
    try:
        stream = store.open_blob(sha256)
    except NotFoundError:
        raise ArtifactDamagedError(BlobDamage(sha256, size, "missing")) from None
    with stream:
        while chunk := stream.read(chunk_size):
            hasher.update(chunk)
            total += len(chunk)
            if total > size:
                break  # longer than recorded: no need to read on
            if pending:
                yield pending
            pending = chunk
    if total != size:
        raise ArtifactDamagedError(BlobDamage(sha256, size, "wrong size", actual_size=total))
    actual = hasher.hexdigest()
    if actual != sha256:
        raise ArtifactDamagedError(BlobDamage(sha256, size, "digest mismatch", size, actual))
    if pending:
        yield pending


def materialize_all_or_nothing(
    store: ArtifactStore, entries: Iterable[FileEntry], dest: Path
) -> list[Path]:
    """Write the entries' files under ``dest``; on any failure nothing appears there.

    The files are written and checked in a new folder beside ``dest``, which is then
    renamed to ``dest`` (or, when ``dest`` already holds files, whose files are moved in).
    """
    entries = list(entries)
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise InvalidInputError(f"{dest} is a file, not a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_folder_beside(dest)
    try:
        store.materialize(entries, staging)
        relative = [safe_relative_path(entry.path) for entry in entries]
        if dest.is_dir() and any(dest.iterdir()):
            _move_into(staging, dest, relative)
        else:
            if dest.is_dir():
                dest.rmdir()
            staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [dest / path for path in relative]


def _new_folder_beside(dest: Path) -> Path:
    """An empty folder next to ``dest`` (same filesystem, so renaming is atomic)."""
    while True:
        candidate = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.partial")
        try:
            candidate.mkdir()  # mode from the umask, like the folder it becomes
        except FileExistsError:
            continue
        return candidate


def _move_into(staging: Path, dest: Path, relative: list[str]) -> None:
    """Move checked files into an existing folder; refuse first if any would not fit."""
    base = dest.resolve()
    for path in relative:
        target = dest / path
        if not (base / path).resolve().is_relative_to(base):
            raise InvalidInputError(f"file path resolves outside {dest}: {path!r}")
        if target.is_dir() and not target.is_symlink():
            raise InvalidInputError(f"cannot write {path!r} in {dest}: a folder is in the way")
        for parent in target.relative_to(dest).parents:
            folder = dest / parent
            if folder != dest and folder.exists() and not folder.is_dir():
                raise InvalidInputError(
                    f"cannot write {path!r} in {dest}: a file is in the way ({parent})"
                )
    for path in relative:
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / path, target)
