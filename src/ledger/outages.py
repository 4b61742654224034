"""What a database outage looks like to the ledger's code, and how it is reported.

A PostgreSQL restart, a cut connection or a server that is still starting raise
these errors (psycopg_pool's PoolTimeout is a psycopg OperationalError). Long-running
loops wait them out and say so in one line; they are never a reason for a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError

from ledger.errors import LedgerError

if TYPE_CHECKING:
    from ledger.settings import Settings

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


# What libpq says when PostgreSQL refuses who we are.
_REFUSALS = ("password authentication failed", "no password supplied", "role ")


class StoreCredentialsError(LedgerError):
    """PostgreSQL refuses the ledger's credentials: not retried, an operator must fix them."""


def describe_store_outage(error: BaseException, settings: Settings) -> str:
    """One line on why the store cannot be used. A pool's timeout hides the cause, so on
    PostgreSQL one direct connection is tried to find it (a refused password, a server
    that is down)."""
    location = settings.store_location
    reason = first_line(error)
    if location.kind == "postgres":
        reason = _server_says(_connection_problem(settings) or reason)
        if _is_refusal(reason):
            return _refused(settings, reason)
    return f"the event store is unavailable: cannot reach {location.describe()} ({reason})"


def check_store_credentials(settings: Settings) -> None:
    """Raise StoreCredentialsError at once when PostgreSQL refuses the credentials; a
    server that is down is left to the services, which wait for it."""
    if settings.store_location.kind != "postgres":
        return
    reason = _server_says(_connection_problem(settings))
    if _is_refusal(reason):
        raise StoreCredentialsError(_refused(settings, reason))


def _server_says(reason: str) -> str:
    """libpq's message less its "connection to server at ... failed: FATAL:" preamble."""
    return reason.rpartition("FATAL:")[2].strip()


def _is_refusal(reason: str) -> bool:
    return any(refusal in reason for refusal in _REFUSALS)


def _refused(settings: Settings, reason: str) -> str:
    return (
        f"PostgreSQL at {settings.store_location.describe()} refuses the credentials: "
        f"{reason}; check the user and password in LEDGER_STORE, or LEDGER_STORE_PASSWORD"
    )


def _connection_problem(settings: Settings) -> str:
    """Why one direct connection to the store fails (its first line), or "" if it works."""
    from ledger.storage.connections import connect_kwargs

    try:
        psycopg.connect(**(connect_kwargs(settings) | {"connect_timeout": 3})).close()
    except psycopg.Error as error:
        return first_line(error)
    return ""
