"""`ledger gc`: what goes, what stays, the trash's grace, and a registration that races it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.artifacts.paths import FileEntry
from ledger.artifacts.store import blob_key
from ledger.domain.garbage_collector import GarbageCollector, garbage_collector_id
from ledger.errors import NotFoundError
from ledger.ledger import Ledger
from tests.gc_support import DAY, HOUR, blob_keys, collect, keys, orphan, version_digests

OLD_HOUR = "collected/endpoint=shop/deployment=blue/hour=2020-01-01T00"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_unreferenced_objects_go_through_the_trash_and_referenced_ones_stay(
    ledger_on_stores: Ledger, model_dir: Path, tmp_path: Path
) -> None:
    ledger, blobs = ledger_on_stores, ledger_on_stores.artifacts.blobs
    ledger.models.register_version("iris", model_dir)
    referenced = version_digests(ledger, "iris:1")
    lost = orphan(ledger, b"a refused upload")
    blobs.write(f"data/{'ab' * 32}/rows.csv", [b"a,b\n1,2\n"])  # data kept, never recorded
    blobs.write("tmp/upload-0123", [b"half"])  # a staged upload left behind
    this_hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    blobs.write(f"{OLD_HOUR}/r-1.parquet", [b"old rows"])
    blobs.write(f"{OLD_HOUR}/r-1.sketch", [b"old sketch"])
    recent = f"collected/endpoint=shop/deployment=blue/hour={this_hour}/r-2.parquet"
    blobs.write(recent, [b"new rows"])

    first = collect(ledger, ahead=2 * DAY)  # staged uploads wait a day, whatever the grace
    assert first.removed["blobs"].to_dict() == {"count": 1, "bytes": len(b"a refused upload")}
    assert first.removed["data"].to_dict() == {"count": 1, "bytes": 8}
    assert first.removed["staged"].to_dict() == {"count": 1, "bytes": 4}
    assert first.removed["collected"].to_dict() == {"count": 2, "bytes": 18}
    assert first.freed_bytes == 4 + 18  # blobs and data wait in the trash
    assert blob_keys(ledger) == referenced and lost not in blob_keys(ledger)
    assert keys(ledger, "data/") == keys(ledger, "tmp/") == set()
    assert keys(ledger, "collected/") == {recent}
    assert len(keys(ledger, "trash/")) == 2

    within_grace = collect(ledger, ahead=2 * DAY + HOUR / 2)
    assert within_grace.purged["blobs"].count == 0 and len(keys(ledger, "trash/")) == 2
    past_grace = collect(ledger, ahead=2 * DAY + 2 * HOUR)
    assert past_grace.purged["blobs"].to_dict() == {"count": 1, "bytes": len(b"a refused upload")}
    assert past_grace.purged["data"].count == 1 and past_grace.freed_bytes == 16 + 8
    assert keys(ledger, "trash/") == set()
    assert blob_keys(ledger) == referenced
    ledger.models.download_version("iris:1", tmp_path / "out")
    assert _tree(tmp_path / "out") == _tree(model_dir)


def test_recent_objects_stay_and_a_dry_run_changes_and_records_nothing(
    ledger_on_stores: Ledger,
) -> None:
    ledger = ledger_on_stores
    lost = orphan(ledger, b"stored a moment ago")
    recent = collect(ledger)
    assert recent.kept.count == 1 and recent.removed["blobs"].count == 0
    assert lost in blob_keys(ledger)

    time.sleep(1.1)
    second = timedelta(seconds=1)
    head = ledger.event_count()
    dry = ledger.gc.collect(older_than=second, dry_run=True)
    assert dry.dry_run and dry.removed["blobs"].count == 1
    assert lost in blob_keys(ledger) and keys(ledger, "trash/") == set()
    assert ledger.event_count() == head

    done = ledger.gc.collect(older_than=second, reason="tidy up")
    assert done.removed["blobs"].count == 1 and lost not in blob_keys(ledger)
    run = ledger.events_of(garbage_collector_id())[-1]
    assert isinstance(run, GarbageCollector.Collected) and run.reason == "tidy up"
    assert run.removed["blobs"] == {"count": 1, "bytes": len(b"stored a moment ago")}
    assert run.older_than == "PT1S" and run.store == ledger.artifacts.url


def test_a_blob_found_before_the_sweep_and_referenced_after_it_comes_back(
    ledger_on_stores: Ledger, tmp_path: Path
) -> None:
    """The race content addressing makes: a registration finds an old unreferenced blob
    stored (so does not write it), the sweep takes it, then the registration commits."""
    ledger = ledger_on_stores
    found = orphan(ledger, b"weights stored by a refused registration")
    assert ledger.artifacts.has(found)  # the registration finds it: no write
    collect(ledger, ahead=DAY)  # the sweep: no event references it yet
    assert found not in blob_keys(ledger)
    entry = FileEntry("model.bin", found, len(b"weights stored by a refused registration"))
    ledger.models.register_stored_files("late", lambda store: [entry])  # commits now
    with pytest.raises(NotFoundError, match="no blob"):
        ledger.models.download_version("late:1", tmp_path / "early")

    back = collect(ledger, ahead=DAY)  # any later run, within the trash's grace
    assert back.restored["blobs"].count == 1 and back.purged["blobs"].count == 0
    assert found in blob_keys(ledger) and keys(ledger, "trash/") == set()
    ledger.models.download_version("late:1", tmp_path / "out")
    assert (tmp_path / "out" / "model.bin").read_bytes().startswith(b"weights")
    collect(ledger, ahead=30 * DAY)
    assert found in blob_keys(ledger)


def test_a_run_stopped_between_its_two_moves_is_finished_by_the_next(
    ledger_on_stores: Ledger,
) -> None:
    ledger = ledger_on_stores
    left = orphan(ledger, b"moved, never stamped")
    pending = f"trash/{blob_key(left)}/pending.0123abcd"
    ledger.artifacts.blobs.move(blob_key(left), pending)  # the first move only
    stamping = collect(ledger, ahead=DAY)
    (stamped,) = keys(ledger, "trash/")
    assert stamped != pending and stamping.purged["blobs"].count == 0
    purging = collect(ledger, ahead=DAY + 2 * HOUR)
    assert purging.purged["blobs"].count == 1 and keys(ledger, "trash/") == set()


def test_a_deleted_versions_files_go_after_the_retention_unless_shared(
    ledger: Ledger, tmp_path: Path
) -> None:
    for name, own in (("one", b"first"), ("two", b"second")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "shared.bin").write_bytes(b"the same base weights")
        (tmp_path / name / f"{name}.bin").write_bytes(own)
        ledger.models.register_version("clf", tmp_path / name)
    first, second = version_digests(ledger, "clf:1"), version_digests(ledger, "clf:2")
    ledger.models.delete_version("clf:2")

    assert collect(ledger, ahead=DAY).removed["blobs"].count == 0  # within 30 days
    freed = collect(ledger, ahead=40 * DAY)
    assert freed.removed["blobs"].to_dict() == {"count": 1, "bytes": len(b"second")}
    assert blob_keys(ledger) == first and len(second - first) == 1


def test_an_object_that_cannot_be_removed_is_counted_and_the_run_goes_on(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = ledger.artifacts.blobs
    blobs.write("tmp/upload-stuck", [b"held by the filesystem"])
    lost = orphan(ledger, b"unreferenced")
    delete = blobs.delete

    def refusing(key: str) -> None:
        if key == "tmp/upload-stuck":
            raise PermissionError(13, "Permission denied", key)
        delete(key)

    monkeypatch.setattr(blobs, "delete", refusing)
    report = collect(ledger, ahead=2 * DAY)
    assert report.failed == 1 and report.removed["staged"].count == 0
    assert report.removed["blobs"].count == 1
    assert lost not in blob_keys(ledger) and keys(ledger, "tmp/") == {"tmp/upload-stuck"}
