"""`ledger gc`: remove what no live event references from the artifact store, safely while
registrations run.

One run, in this order:

1. Read the clock (``started``) and list the store: ``sha256/`` (blobs), ``data/``
   (uploaded data), ``trash/``, ``tmp/`` (staged uploads) and ``collected/``.
2. Mark: read the whole event log (``references``) for what is referenced.
3. Empty the trash: an entry whose key is referenced goes back (a registration raced a
   previous run, see below); the others go for good once in the trash for the grace
   period (``--older-than``, ``LEDGER_GC_GRACE``).
4. Sweep: a blob or data file that is unreferenced and older than the grace moves into the
   trash, in batches; before each batch the events appended since the mark are read and
   what they reference is spared; after each batch, and once more at the end of the run,
   anything the run took that they now reference is put back at once.
5. Staged uploads older than the grace (and than a day: one may be a large file still
   being received or profiled) are deleted, and collected requests older than
   ``LEDGER_MONITOR_RETENTION``.

Why nothing referenced is ever lost. A registration (any command that records a digest)
first stores its blobs, or finds them stored (content addressing skips the write), and
then commits its event. The assumption, for the grace period G: *a registration commits
within G of storing or finding its blobs* (a G of a day, the default, is far longer).

- A blob written after the listing is not seen, so not touched; one written before it but
  within G is too recent to be swept. Neither needs its event in the mark.
- The dangerous case is a registration that *finds* an old unreferenced blob (stored by a
  refused command, or freed by a deleted version) just before the sweep takes it: its
  event is not in the mark. Deleting would lose the blob; so the sweep never deletes, it
  moves the blob to the trash. From the moment the key is empty (time T), every later
  look stores the blob again. So the registration found it before T, and commits before
  T + G. A trash entry is stamped with a time read after its key emptied (at least T), and
  purged only by a run that started more than G after the stamp, and marked after it
  started: that mark holds the registration's event, so the entry goes back instead.
- Concurrent runs: each purges only what its own mark (later than the entry's T + G)
  finds unreferenced, by the same argument. (Runs on several machines: their clocks must
  agree to well within G, as stamps and cutoffs come from each one's clock.)

A run stopped halfway leaves the store consistent: a pending trash entry is stamped by
the next run, and everything else is either in its key or in the trash.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from ledger.application import LedgerApplication
from ledger.artifacts.blobs import StoredObject
from ledger.artifacts.store import blob_key
from ledger.errors import NotFoundError
from ledger.garbage.collected import collection_expired
from ledger.garbage.references import References
from ledger.garbage.report import KINDS, TRASHED_KINDS, GcReport, kind_of
from ledger.garbage.trash import TRASH, TrashEntry, put_back, stamp, take_out, trash_entry
from ledger.logging import get_logger
from ledger.outages import first_line

BATCH = 200
STAGED_MIN_AGE = timedelta(days=1)
"""Staged uploads are younger while received or profiled (a large file can take long)."""
LISTING_PROGRESS_EVERY = 1_000
_SWEPT = re.compile(r"sha256/[0-9a-f]{2}/[0-9a-f]{64}|data/[0-9a-f]{64}/[^/]+")
log = get_logger(__name__)

Progress = Callable[[str, int, int | None], None]
"""Called with (stage, done, total or None) as a run goes."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class GcPolicy:
    """How long things are kept: unreferenced objects and the trash (``older_than``), a
    deleted version's files, and collected requests."""

    older_than: timedelta
    deleted_retention: timedelta
    monitor_retention: timedelta


class Collection:
    """One run of the collector over a ledger's artifact store."""

    def __init__(
        self,
        ledger: LedgerApplication,
        policy: GcPolicy,
        *,
        dry_run: bool = False,
        clock: Callable[[], datetime] = utc_now,
        on_progress: Progress | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = ledger.artifacts
        self.blobs = ledger.artifacts.blobs
        self.policy = policy
        self.dry_run = dry_run
        self.clock = clock
        self._progress = on_progress or (lambda stage, done, total: None)
        self.report = GcReport(started_at=clock(), dry_run=dry_run)
        self._taken: list[str] = []

    def run(self) -> GcReport:
        """The run (once): see the module's docstring."""
        started = self.report.started_at = self.clock()
        cutoff = started - self.policy.older_than
        listing = self._list()
        self._progress("marking", 0, None)
        references = References(self.ledger, self._open_blob)
        references.mark(started, self.policy.deleted_retention)
        self._empty_trash(listing[TRASH], references, cutoff)
        self._sweep(listing["sha256/"] + listing["data/"], references, cutoff)
        staged_before = started - max(self.policy.older_than, STAGED_MIN_AGE)
        self._delete_old(listing["tmp/"], lambda o: o.modified < staged_before)
        expired_before = started - self.policy.monitor_retention
        self._delete_old(listing["collected/"], lambda o: collection_expired(o, expired_before))
        self._put_back_referenced(self._taken, references)
        if not self.dry_run and self.blobs.local_root is not None:
            _prune_empty_folders(self.blobs.local_root, staged_before)
        return self.report

    # -- listing and reading -----------------------------------------------------------

    def _list(self) -> dict[str, list[StoredObject]]:
        listing: dict[str, list[StoredObject]] = {}
        count = 0
        for prefix in (*KINDS, TRASH):
            listing[prefix] = []
            for stored in self.blobs.listing(prefix):
                listing[prefix].append(stored)
                count += 1
                if count % LISTING_PROGRESS_EVERY == 0:
                    self._progress("listing", count, None)
        self._progress("listing", count, count)
        return listing

    def _open_blob(self, digest: str) -> BinaryIO | None:
        """A blob from its key, or else from the trash (a tree manifest to read)."""
        try:
            return self.store.open_blob(digest)
        except NotFoundError:
            pass
        for entry in self._trash_of(blob_key(digest)):
            try:
                return self.blobs.reader(entry.key)
            except FileNotFoundError:
                continue
        return None

    def _trash_of(self, key: str) -> list[TrashEntry]:
        """The trash entries of ``key``, newest first."""
        found = [e for o in self.blobs.listing(f"{TRASH}{key}/") if (e := trash_entry(o))]
        return sorted(found, key=_newest_first)

    # -- the trash ---------------------------------------------------------------------

    def _empty_trash(
        self, listed: list[StoredObject], references: References, cutoff: datetime
    ) -> None:
        by_key: dict[str, list[TrashEntry]] = defaultdict(list)
        for stored in listed:
            entry = trash_entry(stored)
            if entry is not None and kind_of(entry.original) in TRASHED_KINDS:
                by_key[entry.original].append(entry)
        for done, (key, entries) in enumerate(sorted(by_key.items()), 1):
            self._progress("emptying the trash", done, len(by_key))
            if references.holds(key):
                self._restore(key, sorted(entries, key=_newest_first))
                continue
            for entry in entries:
                if entry.trashed_at is None:
                    self._act(stamp, self.blobs, entry.key, entry.original, self.clock)
                elif entry.trashed_at < cutoff and self._act(self.blobs.delete, entry.key):
                    self.report.purged[kind_of(key)].add(entry.size)

    def _restore(self, key: str, entries: list[TrashEntry]) -> None:
        """Put a referenced key's newest entry back unless the key holds it again; then
        its other entries are copies of what the key holds, and go."""
        if self.blobs.size(key) is None:
            if self.dry_run:
                self.report.restored[kind_of(key)].add(entries[0].size)
                return
            while entries and not self._guarded(put_back, self.blobs, entries[0]):
                entries = entries[1:]
            if not entries:
                return
            self.report.restored[kind_of(key)].add(entries[0].size)
            entries = entries[1:]
        for entry in entries:
            self._act(self.blobs.delete, entry.key)

    # -- the sweep ---------------------------------------------------------------------

    def _sweep(self, listed: list[StoredObject], references: References, cutoff: datetime) -> None:
        candidates = []
        for stored in listed:
            if not _SWEPT.fullmatch(stored.key) or references.holds(stored.key):
                continue
            if stored.modified >= cutoff:
                self.report.kept.add(stored.size)
            else:
                candidates.append(stored)
        done, taken = 0, []
        for batch in _batches(candidates, BATCH):
            references.advance()
            batch = [stored for stored in batch if not references.holds(stored.key)]
            taken += [stored.key for stored in batch if self._take_out(stored)]
            self._put_back_referenced(taken, references)
            done += len(batch)
            self._progress("sweeping", done, len(candidates))
        self._taken = taken

    def _put_back_referenced(self, taken: list[str], references: References) -> None:
        """Put back what this run took and the events appended since it read now reference
        (a registration that found it stored just before), so its files are not missing
        until the next run."""
        if references.advance() and not self.dry_run:
            for key in [key for key in taken if references.holds(key)]:
                self._restore(key, self._trash_of(key))
                taken.remove(key)

    def _take_out(self, stored: StoredObject) -> bool:
        if not self.dry_run and not self._guarded(take_out, self.blobs, stored.key, self.clock):
            return False
        self.report.removed[kind_of(stored.key)].add(stored.size)
        return True

    def _delete_old(
        self, listed: list[StoredObject], is_old: Callable[[StoredObject], bool]
    ) -> None:
        for stored in listed:
            if is_old(stored) and self._act(self.blobs.delete, stored.key):
                self.report.removed[kind_of(stored.key)].add(stored.size)

    # -- acting --------------------------------------------------------------------------

    def _act(self, action: Callable[..., object], *args: Any) -> bool:
        """Run one object's step, unless dry; whether it was (or would be) done."""
        return self.dry_run or self._guarded(action, *args)

    def _guarded(self, action: Callable[..., object], *args: Any) -> bool:
        """Run one object's step; a failure is logged and counted, and the run goes on."""
        try:
            return action(*args) is not False
        except Exception as error:  # an object store's errors have no common base
            self.report.failed += 1
            log.warning("gc could not handle an object", error=first_line(error))
            return False


def _newest_first(entry: TrashEntry) -> tuple[int, float]:
    """Pending entries (the latest moves) first, then the stamped ones, newest first."""
    if entry.trashed_at is None:
        return 0, 0.0
    return 1, -entry.trashed_at.timestamp()


def _batches(items: list[StoredObject], size: int) -> Iterator[list[StoredObject]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _prune_empty_folders(root: Path, staged_before: datetime) -> None:
    """Remove the empty folders the trash leaves in a local store, and those of staged
    uploads unchanged since ``staged_before`` (a receiving upload's may be empty a moment)."""
    for prefix, since in ((TRASH, None), ("tmp/", staged_before)):
        top = root / prefix
        for folder, _, _ in sorted(os.walk(top), key=lambda item: -len(item[0])):
            path = Path(folder)
            try:
                changed = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                if path != top and (since is None or changed < since):
                    path.rmdir()
            except OSError:
                continue  # not empty, or gone
