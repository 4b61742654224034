"""The Merkle tree over the event log: its leaves, its root, and the subtree hashes proofs need.

Leaf ``i`` is the ``i``-th event in log order. Its data is what the hash chain seals for
that event: the log position as 8 bytes (big-endian, signed) followed by the event digest
(``ledger.chain.event_digest``, a SHA-256 of ``"<aggregate id>:<version>:<topic>"`` and the
stored state). Leaves are computed from the events themselves, never from the chain table
or any cache, so a rewrite of events and chain together still changes the tree.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.chain import event_digest
from ledger.merkle import Frontier, leaf_hash, node_hash, root_of, split_point
from ledger.storage.database import LedgerDatabase

PAGE = 10_000
# Leaves per block: the tree keeps one hash per block (and the levels above it) in memory,
# and re-reads one block from the store when a proof needs hashes inside it.
BLOCK = 256

# The digest the chain computes, computed by PostgreSQL: only 40 bytes per event travel.
_PG_DIGESTS = (
    "SELECT notification_id, sha256(convert_to(originator_id::text || ':' || "
    "originator_version::text || ':' || topic, 'UTF8') || state) FROM ledger_events "
    "WHERE notification_id >= ? ORDER BY notification_id LIMIT ?"
)


def leaf_data(position: int, digest: bytes) -> bytes:
    """The leaf's input: position (8 bytes, big-endian, signed) || event digest."""
    return position.to_bytes(8, "big", signed=True) + digest


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored, with everything needed to recompute its leaf."""

    position: int
    aggregate_id: UUID
    version: int
    topic: str
    state: bytes

    @property
    def digest(self) -> bytes:
        return event_digest(self.aggregate_id, self.version, self.topic, self.state)

    @property
    def leaf(self) -> bytes:
        return leaf_data(self.position, self.digest)


def _digests(db: LedgerDatabase, start: int, limit: int) -> list[tuple[int, bytes]]:
    """(position, event digest) of up to ``limit`` events from position ``start`` on."""
    if db.kind == "postgres":
        if not db.table_exists("ledger_events"):
            return []
        rows: list[Any] = db.execute(_PG_DIGESTS, (start, limit))
        return [(int(position), bytes(digest)) for position, digest in rows]
    return [
        (int(row[0]), event_digest(UUID(row[1]), int(row[2]), row[3], bytes(row[4])))
        for row in db.read_events(start - 1, limit)
    ]


def leaves(
    db: LedgerDatabase, after: int = 0, count: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """(position, leaf hash) of the events after position ``after``, in log order, paged:
    at most ``count`` of them."""
    remaining = count if count is not None else -1
    start = after + 1
    while remaining:
        limit = PAGE if remaining < 0 else min(PAGE, remaining)
        page = _digests(db, start, limit)
        for position, digest in page:
            yield position, leaf_hash(leaf_data(position, digest))
        if len(page) < limit:
            return
        remaining -= len(page) if remaining > 0 else 0
        start = page[-1][0] + 1


def log_root(db: LedgerDatabase, count: int | None = None) -> tuple[int, int, bytes]:
    """(tree size, last position, root) of the first ``count`` events (all by default),
    streamed with O(log n) memory."""
    frontier = Frontier()
    last = 0
    for last, leaf in leaves(db, 0, count):  # noqa: B007 (last is used after the loop)
        frontier.append(leaf)
    return frontier.size, last, frontier.root()


@dataclass(frozen=True)
class Block:
    """``BLOCK`` consecutive leaves: the positions of the first and last, and their MTH."""

    first: int
    last: int
    hash: bytes


class LogTree:
    """The tree of the log's first ``size`` events, ready to answer proofs.

    One pass over the log keeps a hash per block of ``BLOCK`` leaves (and the block's first
    position); subtree hashes above a block come from those, hashes inside a block from
    re-reading it. At 1M events that is 4,096 hashes in memory. ``known``: the leading
    blocks, already computed (the pass then reads only the events after them).
    """

    def __init__(
        self,
        db: LedgerDatabase,
        size: int | None = None,
        *,
        block: int = BLOCK,
        known: Sequence[Block] = (),
    ) -> None:
        self.db = db
        self.block = block
        self.blocks = list(known)  # the complete blocks
        self._starts = [b.first for b in known]  # first position of each block, and the tail's
        self._levels = [[b.hash for b in known]]  # complete block hashes, then the levels above
        self._tail: list[bytes] = []  # leaf hashes of the last, incomplete block
        self._cache: OrderedDict[int, list[bytes]] = OrderedDict()
        self.size = len(known) * block
        self.last_position = known[-1].last if known else 0
        if size is not None and size < self.size:
            raise ValueError(f"{len(known)} known blocks hold more than {size} leaves")
        first = 0
        for position, leaf in leaves(
            db, self.last_position, None if size is None else size - self.size
        ):
            if not self._tail:
                self._starts.append(position)
                first = position
            self._tail.append(leaf)
            self.size += 1
            self.last_position = position
            if len(self._tail) == block:
                self.blocks.append(Block(first, position, root_of(self._tail)))
                self._levels[0].append(self.blocks[-1].hash)
                self._tail = []
        self._build_levels()
        self.root = self.subtree(0, self.size) if self.size else root_of([])

    def _build_levels(self) -> None:
        level = self._levels[0]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self._levels.append(level)

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) of this tree."""
        n = hi - lo
        if n == 1:
            return self._block_leaves(lo // self.block)[lo % self.block]
        if lo // self.block == (hi - 1) // self.block:
            first = lo - lo % self.block
            return root_of(self._block_leaves(lo // self.block)[lo - first : hi - first])
        if n & (n - 1) == 0 and lo % n == 0 and n >= self.block:
            return self._levels[(n // self.block).bit_length() - 1][lo // n]
        k = split_point(n)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def _block_leaves(self, index: int) -> list[bytes]:
        if index == len(self._levels[0]):
            return self._tail
        cached = self._cache.get(index)
        if cached is None:
            cached = [leaf for _, leaf in leaves(self.db, self._starts[index] - 1, self.block)]
            if len(cached) != self.block:
                raise RuntimeError("the log changed while a proof was being made")
            self._cache[index] = cached
            if len(self._cache) > 4:
                self._cache.popitem(last=False)
        return cached

    def index_of(self, position: int) -> int | None:
        """The leaf index of the event at log ``position`` (None if not in this tree)."""
        if not self._starts or not self._starts[0] <= position <= self.last_position:
            return None
        block = _last_at_most(self._starts, position)
        start = self._starts[block] - 1
        count = min(self.block, self.size - block * self.block)
        for offset, (at, _) in enumerate(leaves(self.db, start, count)):
            if at == position:
                return block * self.block + offset
        return None


def _last_at_most(values: Sequence[int], target: int) -> int:
    lo, hi = 0, len(values)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if values[mid] <= target:
            lo = mid
        else:
            hi = mid
    return lo


def events_of(db: LedgerDatabase, aggregate_ids: Sequence[UUID]) -> list[StoredEvent]:
    """Every stored event of the given aggregates, in log order."""
    table, position = db.events_table
    found: list[StoredEvent] = []
    for aggregate_id in aggregate_ids:
        if db.kind == "postgres":
            rows = db.execute(
                f"SELECT {position}, originator_id::text, originator_version, topic, state "
                f"FROM {table} WHERE originator_id = ?",
                (aggregate_id,),
            )
        else:
            rows = db.execute(
                f"SELECT {position}, originator_id, originator_version, topic, state "
                f"FROM {table} WHERE originator_id IN (?, ?)",
                (aggregate_id.hex, str(aggregate_id)),
            )
        found.extend(
            StoredEvent(int(r[0]), UUID(str(r[1])), int(r[2]), str(r[3]), bytes(r[4])) for r in rows
        )
    found.sort(key=lambda event: event.position)
    return found
