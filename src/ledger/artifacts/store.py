"""The content-addressed artifact store: files kept once, named by their sha256 digest.

Blobs live at ``sha256/<first two hex digits>/<full hex digest>`` in a local directory or
an object store (``ledger.artifacts.locations``). Every write is atomic, and content is
hashed as it is written: a blob is never stored under a digest its bytes do not have.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ledger.artifacts.blobs import Blobs
from ledger.artifacts.files import (
    HashedChunks,
    ProgressCallback,
    copy_hashing,
    hash_file,
    hash_stream,
    read_chunks,
    read_up_to,
    scan_tree,
    write_checked,
)
from ledger.artifacts.local_blobs import TMP, sync
from ledger.artifacts.locations import RETRY_S, open_blobs
from ledger.artifacts.paths import FileEntry, check_digest, check_no_clashes, safe_relative_path
from ledger.artifacts.received import ReceivedData
from ledger.errors import IntegrityViolationError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from ledger.settings import Settings

BLOBS = "sha256"
SMALL_STREAM_BYTES = 2 * 1024 * 1024
"""A stream up to this size is read whole before it is written: its digest is then known,
so it goes straight to its blob (no temporary key, which an object store copies to move)."""
PRESENCE_CHECKS_IN_FLIGHT = 8  # materialize asks an object store this many at a time


def blob_key(digest: str) -> str:
    """The key of the blob with ``digest`` (a checked sha256 hex digest)."""
    return f"{BLOBS}/{digest[:2]}/{digest}"


class ArtifactStore:
    """Immutable blobs addressed by sha256, in a directory or an object store."""

    def __init__(self, location: Path | str | Blobs, *, retry_s: float = RETRY_S) -> None:
        """``retry_s``: how long an object store's requests are retried while it is away."""
        if isinstance(location, Path | str):
            self.blobs = open_blobs(location, retry_s=retry_s)
        else:
            self.blobs = location
        self.url = self.blobs.url

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactStore:
        """The store the settings name (``LEDGER_ARTIFACTS``, ``LEDGER_ARTIFACTS_RETRY_S``)."""
        return cls(settings.artifacts_location, retry_s=settings.artifacts_retry_s)

    @property
    def root(self) -> Path:
        """The local directory of a local store; an object store has none."""
        if self.blobs.local_root is None:
            raise InvalidInputError(f"the artifact store {self.url} is not a local directory")
        return self.blobs.local_root

    # -- reading -------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob with ``digest`` lives in a local store (whether or not it exists)."""
        return self.root / blob_key(check_digest(digest))

    def size(self, digest: str) -> int | None:
        """The stored blob's size; None when no blob has ``digest``."""
        return self.blobs.size(blob_key(check_digest(digest)))

    def has(self, digest: str) -> bool:
        """Whether a blob with ``digest`` is stored."""
        return self.size(digest) is not None

    def open_blob(self, digest: str) -> BinaryIO:
        """Open a stored blob for reading (unverified; see :meth:`verify`).

        Raises NotFoundError when no blob has that digest.
        """
        try:
            return self.blobs.reader(blob_key(check_digest(digest)))
        except FileNotFoundError:
            raise NotFoundError(f"no blob with sha256 {digest} in {self.url}") from None

    def verify(self, digest: str) -> int:
        """Re-hash a stored blob; return its size or raise IntegrityViolationError."""
        with self.open_blob(digest) as stream:
            actual, size = hash_stream(stream)
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
        """Store a file known to be a regular file (see put_file): hashed first, so content
        stored already is not sent again, then written while hashed again. A local store
        reads it once instead: written under a temporary name while hashed, then renamed
        to its blob (or dropped unsynced when that is stored already)."""
        mismatch = _file_mismatch(source, expected)
        if self.blobs.local_root is not None:
            with source.open("rb") as reader:
                hashed = _Hashing(read_chunks(reader), expected, mismatch, self.has, on_bytes)
                return self._put_staged(hashed)
        digest, size = hash_file(source, on_bytes)
        if expected is not None and digest != expected:
            raise mismatch(digest)
        if self.has(digest):
            return digest, size  # content-addressed blobs never change
        with source.open("rb") as reader:
            changed = InvalidInputError(f"{source} changed while it was being stored")
            self._write_checked(reader, digest, lambda _: changed)
        return digest, size

    def put_stream(
        self, reader: BinaryIO, *, expected_sha256: str | None = None
    ) -> tuple[str, int]:
        """Store what ``reader`` holds, reading it once; return digest, size.

        With ``expected_sha256`` the bytes go straight to their blob and a mismatch stores
        nothing (IntegrityViolationError). Without it a small stream (SMALL_STREAM_BYTES) is
        read and hashed first, then written to its blob unless that is stored already; a
        larger one is written under a temporary key while hashed, then moved to its blob
        (or dropped if it is stored already).
        """
        if expected_sha256 is not None:
            expected = check_digest(expected_sha256)
            if self.has(expected):  # stored already: read the stream anyway, to check it
                digest, size = hash_stream(reader)
                if digest != expected:
                    raise _mismatch(digest, expected)
                return digest, size
            return expected, self._write_checked(reader, expected, None)
        head = read_up_to(reader, SMALL_STREAM_BYTES + 1)
        if len(head) <= SMALL_STREAM_BYTES:  # the whole stream
            digest = hashlib.sha256(head).hexdigest()
            if not self.has(digest):
                self.blobs.write(blob_key(digest), [head])
            return digest, len(head)
        chunks: Iterable[bytes | bytearray] = itertools.chain([head], read_chunks(reader))
        return self._put_staged(_Hashing(chunks, stored_already=self.has))

    def stage_stream(self, reader: BinaryIO) -> tuple[str, int, str | None]:
        """Write what ``reader`` holds under a new ``tmp/`` key while hashing it; return
        digest, size and that key, for the caller to move to its blob (or delete). The key
        is None, and nothing is kept, when the content's blob is stored already."""
        return self._stage(_Hashing(read_chunks(reader), stored_already=self.has))

    def _stage(self, hashed: _Hashing) -> tuple[str, int, str | None]:
        staged = f"{TMP}/upload-{secrets.token_hex(12)}"
        try:
            self.blobs.write(staged, hashed)  # all or nothing: no cleanup on failure
        except _StoredAlready:
            return hashed.hexdigest(), hashed.size, None  # dropped before it was kept
        return hashed.hexdigest(), hashed.size, staged

    def _put_staged(self, hashed: _Hashing) -> tuple[str, int]:
        """Write ``hashed``'s chunks under a temporary key, then move them to their blob;
        should the chunks raise (a mismatch), nothing is kept."""
        digest, size, staged = self._stage(hashed)
        if staged is None:
            return digest, size
        try:
            self.blobs.move(staged, blob_key(digest))
        except BaseException:
            with contextlib.suppress(Exception):  # the move's error is the one to report
                self.blobs.delete(staged)
            raise
        return digest, size

    def _write_checked(
        self, reader: BinaryIO, digest: str, mismatch: Callable[[str], Exception] | None
    ) -> int:
        """Write ``reader`` as the blob ``digest``; should its bytes hash otherwise, the
        write is abandoned (nothing stored) and ``mismatch(actual)`` (or the default) raised."""
        hashed = _Hashing(read_chunks(reader), expected=digest, mismatch=mismatch)
        self.blobs.write(blob_key(digest), hashed)
        return hashed.size

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
        private temporary folder (data is read by path and its name tells the format);
        ``keep()`` keeps it in the store, else it is removed when the block ends."""
        local = self.blobs.local_root
        parent = local / TMP if local is not None else None
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=parent, prefix="data-") as folder:
            path = Path(folder) / safe_relative_path(name).rsplit("/", 1)[-1]
            with path.open("wb") as stream:
                digest, _ = copy_hashing(reader, stream)
                sync(stream)
            yield ReceivedData(path, digest, self.blobs)

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
        for entry, relative in zip(entries, paths, strict=True):
            if not (base / relative).resolve().is_relative_to(base):
                raise InvalidInputError(f"file path resolves outside {dest}: {entry.path!r}")
        for entry, present in zip(entries, self._present(entries), strict=True):
            if not present:
                raise NotFoundError(
                    f"no blob with sha256 {entry.sha256} in {self.url} (for {entry.path!r})"
                )
        return [(entry, dest / relative) for entry, relative in zip(entries, paths, strict=True)]

    def _present(self, entries: list[FileEntry]) -> list[bool]:
        """Whether each entry's blob is stored; an object store is asked several at a time
        (a request each, which for small files costs about what their download does)."""
        digests = [entry.sha256 for entry in entries]
        if self.blobs.local_root is not None or len(digests) < 2:
            return [self.has(digest) for digest in digests]
        with ThreadPoolExecutor(PRESENCE_CHECKS_IN_FLIGHT) as pool:
            return list(pool.map(self.has, digests))

    def _write_verified(self, entry: FileEntry, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidInputError(
                f"cannot create folder for {entry.path!r}: a file is in the way"
            ) from None

        def corrupted(digest: str) -> Exception:
            return IntegrityViolationError(
                f"blob {entry.sha256} for {entry.path!r} is corrupted: "
                f"its content hashes to {digest}"
            )

        try:
            with self.open_blob(entry.sha256) as reader:
                write_checked(reader, target, check_digest(entry.sha256), corrupted, durable=False)
        except IsADirectoryError:
            raise InvalidInputError(
                f"cannot write {entry.path!r}: a folder is in the way"
            ) from None


class _StoredAlready(Exception):
    """Raised by a write's chunks once they turn out to be a stored blob's: drops the write."""


class _Hashing(HashedChunks):
    """Chunks, hashed (and counted to ``on_bytes``) as they are handed out. After the last
    chunk the iteration raises, which drops the write, when the bytes do not hash to
    ``expected`` (``mismatch(actual digest)`` or IntegrityViolationError) or when
    ``stored_already`` says their blob exists (_StoredAlready)."""

    def __init__(
        self,
        chunks: Iterable[bytes | bytearray],
        expected: str | None = None,
        mismatch: Callable[[str], Exception] | None = None,
        stored_already: Callable[[str], bool] | None = None,
        on_bytes: ProgressCallback | None = None,
    ) -> None:
        super().__init__(chunks, on_bytes)
        self._expected = expected
        self._mismatch = mismatch
        self._stored_already = stored_already

    def __iter__(self) -> Iterator[bytes | bytearray]:
        yield from super().__iter__()
        digest = self.hexdigest()
        if self._expected is not None and digest != self._expected:
            raise (self._mismatch or _default_mismatch(self._expected))(digest)
        if self._stored_already is not None and self._stored_already(digest):
            raise _StoredAlready


def _default_mismatch(expected: str) -> Callable[[str], Exception]:
    return lambda actual: _mismatch(actual, expected)


def _file_mismatch(source: Path, expected: str | None) -> Callable[[str], Exception]:
    return lambda actual: IntegrityViolationError(
        f"{source} hashes to sha256 {actual}, expected {expected}"
    )


def _mismatch(actual: str, expected: str) -> IntegrityViolationError:
    return IntegrityViolationError(f"the content hashes to sha256 {actual}, expected {expected}")
