"""Tamper evidence: a hash chain over the event log, and its verification.

Each stored event at log position ``p`` gets a chain hash, written in the same
transaction as the event::

    hash[p] = sha256(hash[previous] || p as 8 bytes big-endian || event_digest)
    event_digest = sha256(utf8("<originator_id>:<originator_version>:<topic>") || state)

``ledger verify`` recomputes the chain from the stored events and reports the
first position whose event was edited, deleted, reordered or inserted. The head
hash it prints can be kept elsewhere to detect a rewrite of the whole chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import Notification

GENESIS = bytes(32)
CHAIN_TABLE = "ledger_chain"
PAGE_SIZE = 5_000


def event_digest(
    originator_id: UUID | str, originator_version: int, topic: str, state: bytes
) -> bytes:
    uid = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
    header = f"{uid}:{originator_version}:{topic}".encode()
    return hashlib.sha256(header + state).digest()


def link(previous: bytes, position: int, digest: bytes) -> bytes:
    return hashlib.sha256(previous + position.to_bytes(8, "big", signed=True) + digest).digest()


class ChainedRecorder(Protocol):
    """What verification needs from a recorder: the events and the chain, in order."""

    def select_notifications(
        self, start: int | None, limit: int, stop: int | None = None, topics: tuple[str, ...] = ()
    ) -> list[Notification]: ...

    def select_chain(self, after: int, limit: int) -> list[tuple[int, bytes]]: ...


@dataclass(frozen=True)
class VerifyReport:
    """Result of recomputing the chain: OK, or the first position found tampered."""

    count: int
    head: str
    bad_position: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.bad_position is None


def _pages(fetch: Callable[[int], list[tuple[int, bytes]]]) -> Iterator[tuple[int, bytes]]:
    after = 0
    while page := fetch(after):
        yield from page
        after = page[-1][0]


def verify_chain(
    recorder: ChainedRecorder, on_progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """Walk events and chain side by side; stop at the first discrepancy."""

    def fetch_events(after: int) -> list[tuple[int, bytes]]:
        notifications = recorder.select_notifications(after + 1, PAGE_SIZE)
        return [
            (n.id, event_digest(n.originator_id, n.originator_version, n.topic, n.state))
            for n in notifications
        ]

    events = _pages(fetch_events)
    chain = _pages(lambda after: recorder.select_chain(after, PAGE_SIZE))
    return _compare(events, chain, on_progress)


def _compare(
    events: Iterable[tuple[int, bytes]],
    chain: Iterable[tuple[int, bytes]],
    on_progress: Callable[[int], None] | None,
) -> VerifyReport:
    events_it, chain_it = iter(events), iter(chain)
    event = next(events_it, None)
    sealed = next(chain_it, None)
    previous, count = GENESIS, 0
    while event is not None or sealed is not None:
        if sealed is None or (event is not None and event[0] < sealed[0]):
            assert event is not None
            return VerifyReport(
                count, previous.hex(), event[0], "event is not in the chain (inserted)"
            )
        if event is None or sealed[0] < event[0]:
            return VerifyReport(
                count, previous.hex(), sealed[0], "chained event is missing (deleted)"
            )
        position, digest = event
        expected = link(previous, position, digest)
        if expected != sealed[1]:
            return VerifyReport(
                count,
                previous.hex(),
                position,
                "event does not match its hash (edited or reordered)",
            )
        previous, count = expected, count + 1
        if on_progress is not None and count % PAGE_SIZE == 0:
            on_progress(count)
        event, sealed = next(events_it, None), next(chain_it, None)
    return VerifyReport(count, previous.hex())
