"""Worker leases: which workers are alive, so the jobs of a dead one can be resumed.

Each worker renews its row every few seconds. A job whose worker has not
renewed within ``LEDGER_WORKER_LEASE_S`` (or has no row: it stopped cleanly) is
taken over by another worker, or by the same one after a restart.
"""

from __future__ import annotations

import time

from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import WORKER_LEASES as LEASES_TABLE
from ledger.storage.side_tables import create_side_tables

FORGET_AFTER_LEASES = 100  # rows of workers gone this many lease periods are deleted


class WorkerLeases:
    """The lease table, on the given connection."""

    def __init__(self, db: LedgerDatabase, lease_s: float) -> None:
        self.db = db
        self.lease_s = lease_s

    def create(self) -> None:
        create_side_tables(self.db)

    def renew(self, worker: str) -> None:
        now = time.time()
        with self.db.transaction():
            self.db.execute(
                f"INSERT INTO {LEASES_TABLE} (worker, renewed_at) VALUES (?, ?) "
                "ON CONFLICT (worker) DO UPDATE SET renewed_at = excluded.renewed_at",
                (worker, now),
            )
            self.db.execute(
                f"DELETE FROM {LEASES_TABLE} WHERE renewed_at < ?",
                (now - FORGET_AFTER_LEASES * self.lease_s,),
            )

    def release(self, worker: str) -> None:
        """A clean stop: the worker's jobs may be resumed at once."""
        with self.db.transaction():
            self.db.execute(f"DELETE FROM {LEASES_TABLE} WHERE worker = ?", (worker,))

    def alive(self) -> set[str]:
        """Workers whose lease has not expired."""
        rows = self.db.execute(
            f"SELECT worker FROM {LEASES_TABLE} WHERE renewed_at > ?",
            (time.time() - self.lease_s,),
        )
        return {row[0] for row in rows}
