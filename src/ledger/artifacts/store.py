"""The content-addressed artifact store: files kept once, named by their sha256 digest.

Blobs live at ``<root>/sha256/<first two hex digits>/<full hex digest>``. Every write goes
to a temporary file on the same filesystem first and is then moved into place with
``os.replace``, so a reader never sees a half-written blob or materialised file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ledger.artifacts.files import ProgressCallback, hash_file, read_chunks, scan_tree
from ledger.artifacts.paths import FileEntry, check_digest, check_no_clashes, safe_relative_path
from ledger.errors import IntegrityViolationError, InvalidInputError, NotFoundError


class ReceivedData:
    """An uploaded data file in the store's ``tmp``, with its sha256 ``digest``."""

    def __init__(self, path: Path, digest: str, target: Path) -> None:
        self.path = path
        self.digest = digest
        self._target = target

    def keep(self) -> Path:
        """Move the file to ``data/<digest>/<its name>`` (the same content under the same
        name is kept once) and return where it is kept."""
        if not self._target.is_file():
            self._target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path, self._target)
        return self._target.resolve()


class ArtifactStore:
    """A directory of immutable blobs addressed by sha256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- reading -------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob with ``digest`` lives (whether or not it exists)."""
        return self._blob_path(check_digest(digest))

    def _blob_path(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def has(self, digest: str) -> bool:
        """Whether a blob with ``digest`` is stored."""
        return self.blob_path(digest).is_file()

    def open_blob(self, digest: str) -> BinaryIO:
        """Open a stored blob for reading (unverified; see :meth:`verify`).

        Raises NotFoundError when no blob has that digest.
        """
        try:
            return self.blob_path(digest).open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"no blob with sha256 {digest} in {self.root}") from None

    def verify(self, digest: str) -> int:
        """Re-hash a stored blob; return its size or raise IntegrityViolationError."""
        if not self.has(digest):
            raise NotFoundError(f"no blob with sha256 {digest} in {self.root}")
        actual, size = hash_file(self.blob_path(digest))
        if actual != check_digest(digest):
            raise IntegrityViolationError(
                f"blob {digest} is corrupted: its content hashes to {actual}"
            )
        return size

    # -- writing -------------------------------------------------------------------

    def put_file(
        self,
        source: Path,
        *,
        expected_sha256: str | None = None,
        on_bytes: ProgressCallback | None = None,
    ) -> tuple[str, int]:
        """Store one file; return ``(sha256 hex digest, size)``.

        Identical content is stored once. When ``expected_sha256`` is given and the file
        does not hash to it, IntegrityViolationError is raised and nothing is stored.
        """
        expected = None if expected_sha256 is None else check_digest(expected_sha256)
        source = Path(source)
        if not source.is_file():
            raise InvalidInputError(f"no such file: {source}")
        return self._store(source, expected, on_bytes)

    def _store(
        self, source: Path, expected: str | None, on_bytes: ProgressCallback | None
    ) -> tuple[str, int]:
        """Store a file known to be a regular file (see put_file)."""
        digest, size = hash_file(source, on_bytes)
        if expected is not None and digest != expected:
            raise IntegrityViolationError(
                f"{source} hashes to sha256 {digest}, expected {expected}"
            )
        target = self._blob_path(digest)
        if target.is_file():
            return digest, size  # already stored: content-addressed blobs never change
        stream, temp = _create_temp(self.root / "tmp", "upload")
        try:
            copied, size = _copy_hashing(source, stream)
            if copied != digest:
                raise InvalidInputError(f"{source} changed while it was being stored")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, target)
        finally:
            _unlink_quietly(temp)
        return digest, size

    def put_stream(self, reader: BinaryIO) -> tuple[str, int]:
        """Store what ``reader`` holds, reading it once (an upload: hashed as it is written
        to a temporary file, then synced and renamed to its blob); return digest, size.
        Content stored already is not synced again: its temporary file is dropped."""
        stream, temp = _create_temp(self.root / "tmp", "upload")
        try:
            with stream:
                digest, size = _hash_into(reader, stream)
                target = self._blob_path(digest)
                if target.is_file():  # content-addressed blobs never change
                    return digest, size
                _sync(stream)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, target)
        finally:
            _unlink_quietly(temp)
        return digest, size

    def put_tree(
        self, source: Path, on_progress: Callable[[int, int], None] | None = None
    ) -> list[FileEntry]:
        """Store a file or every regular file under a directory; return entries by path.

        A single file becomes one entry named by its basename. All paths are checked
        (missing source, empty directory, symlink escaping the directory) before anything
        is stored, so a refused tree leaves the store untouched. ``on_progress`` is
        called with (bytes done, bytes in all) as the files are read.
        """
        source = Path(source)
        try:
            mode = source.stat().st_mode
        except FileNotFoundError:
            raise InvalidInputError(f"no such file or directory: {source}") from None
        if stat.S_ISDIR(mode):
            files = scan_tree(source)
            if not files:
                raise InvalidInputError(f"directory holds no files: {source}")
        elif stat.S_ISREG(mode):
            files = [(safe_relative_path(source.name), source)]
        else:
            raise InvalidInputError(f"not a regular file or directory: {source}")
        on_bytes = None
        if on_progress is not None:
            total, done = sum(path.stat().st_size for _, path in files), 0

            def on_bytes(count: int) -> None:
                nonlocal done
                done += count
                on_progress(done, total)

        entries = []
        for relative, path in files:
            digest, size = self._store(path, None, on_bytes)
            entries.append(FileEntry(path=relative, sha256=digest, size=size))
        return entries

    @contextmanager
    def receiving_data(self, reader: BinaryIO, name: str) -> Iterator[ReceivedData]:
        """An uploaded data file, written once (hashed as it is written) as ``name`` in a
        private folder under ``tmp`` (data is read by path and its name tells the format);
        ``keep()`` moves it into place, else it is removed when the block ends."""
        with tempfile.TemporaryDirectory(dir=self._tmp_root(), prefix="data-") as folder:
            path = Path(folder) / safe_relative_path(name).rsplit("/", 1)[-1]
            digest, _ = _write_hashing(reader, path.open("wb"))
            yield ReceivedData(path, digest, self.root / "data" / digest / path.name)

    def _tmp_root(self) -> Path:
        root = self.root / "tmp"
        root.mkdir(parents=True, exist_ok=True)
        return root

    # -- materialising -------------------------------------------------------------

    def materialize(self, entries: Iterable[FileEntry], dest: Path) -> list[Path]:
        """Write each entry's blob to ``dest/<entry.path>``; return the written paths.

        Every entry is checked first (safe path inside ``dest``, even through existing
        symlinks; no duplicates; blob present), so a refused set writes nothing. Content
        is re-hashed while copying: a corrupted blob raises IntegrityViolationError and
        leaves no partial file behind.
        """
        dest = Path(dest)
        planned = self._plan(list(entries), dest)
        written = []
        for entry, target in planned:
            self._write_verified(entry, target)
            written.append(target)
        return written

    def _plan(self, entries: list[FileEntry], dest: Path) -> list[tuple[FileEntry, Path]]:
        base = dest.resolve()
        paths = [safe_relative_path(entry.path) for entry in entries]
        check_no_clashes(paths)
        planned = []
        for entry, relative in zip(entries, paths, strict=True):
            target = dest / relative
            if not (base / relative).resolve().is_relative_to(base):
                raise InvalidInputError(f"file path resolves outside {dest}: {entry.path!r}")
            if not self.has(entry.sha256):
                raise NotFoundError(
                    f"no blob with sha256 {entry.sha256} in {self.root} (for {entry.path!r})"
                )
            planned.append((entry, target))
        return planned

    def _write_verified(self, entry: FileEntry, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidInputError(
                f"cannot create folder for {entry.path!r}: a file is in the way"
            ) from None
        stream, temp = _create_temp(target.parent, "ledger-materialize")
        try:
            digest, _ = _copy_hashing(self.blob_path(entry.sha256), stream)
            if digest != check_digest(entry.sha256):
                raise IntegrityViolationError(
                    f"blob {entry.sha256} for {entry.path!r} is corrupted: "
                    f"its content hashes to {digest}"
                )
            try:
                os.replace(temp, target)
            except IsADirectoryError:
                raise InvalidInputError(
                    f"cannot write {entry.path!r}: a folder is in the way"
                ) from None
        finally:
            _unlink_quietly(temp)


def _copy_hashing(source: Path, stream: BinaryIO) -> tuple[str, int]:
    """Copy ``source`` into the open ``stream`` (then closed and synced); return digest, size."""
    with source.open("rb") as reader:
        return _write_hashing(reader, stream)


def _write_hashing(reader: BinaryIO, stream: BinaryIO) -> tuple[str, int]:
    """Copy what ``reader`` holds into the open ``stream`` (then synced and closed);
    return digest, size."""
    with stream:
        written = _hash_into(reader, stream)
        _sync(stream)
    return written


def _hash_into(reader: BinaryIO, stream: BinaryIO) -> tuple[str, int]:
    """Copy what ``reader`` holds into ``stream``, hashing it; return digest, size."""
    hasher = hashlib.sha256()
    size = 0
    for chunk in read_chunks(reader):
        hasher.update(chunk)
        stream.write(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def _sync(stream: BinaryIO) -> None:
    stream.flush()
    os.fsync(stream.fileno())


def _create_temp(directory: Path, stem: str) -> tuple[BinaryIO, Path]:
    """Open a new, exclusively created temporary file in ``directory`` (umask applies)."""
    directory.mkdir(parents=True, exist_ok=True)
    while True:
        candidate = directory / f".{stem}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        return os.fdopen(fd, "wb"), candidate


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)
