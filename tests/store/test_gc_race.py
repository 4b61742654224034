"""Registrations racing `ledger gc`: nothing referenced is lost, nothing unreferenced stays.

A thread registers versions (each with a file reusing old unreferenced content, which the
store finds and does not write again, and a new one) and deletes every third, while runs
of the collector follow each other with a clock an hour ahead: every unreferenced blob is
past the age check at once (even one a registration is about to commit), and the trash's
grace, two seconds, is all that protects."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from pathlib import Path

from ledger.ledger import Ledger
from tests.conftest import StoreFactory
from tests.gc_support import HOUR, blob_keys, collect, keys, orphan

GRACE = timedelta(seconds=2)  # far longer than a registration takes here
RACE_S = 2.0


class Registrations(threading.Thread):
    """Registers versions until stopped; keeps what each committed version holds."""

    def __init__(self, ledger: Ledger, folder: Path, pool: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.ledger, self.folder, self.pool = ledger, folder, pool
        self.stop = threading.Event()
        self.live: dict[str, dict[str, bytes]] = {}
        self.errors: list[BaseException] = []

    def run(self) -> None:
        choose = random.Random(23).choice
        count = 0
        try:
            while not self.stop.is_set():
                count += 1
                files = {"reused.bin": choose(self.pool), "new.bin": f"new {count}".encode()}
                source = self.folder / str(count)
                source.mkdir()
                for name, content in files.items():
                    (source / name).write_bytes(content)
                ref = self.ledger.models.register_version("racer", source).ref
                self.live[ref] = files
                if count % 3 == 0:
                    self.ledger.models.delete_version(ref)
                    del self.live[ref]
        except BaseException as error:  # reported by the test
            self.errors.append(error)


def test_registrations_racing_gc_lose_nothing_and_leave_nothing_behind(
    store: StoreFactory, artifact_location: str, tmp_path: Path
) -> None:
    settings = store.settings(artifacts=artifact_location)
    with Ledger(settings) as writer, Ledger(settings) as collector:
        pool = [f"old content {i} ".encode() * 200 for i in range(5)]
        for content in pool:
            orphan(writer, content)
        (tmp_path / "sources").mkdir()
        registering = Registrations(writer, tmp_path / "sources", pool)
        registering.start()
        runs, removed, started = 0, 0, time.monotonic()
        while registering.is_alive() and (
            time.monotonic() - started < RACE_S or runs < 3 or len(registering.live) < 5
        ):
            assert time.monotonic() - started < 120, "too slow to race"
            report = collect(collector, ahead=HOUR, grace=GRACE, deleted_retention=timedelta(0))
            runs, removed = runs + 1, removed + report.removed["blobs"].count
        registering.stop.set()
        registering.join(timeout=60)
        assert not registering.errors, registering.errors
        assert removed > 0

        for _ in range(2):  # past the grace: back from the trash, or gone for good
            time.sleep(GRACE.total_seconds() + 0.1)
            collect(collector, ahead=HOUR, grace=GRACE, deleted_retention=timedelta(0))

        referenced = set()
        for ref, files in registering.live.items():
            out = tmp_path / "out" / ref.replace(":", "-")
            collector.models.download_version(ref, out)
            assert {name: (out / name).read_bytes() for name in files} == files
            referenced |= {f["sha256"] for f in collector.models.get_version(ref).spec["files"]}
        assert blob_keys(collector) == referenced
        assert keys(collector, "trash/") == keys(collector, "tmp/") == set()
