"""Rows, and writing many of them at once: executemany on SQLite, one statement over
arrays (or COPY) on PostgreSQL."""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from psycopg import sql

from ledger.storage.connections import PgConnection

Row = tuple[Any, ...]
T = TypeVar("T")


class RowWrites(ABC):
    """The bulk writes of ``LedgerDatabase``: insert, delete, update and append many rows."""

    kind: Literal["sqlite", "postgres"]
    _lite: sqlite3.Connection

    @abstractmethod
    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; return its rows."""

    @abstractmethod
    def _on_pg(self, work: Callable[[PgConnection], T], *, retry: bool = False) -> T:
        """Run ``work`` on a PostgreSQL connection."""

    def write_rows(
        self,
        table: str,
        columns: dict[str, str],
        key: Sequence[str],
        rows: Sequence[Row],
        *,
        replace: bool,
    ) -> None:
        """Insert ``rows`` (values for ``columns``, name -> SQL type); a row whose key is
        taken replaces the old one (``replace``) or is skipped."""
        if not rows:
            return
        names = list(columns)
        others = [c for c in names if c not in key]
        conflict = f"ON CONFLICT ({', '.join(key)}) " + (
            f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in others)}"
            if replace and others
            else "DO NOTHING"
        )
        if self.kind == "postgres":
            self.execute(
                f"INSERT INTO {table} ({', '.join(names)}) "
                f"SELECT * FROM {_unnest(columns)} {conflict}",
                _as_columns(rows, len(names)),
            )
        else:
            marks = ", ".join("?" * len(names))
            self._lite.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks}) {conflict}", rows
            )

    def delete_rows(self, table: str, key: dict[str, str], keys: Sequence[Row]) -> None:
        """Delete the rows with the given keys (``key``: column name -> SQL type)."""
        if not keys:
            return
        if self.kind == "postgres":
            match = " AND ".join(f"{table}.{c} = gone.{c}" for c in key)
            self.execute(
                f"DELETE FROM {table} USING {_unnest(key)} AS gone({', '.join(key)}) WHERE {match}",
                _as_columns(keys, len(key)),
            )
        else:
            match = " AND ".join(f"{c} = ?" for c in key)
            self._lite.executemany(f"DELETE FROM {table} WHERE {match}", keys)

    def update_rows(self, table: str, columns: dict[str, str], rows: Sequence[Row]) -> None:
        """Set the other columns of the rows whose first column (the key) matches."""
        if not rows:
            return
        key, *others = columns
        if self.kind == "postgres":
            assignments = ", ".join(f"{c} = new.{c}" for c in others)
            self.execute(
                f"UPDATE {table} SET {assignments} FROM {_unnest(columns)} "
                f"AS new({', '.join(columns)}) WHERE {table}.{key} = new.{key}",
                _as_columns(rows, len(columns)),
            )
        else:
            assignments = ", ".join(f"{c} = ?" for c in others)
            self._lite.executemany(
                f"UPDATE {table} SET {assignments} WHERE {key} = ?",
                [(*row[1:], row[0]) for row in rows],
            )

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Append many rows: COPY on PostgreSQL, executemany on SQLite."""
        if not rows:
            return
        if self.kind == "postgres":
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )

            def run(conn: PgConnection) -> None:
                with conn.cursor() as cursor, cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)

            self._on_pg(run)
        else:
            marks = ", ".join("?" * len(columns))
            self._lite.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )


def _unnest(columns: dict[str, str]) -> str:
    """``unnest(%s::text[], %s::bigint[], ...)`` for the columns' SQL types."""
    arrays = ", ".join(f"%s::{sql_type.split()[0].lower()}[]" for sql_type in columns.values())
    return f"unnest({arrays})"


def _as_columns(rows: Sequence[Row], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)] if rows else [[] for _ in range(width)]
