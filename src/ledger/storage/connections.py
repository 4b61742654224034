"""PostgreSQL connections for the views: a ``psycopg_pool`` pool shared by a process.

Every ``LedgerDatabase`` of one process on the same database and schema borrows from
one pool, a statement (or a transaction) at a time. After a database restart the pool
drops the broken connections and reconnects by itself: the first statement that meets
a broken connection has the pool check the others, and a read is tried once more on a
fresh one. Connections idle for a while are checked before use (one empty query);
busy ones are not, which keeps a read at one round trip.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from ledger.logging import get_logger
from ledger.settings import Settings

PgConnection = psycopg.Connection[Any]
POSTGRES_CHANNEL = "ledger_events"  # what the event store's append function NOTIFYs
# What a lost server connection raises (psycopg_pool's PoolTimeout is an OperationalError).
CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)
IDLE_CHECK_S = 10.0  # a connection idle this long is checked before it is used
# How long the pool keeps retrying one lost connection; a client then asking for one
# starts a new attempt. This caps the reconnect backoff (psycopg_pool doubles the delay
# up to this), so that service resumes within a couple of seconds of the database.
RECONNECT_WINDOW_S = 3.0
CHECK_EVERY_S = 0.5  # after a lost connection, check the idle ones at most this often
EXTRA_CONNECTIONS = 4  # beyond the API's read connections: followers, leases, the relay
# Once a wait for a connection timed out (the database is away), later requests wait only
# this long until one is had again: an outage is answered at once, not after a timeout each.
OUTAGE_WAIT_S = 0.25
CONNECT_TIMEOUT_S = 5  # unless LEDGER_STORE's query string sets connect_timeout
# The eventsourcing environment's key for ``extra_parameters`` as a libpq connection string:
# eventsourcing builds its pool from host, port, user, password and database alone.
CONNINFO_KEY = "LEDGER_POSTGRES_CONNINFO"
log = get_logger(__name__)


def connect_kwargs(settings: Settings) -> dict[str, Any]:
    """psycopg.connect arguments for the store ``settings`` name."""
    location = settings.store_location
    return {
        "host": location.pg_host,
        "port": location.pg_port,
        "user": location.pg_user,
        "password": location.pg_password or None,
        "dbname": location.pg_dbname,
        **extra_parameters(settings),
        "autocommit": True,  # transactions are explicit: see LedgerDatabase.transaction()
    }


def extra_parameters(settings: Settings) -> dict[str, str]:
    """The libpq parameters beyond where and who that every connection to the store takes
    (the views' pool, connections of their own, the event store's): LEDGER_STORE's query
    string (sslmode, ...) over the default connect timeout."""
    return {"connect_timeout": str(CONNECT_TIMEOUT_S), **settings.store_location.pg_parameters}


def configure(conn: PgConnection, schema: str) -> None:
    """Session settings of a views connection."""
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    # Views are derived data tracked in the same transactions: a server crash can lose
    # the last commits only together with their positions, which are then re-applied.
    conn.execute("SET synchronous_commit TO off")
    conn.execute("SET maintenance_work_mem TO '256MB'")  # index builds after a rebuild


def connect(settings: Settings) -> PgConnection:
    """A connection of its own (LISTEN, session locks), configured like pooled ones."""
    conn = psycopg.connect(**connect_kwargs(settings))
    configure(conn, settings.pg_schema)
    return conn


class ConnectionSource(Protocol):
    """Where a LedgerDatabase gets a connection for a statement or a transaction."""

    def borrow(self) -> PgConnection: ...

    def give_back(self, conn: PgConnection) -> None: ...

    def lost(self, conn: PgConnection) -> bool: ...

    def check_idle(self) -> None: ...

    def release(self) -> None: ...


class SharedPool:
    """The process's pool for one database and schema (see ``shared_pool``)."""

    def __init__(self, settings: Settings, key: tuple[Any, ...]) -> None:
        schema = settings.pg_schema
        self.key = key
        self.users = 0
        self.pool: ConnectionPool[PgConnection] = ConnectionPool(
            kwargs=connect_kwargs(settings),
            min_size=1,
            max_size=settings.api_view_connections + EXTRA_CONNECTIONS,
            open=False,
            configure=lambda conn: configure(conn, schema),
            timeout=settings.store_wait_s,
            reconnect_timeout=RECONNECT_WINDOW_S,
            name=f"views:{schema}",
        )
        self.pool.open(wait=False)
        self._returned: weakref.WeakKeyDictionary[PgConnection, float] = weakref.WeakKeyDictionary()
        self._checked_at = 0.0
        self._check_lock = threading.Lock()
        self._unavailable = False  # the last wait for a connection timed out

    def borrow(self) -> PgConnection:
        try:
            conn = self.pool.getconn(OUTAGE_WAIT_S if self._unavailable else None)
        except PoolTimeout:
            self._unavailable = True
            raise
        self._unavailable = False
        returned = self._returned.get(conn)
        if returned is None or time.monotonic() - returned < IDLE_CHECK_S:
            return conn
        try:
            ConnectionPool.check_connection(conn)
        except CONNECTION_ERRORS:
            self.pool.putconn(conn)  # broken: the pool replaces it
            self.check_idle()
            return self.pool.getconn()
        return conn

    def give_back(self, conn: PgConnection) -> None:
        self._returned[conn] = time.monotonic()
        self.pool.putconn(conn)

    def lost(self, conn: PgConnection) -> bool:
        """Whether ``conn`` lost its server (then the pool drops it on its return); if so
        the database probably restarted, and the next waits for a connection are short."""
        if conn.broken or conn.closed:
            self._unavailable = True
            return True
        return False

    def check_idle(self) -> None:
        """A connection was lost: the idle ones were probably lost with it (a restart)."""
        now = time.monotonic()
        with self._check_lock:
            if now - self._checked_at < CHECK_EVERY_S:
                return
            self._checked_at = now
        self.pool.check()

    def release(self) -> None:
        with _POOLS_LOCK:
            self.users -= 1
            if self.users > 0:
                return
            del _POOLS[self.key]
        self.pool.close()


class DedicatedConnection:
    """One connection kept for a user that needs session state (an advisory lock):
    every statement runs on it, one at a time; a lost one is replaced on next use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._conn: PgConnection | None = connect(settings)
        self._lock = threading.RLock()

    def borrow(self) -> PgConnection:
        self._lock.acquire()
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = connect(self._settings)
        except BaseException:
            self._lock.release()
            raise
        return self._conn

    def give_back(self, conn: PgConnection) -> None:
        self._lock.release()

    def lost(self, conn: PgConnection) -> bool:
        return conn.broken or conn.closed

    def check_idle(self) -> None:
        pass

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_POOLS: dict[tuple[Any, ...], SharedPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(settings: Settings) -> SharedPool:
    """The pool of this process for the store and schema of ``settings`` (counted: each
    user calls ``release`` once; the last one closes it)."""
    location = settings.store_location
    key = (
        location.pg_host,
        location.pg_port,
        location.pg_user,
        location.pg_password,
        location.pg_dbname,
        tuple(sorted(location.pg_parameters.items())),
        settings.pg_schema,
    )
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = SharedPool(settings, key)
        pool.users += 1
        return pool


class Listener:
    """Waits for the next append, or for ``timeout`` seconds at most.

    On PostgreSQL it LISTENs on a connection of its own (``settings``); when that is
    lost it connects again, at most once every ``RECONNECT_EVERY_S``, and meanwhile
    simply waits out the timeout (the follower reads the log after every wait, so a
    notification missed while away loses nothing)."""

    RECONNECT_EVERY_S = 0.5

    def __init__(self, settings: Settings | None) -> None:
        self._settings = settings
        self._conn: PgConnection | None = None
        self._next_attempt = 0.0
        if settings is not None:
            self._listen()

    def _listen(self) -> bool:
        assert self._settings is not None
        self._next_attempt = time.monotonic() + self.RECONNECT_EVERY_S
        try:
            conn = connect(self._settings)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(POSTGRES_CHANNEL)))
        except CONNECTION_ERRORS as error:
            log.warning("cannot listen for appends; retrying", error=_first_line(error))
            return False
        self._conn = conn
        return True

    @property
    def listening(self) -> bool:
        """Whether it holds a LISTEN connection (that it knows of no loss of)."""
        return self._conn is not None and not (self._conn.closed or self._conn.broken)

    def wait(self, timeout: float) -> None:
        if self._settings is None:
            time.sleep(timeout)
            return
        if not self.listening:
            self.close()
            if time.monotonic() < self._next_attempt or not self._listen():
                time.sleep(timeout)
                return
        assert self._conn is not None
        try:
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                break
        except CONNECTION_ERRORS as error:
            log.warning("lost the connection listening for appends", error=_first_line(error))
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(*CONNECTION_ERRORS):
                conn.close()


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
