"""Writes to the views: the protocol read models write through, and writes held back
until the transaction that records a batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ledger.storage.rows import Row

if TYPE_CHECKING:
    from ledger.storage.database import LedgerDatabase


class RowWriter(Protocol):
    """Where read models write their changed rows: the database, or a batch of writes."""

    def write_rows(
        self,
        table: str,
        columns: dict[str, str],
        key: Sequence[str],
        rows: Sequence[Row],
        *,
        replace: bool,
    ) -> None: ...

    def delete_rows(self, table: str, key: dict[str, str], keys: Sequence[Row]) -> None: ...

    def update_rows(self, table: str, columns: dict[str, str], rows: Sequence[Row]) -> None: ...

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None: ...


class PendingWrites:
    """Writes recorded while a batch is applied, made later (in order) in its transaction."""

    def __init__(self) -> None:
        self._calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _record(self, method: str, *args: Any, **kwargs: Any) -> None:
        if args[-1]:  # the rows: nothing to write without them
            self._calls.append((method, args, kwargs))

    def write_rows(
        self,
        table: str,
        columns: dict[str, str],
        key: Sequence[str],
        rows: Sequence[Row],
        *,
        replace: bool,
    ) -> None:
        self._record("write_rows", table, columns, key, rows, replace=replace)

    def delete_rows(self, table: str, key: dict[str, str], keys: Sequence[Row]) -> None:
        self._record("delete_rows", table, key, keys)

    def update_rows(self, table: str, columns: dict[str, str], rows: Sequence[Row]) -> None:
        self._record("update_rows", table, columns, rows)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        self._record("copy_rows", table, columns, rows)

    def write_to(self, db: LedgerDatabase) -> None:
        for method, args, kwargs in self._calls:
            getattr(db, method)(*args, **kwargs)
