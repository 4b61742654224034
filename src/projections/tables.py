"""View tables, their in-memory state, and the history of every row.

A projection changes rows in memory while it applies a batch of events; at the
end of the batch only the rows that changed are written, in the same
transaction as the tracked position. Rows of *historized* tables also get a
validity interval ``[valid_from, valid_to)`` of log positions in one shared
history table, which answers "which rows were live at position P" without a
replay.

That stabbing query is indexed as a relational interval tree (Kriegel, Pötke
and Seidl, VLDB 2000): each interval is filed under its *fork*, the node of a
virtual binary tree over positions that it contains and that sits highest, and
two plain B-tree indexes on (fork, valid_from) and (fork, valid_to) answer the
query with one range scan per tree level. Plain B-trees cost a twentieth of
SQLite's R*Tree to build and work the same on both stores.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ledger.storage.database import LedgerDatabase
from ledger.storage.rows import Row
from projections.writes import RowWriter

LEVELS = 40  # the interval tree covers log positions below 2**40
OPEN = 2**LEVELS - 1  # valid_to of a row that is still live
HISTORY_TABLE = "ledger_view_history"
HISTORY_INDEXES = {
    f"{HISTORY_TABLE}_live": f"(tbl) WHERE valid_to = {OPEN}",
    f"{HISTORY_TABLE}_fork_from": "(fork, valid_from)",
    f"{HISTORY_TABLE}_fork_to": "(fork, valid_to)",
}
Key = tuple[Any, ...]


def fork_of(valid_from: int, valid_to: int) -> int:
    """The tree node an interval is filed under: of the positions it covers, the one
    with the most trailing zero bits."""
    first, last = valid_from, valid_to - 1
    if first == last:
        return first
    level = (first ^ last).bit_length() - 1
    return (last >> level) << level


def nodes_on_path(position: int) -> tuple[list[int], list[int]]:
    """The tree nodes whose intervals may cover ``position``: those above it in value
    (covering it when they start at or before it) and those below (when they end after it).
    Both lists are padded to ``LEVELS`` with -1 (no node), so the query text never changes."""
    above, below = [], []
    for level in range(LEVELS):
        node = ((position >> (level + 1)) << (level + 1)) | (1 << level)
        if node > position:
            above.append(node)
        elif node < position:
            below.append(node)
    return above + [-1] * (LEVELS - len(above)), below + [-1] * (LEVELS - len(below))


@dataclass(frozen=True)
class Table:
    """A view table: key columns, other columns (name -> SQL type), extra indexes."""

    name: str
    key: dict[str, str]
    columns: dict[str, str] = field(default_factory=dict)
    indexes: tuple[tuple[str, ...], ...] = ()
    historized: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return (*self.key, *self.columns)

    @property
    def column_types(self) -> dict[str, str]:
        return {**self.key, **self.columns}

    def create_table_statement(self) -> str:
        columns = ", ".join(f"{n} {t}" for n, t in {**self.key, **self.columns}.items())
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} "
            f"({columns}, PRIMARY KEY ({', '.join(self.key)}))"
        )

    def index_statements(self) -> list[str]:
        return [
            f"CREATE INDEX IF NOT EXISTS {self.name}_{'_'.join(index)} "
            f"ON {self.name} ({', '.join(index)})"
            for index in self.indexes
        ]


def create_history_table(db: LedgerDatabase, *, indexed: bool = True) -> None:
    """The history table; ``indexed``: with its indexes (left out for a bulk load)."""
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (id BIGINT PRIMARY KEY, tbl TEXT NOT NULL, "
        "row TEXT NOT NULL, valid_from BIGINT NOT NULL, valid_to BIGINT NOT NULL, "
        "fork BIGINT NOT NULL)"
    )
    if indexed:
        for statement in history_index_statements():
            db.execute(statement)


def history_index_statements() -> list[str]:
    return [
        f"CREATE INDEX IF NOT EXISTS {name} ON {HISTORY_TABLE} {columns}"
        for name, columns in HISTORY_INDEXES.items()
    ]


_NODES = ", ".join("?" * LEVELS)
# The three ways an interval can cover a position (see ``nodes_on_path``).
_COVERING = ("fork = ?", f"fork IN ({_NODES}) AND valid_from <= ?",
             f"fork IN ({_NODES}) AND valid_to > ?")  # fmt: skip


def rows_live_at(
    db: LedgerDatabase, position: int, tables: Iterable[str], *, prefix: str = ""
) -> dict[str, list[Row]]:
    """The rows of historized ``tables`` as they were right after log ``position``;
    ``prefix``: only rows whose stored text (a JSON array: key, then columns) starts with
    it, such as ``["iris",`` for the rows of the model iris."""
    names = list(tables)
    above, below = nodes_on_path(position)
    only = f"tbl IN ({', '.join('?' * len(names))})"
    given: list[Any] = list(names)
    if prefix:
        only += " AND substr(row, 1, ?) = ?"
        given += [len(prefix), prefix]
    statement = " UNION ALL ".join(
        f"SELECT tbl, row FROM {HISTORY_TABLE} WHERE {only} AND {covering}"
        for covering in _COVERING
    )
    found = db.execute(
        statement, (*given, position, *given, *above, position, *given, *below, position)
    )
    rows: dict[str, list[Row]] = {name: [] for name in names}
    # One parse for all rows: a tenth of the cost of parsing them one by one.
    decoded = orjson.loads("[" + ",".join(row for _, row in found) + "]")
    for (tbl, _), row in zip(found, decoded, strict=True):
        rows[tbl].append(tuple(row))
    return rows


class TableState:
    """The rows of one view table in memory, and what changed since the last flush."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.rows: dict[Key, Row] = {}
        self._changed: set[Key] = set()
        # historized tables: key -> (id, valid_from) of the row's live history interval
        self._live: dict[Key, tuple[int, int]] = {}

    def get(self, key: Key) -> Row | None:
        return self.rows.get(key)

    def put(self, key: Key, row: Row, position: int, history: HistoryWriter) -> None:
        if self.rows.get(key) == row:
            return
        self.rows[key] = row
        self._changed.add(key)
        if self.table.historized:
            self._close(key, position, history)
            self._live[key] = (history.open(self.table.name, (*key, *row), position), position)

    def delete(self, key: Key, position: int, history: HistoryWriter) -> None:
        if self.rows.pop(key, None) is None:
            return
        self._changed.add(key)
        if self.table.historized:
            self._close(key, position, history)

    def _close(self, key: Key, position: int, history: HistoryWriter) -> None:
        live = self._live.pop(key, None)
        if live is not None:
            history.close(*live, position)

    def load(self, db: LedgerDatabase) -> None:
        """Read the table (and its live history intervals) from the database."""
        self.forget()
        width = len(self.table.key)
        columns = ", ".join(self.table.column_names)
        for row in db.execute(f"SELECT {columns} FROM {self.table.name}"):
            self.rows[tuple(row[:width])] = tuple(row[width:])
        if self.table.historized:
            for history_id, row, valid_from in db.execute(
                f"SELECT id, row, valid_from FROM {HISTORY_TABLE} "
                f"WHERE tbl = ? AND valid_to = {OPEN}",
                (self.table.name,),
            ):
                self._live[tuple(orjson.loads(row)[:width])] = (history_id, valid_from)

    def flush(self, out: RowWriter, *, deferred: bool = False, into_empty: bool = False) -> None:
        """Write the changed rows: upsert what exists, delete what was removed
        (``deferred``: not now; a bulk rebuild writes them all at its end, ``into_empty``
        tables: a plain append)."""
        if not self._changed or deferred:
            return
        table = self.table
        upserts = [(*key, *self.rows[key]) for key in self._changed if key in self.rows]
        deletes = [key for key in self._changed if key not in self.rows]
        self._changed.clear()
        if into_empty:
            out.copy_rows(table.name, table.column_names, upserts)
            return
        out.delete_rows(table.name, table.key, deletes)
        out.write_rows(table.name, table.column_types, tuple(table.key), upserts, replace=True)

    def forget(self) -> None:
        """Drop the in-memory copy (after a failed batch, or a reset)."""
        self.rows.clear()
        self._changed.clear()
        self._live.clear()


_CLOSE_COLUMNS = {"id": "BIGINT", "valid_to": "BIGINT", "fork": "BIGINT"}


class HistoryWriter:
    """Collects the history intervals opened and closed in a batch; writes them at flush."""

    def __init__(self) -> None:
        self._next_id = 0
        self._opened: dict[int, list[Any]] = {}  # id -> [tbl, row, valid_from, valid_to]
        self._closed: dict[int, tuple[int, int]] = {}  # id -> (valid_from, valid_to)

    @property
    def next_id(self) -> int:
        return self._next_id

    def load(self, db: LedgerDatabase) -> None:
        self.forget()
        self._next_id = self.written_up_to(db)

    @staticmethod
    def written_up_to(db: LedgerDatabase) -> int:
        """The id the next history row written gets (to notice another updater's writes)."""
        return int(db.execute(f"SELECT max(id) FROM {HISTORY_TABLE}")[0][0] or 0) + 1

    def open(self, table: str, row: Row, position: int) -> int:
        """Start the interval of a row (key and values) at ``position``; return its id."""
        history_id = self._next_id
        self._next_id += 1
        self._opened[history_id] = [table, orjson.dumps(row).decode(), position, OPEN]
        return history_id

    def close(self, history_id: int, valid_from: int, position: int) -> None:
        opened = self._opened.get(history_id)
        if opened is None:
            self._closed[history_id] = (valid_from, position)
        elif valid_from == position:  # replaced by the same event: it never was visible
            del self._opened[history_id]
        else:
            opened[3] = position

    def flush(self, out: RowWriter, *, deferred: bool = False) -> None:
        """Write the intervals opened and closed since the last flush; ``deferred``:
        keep the still-open ones in memory (a bulk rebuild writes them at its end)."""
        opened, still_open = [], {}
        for history_id, entry in self._opened.items():
            table, row, start, end = entry
            if deferred and end == OPEN:
                still_open[history_id] = entry
            else:
                opened.append((history_id, table, row, start, end, fork_of(start, end)))
        closed = [
            (history_id, end, fork_of(start, end))
            for history_id, (start, end) in self._closed.items()
        ]
        self._opened, self._closed = still_open, {}
        columns = ("id", "tbl", "row", "valid_from", "valid_to", "fork")
        out.copy_rows(HISTORY_TABLE, columns, opened)
        out.update_rows(HISTORY_TABLE, _CLOSE_COLUMNS, closed)

    def forget(self) -> None:
        self._opened.clear()
        self._closed.clear()
