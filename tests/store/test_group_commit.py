"""Group commit: the commands a process's threads save while a commit is in flight share the
next transaction. Versions stay exactly 1..N, every command gets its own answer once, a
refused or conflicting command fails or retries alone, and a process killed in the middle of
a batch leaves all of it or none of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from ledger.errors import InvalidInputError, RuleViolationError
from ledger.ledger import Ledger
from ledger.storage.group_commit import GroupCommitter, Outcome, PendingSave
from tests.aggregate_state import model_versions
from tests.conftest import PG_URL, StoreFactory, wait_for


def writer_of(ledger: Ledger) -> GroupCommitter:
    writer: GroupCommitter = ledger.recorder.writer  # type: ignore[attr-defined]
    return writer


@contextmanager
def batches_seen(ledger: Ledger) -> Iterator[list[list[Outcome]]]:
    """The outcomes of every batch the ledger's writer commits, batch by batch."""
    writer = writer_of(ledger)
    write, seen = writer._write, []

    def recording(batch: Sequence[PendingSave]) -> list[Outcome]:
        outcomes = write(batch)
        seen.append(outcomes)
        return outcomes

    writer._write = recording
    try:
        yield seen
    finally:
        writer._write = write


class HeldCommit:
    """The writer's next commit, held in flight (not yet written) until ``release``."""

    def __init__(self, writer: GroupCommitter) -> None:
        self.writer, self.write = writer, writer._write
        self.held, self.go = threading.Event(), threading.Event()

    def holding(self, batch: Sequence[PendingSave]) -> list[Outcome]:
        if not self.held.is_set():
            self.held.set()
            assert self.go.wait(60), "the test never released the commit"
        return self.write(batch)

    def wait_held(self) -> None:
        wait_for(self.held.is_set, 60, "the first commit")

    def release(self, queued: int) -> None:
        """Let the commit go once ``queued`` saves wait behind it."""
        self.wait_held()
        wait_for(lambda: len(self.writer._queue) >= queued, 60, f"{queued} queued saves")
        self.go.set()


@contextmanager
def first_commit_held(ledger: Ledger) -> Iterator[HeldCommit]:
    held = HeldCommit(writer_of(ledger))
    held.writer._write = held.holding
    try:
        yield held
    finally:
        held.go.set()
        held.writer._write = held.write


def run_behind_a_held_commit(
    held: HeldCommit, first: Callable[[], None], then: list[Callable[[], None]], queued: int
) -> list[BaseException]:
    """``first`` makes the commit the test holds; ``then`` run meanwhile, and ``queued``
    of them save and queue behind it before it goes."""
    errors: list[BaseException] = []
    leader = threading.Thread(target=lambda: errors.extend(run_threads([first])))
    leader.start()
    held.wait_held()
    followers = threading.Thread(target=lambda: errors.extend(run_threads(then)))
    followers.start()
    held.release(queued)
    leader.join(timeout=60)
    followers.join(timeout=300)
    return errors


def run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def assert_exact_versions(ledger: Ledger, numbers: dict[str, list[int]]) -> None:
    """Each model's answered versions are exactly 1..N, and so are its stored ones."""
    for name, answered in numbers.items():
        assert sorted(answered) == list(range(1, len(answered) + 1)), name
        stored = [v.number for v in model_versions(ledger, name, limit=1000)]
        assert stored == list(range(len(answered), 0, -1)), name
    assert ledger.verify().ok


def test_sixteen_threads_into_the_same_and_different_models(
    ledger: Ledger, model_dir: Path
) -> None:
    numbers: dict[str, list[int]] = {"shared": []} | {f"own-{t}": [] for t in range(16)}
    lock = threading.Lock()

    def registrations(thread: int) -> Callable[[], None]:
        def register() -> None:
            for i in range(20):
                name = "shared" if i % 2 else f"own-{thread}"
                number = ledger.models.register_version(name, model_dir).number
                with lock:
                    numbers[name].append(number)

        return register

    with batches_seen(ledger) as batches, first_commit_held(ledger) as held:
        registering = [registrations(t) for t in range(16)]
        errors = run_behind_a_held_commit(held, registering[0], registering[1:], 8)
    assert not errors
    assert sum(map(len, numbers.values())) == 16 * 20  # every command answered once
    assert_exact_versions(ledger, numbers)
    assert max(map(len, batches)) >= 8, "saves queued behind a commit share the next one"


REGISTER_IN_A_PROCESS = """
import sys, threading
from pathlib import Path
from ledger.ledger import Ledger
ledger, process, lines = Ledger(), sys.argv[2], []
def register(thread):
    for i in range(10):
        name = "shared" if i % 2 else f"own-{process}-{thread}"
        lines.append(f"{name} {ledger.models.register_version(name, Path(sys.argv[1])).number}")
threads = [threading.Thread(target=register, args=(t,)) for t in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join()
print("\\n".join(lines))
"""


def test_four_processes_of_four_threads_into_the_same_and_different_models(
    ledger: Ledger, store: StoreFactory, model_dir: Path
) -> None:
    env = {**os.environ, **store.env()}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", REGISTER_IN_A_PROCESS, str(model_dir), str(p)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(4)
    ]
    numbers: dict[str, list[int]] = {}
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        for line in out.splitlines():
            name, number = line.split()
            numbers.setdefault(name, []).append(int(number))
    assert sum(map(len, numbers.values())) == 4 * 4 * 10
    assert len(numbers) == 1 + 16
    assert_exact_versions(ledger, numbers)


def test_refused_commands_in_a_batch_are_refused_alone(ledger: Ledger, model_dir: Path) -> None:
    ledger.models.register_version("ranker", model_dir)
    ledger.endpoints.create("shop", "online")
    ledger.endpoints.deploy("shop", "blue", "ranker:1")
    numbers: dict[str, list[int]] = {"ranker": [1]} | {f"m{t}": [] for t in range(6)}
    refusals: list[Exception] = []

    def register(name: str) -> Callable[[], None]:
        return lambda: numbers[name].append(ledger.models.register_version(name, model_dir).number)

    def refused(command: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                command()
            except (RuleViolationError, InvalidInputError) as refusal:
                refusals.append(refusal)

        return run

    delete_deployed = refused(lambda: ledger.models.delete_version("ranker:1"))
    bad_split = refused(lambda: ledger.endpoints.set_traffic("shop", {"blue": 60}))
    with batches_seen(ledger) as batches, first_commit_held(ledger) as held:
        mixed = [register(f"m{t}") for t in range(6)] + [delete_deployed, bad_split] * 2
        errors = run_behind_a_held_commit(held, register("ranker"), mixed, 6)
    assert not errors
    assert (
        sorted(type(r).__name__ for r in refusals)
        == ["InvalidInputError"] * 2 + ["RuleViolationError"] * 2
    )
    assert_exact_versions(ledger, numbers)
    assert [len(batch) for batch in batches] == [1, 6]  # the refused ones never got there
    assert ledger.models.get_version("ranker:1").status == "ready"
    assert ledger.endpoints.get("shop").traffic == {"blue": 100}


def test_a_conflicting_command_rolls_back_alone_and_retries(
    ledger: Ledger, model_dir: Path
) -> None:
    """Two registrations decide on the same state of `iris` while a commit is in flight:
    in their shared batch one commits, the other conflicts alone and runs again."""
    ledger.models.register_version("iris", model_dir)
    numbers: dict[str, list[int]] = {"iris": [1], "other": [], "third": []}

    def register(name: str) -> Callable[[], None]:
        return lambda: numbers[name].append(ledger.models.register_version(name, model_dir).number)

    with batches_seen(ledger) as batches, first_commit_held(ledger) as held:
        then = [register("iris"), register("iris"), register("third")]
        errors = run_behind_a_held_commit(held, register("other"), then, 3)
    assert not errors
    assert_exact_versions(ledger, numbers)
    shared = batches[1]
    assert len(shared) == 3
    conflicts = [outcome for outcome in shared if isinstance(outcome, IntegrityError)]
    assert len(conflicts) == 1, shared
    assert len(batches) == 3 and not isinstance(batches[2][0], Exception)  # the retry


KILLED_IN_A_BATCH = """
import sys, threading
from pathlib import Path
from ledger.ledger import Ledger

model, kind = Path(sys.argv[1]), sys.argv[2]
ledger = Ledger()
recorder, writer = ledger.recorder, ledger.recorder.writer
write, write_save, batches = writer._write, getattr(recorder, "_write_save", None), []

def held_write(batch):  # the first commit waits until eight saves queue behind it
    batches.append(len(batch))
    while len(batches) == 1 and len(writer._queue) < 8:
        threading.Event().wait(0.001)
    return write(batch)

def stalling_write_save(c, pending):  # SQLite: all eight written, not yet committed
    written = write_save(c, pending)
    if len(batches) == 2:
        in_batch.append(pending)
        if len(in_batch) == batches[1]:
            print("stalled", flush=True)
            threading.Event().wait()
    return written

def register(i):
    with ledger.on_behalf_of("tester", command_id=f"c{i}"):
        ledger.models.register_version(f"m{i}", model)

writer._write = held_write
in_batch = []
if kind == "sqlite":
    recorder._write_save = stalling_write_save
first = threading.Thread(target=register, args=(0,))
first.start()
while not batches:
    threading.Event().wait(0.001)
for i in range(1, 9):
    threading.Thread(target=register, args=(i,)).start()
threading.Event().wait()
"""


def test_a_process_killed_in_the_middle_of_a_batch_leaves_all_of_it_or_none(
    ledger: Ledger, store: StoreFactory, model_dir: Path
) -> None:
    """SQLite: killed with the eight saves written but not committed. PostgreSQL: killed
    while the server, inside the batch's transaction, waits for a command row the test
    holds (an uncommitted insert of the same id); the server then finishes the batch or
    not. Either way the retries with the same command ids each find one result."""
    with pg_holding_command("c5/1", store) as blocked_by_test:  # c5's first command
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_IN_A_BATCH, str(model_dir), store.kind],
            env={**os.environ, **store.env()},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            if store.kind == "sqlite":
                assert child.stdout is not None and child.stdout.readline() == "stalled\n"
            else:
                wait_for(lambda: blocked_by_test() is not None, 60, "the batch to wait")
                server_side = blocked_by_test()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    if store.kind == "postgres":  # the server finishes (or drops) the batch on its own
        wait_for(lambda: not pg_backend_alive(server_side), 60, "the server to end the batch")
    committed = {row[0] for row in store.sql("SELECT command_id FROM ledger_commands")}
    batch = {f"c{i}/1" for i in range(1, 9)}
    assert "c0/1" in committed
    assert batch <= committed or not batch & committed, "all of the batch or none of it"
    head = ledger.event_count()
    numbers = {}
    for i in range(9):  # the callers retry: each command id gets its one version
        with ledger.on_behalf_of("tester", command_id=f"c{i}"):
            numbers[f"m{i}"] = [ledger.models.register_version(f"m{i}", model_dir).number]
    assert_exact_versions(ledger, numbers)
    if batch <= committed:
        assert ledger.event_count() == head, "a committed command is not written again"


@contextmanager
def pg_holding_command(command_id: str, store: StoreFactory) -> Iterator[Callable[[], Any]]:
    """PostgreSQL: an uncommitted insert of ``command_id``'s row, which a batch saving that
    command waits for; yields a function giving the server process that waits (or None)."""
    if store.kind != "postgres":
        yield lambda: None
        return
    with psycopg.connect(PG_URL) as conn:
        conn.execute(f"SET search_path TO {store.schema}")
        conn.execute(
            "INSERT INTO ledger_commands (command_id, attempt, first_position, event_count) "
            "VALUES (%s, 'test', 0, 0)",
            (command_id,),
        )

        holder = conn.info.backend_pid

        def blocked() -> Any:
            # Asked on a connection of its own: in a transaction, pg_stat_activity stays as
            # it was when the transaction first read it.
            with psycopg.connect(PG_URL, autocommit=True) as other:
                row = other.execute(
                    "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (holder,),
                ).fetchone()
            return row[0] if row else None

        yield blocked
        conn.rollback()


def pg_backend_alive(pid: int) -> bool:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        return bool(row.fetchone()[0])  # type: ignore[index]


@pytest.mark.parametrize("store", ["postgres"], indirect=True)  # SQLite has no stored function
def test_a_store_made_before_group_commit_loses_the_append_function_it_replaced(
    store: StoreFactory,
) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {store.schema}")
        conn.execute(
            f"CREATE FUNCTION {store.schema}.ledger_events_append(uuid[], bigint[], text[], "
            "bytea[], text, text) RETURNS SETOF bigint LANGUAGE sql AS 'SELECT 1::bigint'"
        )
    Ledger(store.settings()).close()  # opening the store creates what is missing
    functions = store.sql(
        "SELECT proname FROM pg_proc JOIN pg_namespace n ON n.oid = pronamespace "
        "WHERE nspname = ? ORDER BY proname",
        (store.schema,),
    )
    names = {name for (name,) in functions}
    assert "ledger_events_append_batch" in names and "ledger_events_append" not in names
