"""The group committer on its own (a fake store): who waits, what shares a commit, and who
gets which error."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from ledger.storage.group_commit import GroupCommitter, Outcome, PendingSave
from tests.conftest import wait_for


def event(version: int) -> StoredEvent:
    return StoredEvent("00000000-0000-0000-0000-000000000001", version, "t", b"")


class FakeStore:
    """Positions in order; a save of version 0 is a conflict, of version -1 a bad row that
    fails its whole transaction. The first write can be held until the test lets it go."""

    def __init__(self, *, hold_first: bool = False) -> None:
        self.batches: list[int] = []
        self.position = 0
        self.held, self.go = threading.Event(), threading.Event()
        if not hold_first:
            self.go.set()

    def write(self, batch: Sequence[PendingSave]) -> list[Outcome]:
        self.held.set()
        assert self.go.wait(30)
        if any(p.events[0].originator_version == -1 for p in batch):
            raise ValueError("a row the store refuses")
        self.batches.append(len(batch))
        outcomes: list[Outcome] = []
        for pending in batch:
            if pending.events[0].originator_version == 0:
                outcomes.append(IntegrityError("conflict"))
            else:
                self.position += 1
                outcomes.append([self.position])
        return outcomes


def save_in_thread(writer: GroupCommitter, version: int, results: list[object]) -> threading.Thread:
    def save() -> None:
        try:
            results.append(writer.save([event(version)], None))
        except Exception as error:
            results.append(error)

    thread = threading.Thread(target=save)
    thread.start()
    return thread


def test_a_lone_save_commits_at_once_even_with_a_wait_set() -> None:
    store = FakeStore()
    writer = GroupCommitter(store.write, max_wait_s=5)
    started = time.monotonic()
    assert writer.save([event(1)], None) == [1]
    assert time.monotonic() - started < 1
    assert store.batches == [1]


def test_saves_behind_a_commit_share_the_next_up_to_the_batch_size() -> None:
    store = FakeStore(hold_first=True)
    writer = GroupCommitter(store.write, max_batch=3)
    results: list[object] = []
    threads = [save_in_thread(writer, 1, results)]
    store.held.wait(30)
    threads += [save_in_thread(writer, 1, results) for _ in range(5)]
    wait_for(lambda: len(writer._queue) == 5, 30, "five queued saves")
    store.go.set()
    for thread in threads:
        thread.join(30)
    assert store.batches == [1, 3, 2]
    assert sorted(results) == [[n] for n in range(1, 7)]  # type: ignore[type-var]


def test_a_batch_behind_a_commit_waits_to_fill_up() -> None:
    store = FakeStore(hold_first=True)
    writer = GroupCommitter(store.write, max_batch=3, max_wait_s=30)
    results: list[object] = []
    threads = [save_in_thread(writer, 1, results)]
    store.held.wait(30)
    threads.append(save_in_thread(writer, 1, results))
    wait_for(lambda: len(writer._queue) == 1, 30, "a queued save")
    store.go.set()
    wait_for(lambda: store.batches == [1], 30, "the first commit")
    threads += [save_in_thread(writer, 1, results) for _ in range(2)]  # fill the batch
    for thread in threads:
        thread.join(30)
    assert store.batches == [1, 3]


def test_a_conflict_fails_alone_and_a_refused_row_fails_only_its_save() -> None:
    store = FakeStore(hold_first=True)
    writer = GroupCommitter(store.write)
    results: list[object] = []
    threads = [save_in_thread(writer, 1, results)]
    store.held.wait(30)
    threads += [save_in_thread(writer, v, results) for v in (0, -1, 1)]
    wait_for(lambda: len(writer._queue) == 3, 30, "three queued saves")
    store.go.set()
    for thread in threads:
        thread.join(30)
    errors = sorted(type(r).__name__ for r in results if isinstance(r, Exception))
    assert errors == ["IntegrityError", "ValueError"]
    assert sorted(r for r in results if isinstance(r, list)) == [[1], [2]]


def test_an_unreachable_store_fails_every_save_of_the_batch() -> None:
    def unreachable(batch: Sequence[PendingSave]) -> list[Outcome]:
        raise OperationalError("server closed the connection unexpectedly")

    writer = GroupCommitter(unreachable)
    results: list[object] = []
    for thread in [save_in_thread(writer, 1, results) for _ in range(4)]:
        thread.join(30)
    assert [type(r).__name__ for r in results] == ["OperationalError"] * 4
