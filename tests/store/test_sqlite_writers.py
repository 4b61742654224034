"""Processes appending to one SQLite file queue for it instead of sleeping on its lock.

SQLite only: PostgreSQL orders its writers with a table lock of its own (see
tests/store/test_model_versions.py for writers in separate processes on both stores).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ledger.ledger import Ledger
from ledger.settings import Settings
from ledger.storage.sqlite import WriterQueue

REGISTER_WHEN_TOLD = """
import sys
from pathlib import Path
from ledger.ledger import Ledger
ledger = Ledger()
ledger.models.get("queued")  # opened and warm: only the append is left
print("ready", flush=True)
print(ledger.models.register_version("queued", Path(sys.argv[1])).number, flush=True)
"""


def test_an_append_waits_while_another_process_holds_the_writer_queue(
    tmp_path: Path, model_dir: Path
) -> None:
    settings = Settings(home=tmp_path / "home", store="")
    with Ledger(settings) as ledger:
        ledger.models.register_version("queued", model_dir)
    queue = WriterQueue(str(settings.store_location.sqlite_path))
    env = {**os.environ, "LEDGER_HOME": str(settings.home), "LEDGER_STORE": ""}
    with queue.turn():
        writer = subprocess.Popen(
            [sys.executable, "-c", REGISTER_WHEN_TOLD, str(model_dir)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        # Asserting that the append did NOT happen: there is no event to wait on for that;
        # 0.5 s is far longer than one append takes, so a writer ignoring the queue is done.
        time.sleep(0.5)
        assert writer.poll() is None, "the append did not wait for its turn"
    out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0
    assert out.strip() == "2"


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    queue = WriterQueue(str(tmp_path / "ledger.db"))
    inside: list[int] = []
    overlaps: list[int] = []

    def append() -> None:
        for _ in range(200):
            with queue.turn():
                inside.append(1)
                time.sleep(0)  # let another thread run here if it can
                if len(inside) > 1:
                    overlaps.append(len(inside))
                inside.pop()

    threads = [threading.Thread(target=append) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


@pytest.mark.parametrize(("setting", "pragma"), [("", 2), ("full", 2), ("normal", 1)])
def test_the_event_store_syncs_every_commit_unless_told_otherwise(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, setting: str, pragma: int
) -> None:
    """synchronous=FULL (2) by default: a commit survives a power loss; NORMAL (1) only
    when LEDGER_SQLITE_SYNCHRONOUS asks for it."""
    if setting:
        monkeypatch.setenv("LEDGER_SQLITE_SYNCHRONOUS", setting)
    with Ledger(Settings(home=tmp_path / "home", store="")) as ledger:
        ledger.models.register_version("durable", model_dir)
        with ledger.recorder.datastore.transaction(commit=True) as cursor:  # a writer's
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == pragma
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
