"""What a database outage looks like to the ledger's code, and how it is reported.

A PostgreSQL restart, a cut connection or a server that is still starting raise
these errors (psycopg_pool's PoolTimeout is a psycopg OperationalError). Long-running
loops wait them out and say so in one line; they are never a reason for a traceback.
"""

from __future__ import annotations

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError

STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    OperationalError,
    InterfaceError,
)


def is_store_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached right now."""
    return isinstance(error, STORE_UNAVAILABLE)


def first_line(error: BaseException) -> str:
    """The error's message, first line only (psycopg adds context lines)."""
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__
