"""Everything that touches the database: the event store (eventsourcing recorders that
also seal each event in the hash chain), connections, reading the log, side tables."""

from __future__ import annotations

import os

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from psycopg.conninfo import make_conninfo

from ledger.settings import Settings
from ledger.storage.connections import CONNECT_TIMEOUT_S, CONNINFO_KEY, extra_parameters
from ledger.storage.database import LedgerDatabase
from ledger.storage.group_commit import MAX_BATCH_KEY, MAX_WAIT_KEY
from ledger.storage.side_tables import create_side_tables

APPLICATION_NAME = "Ledger"


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for the store chosen by ``settings``."""
    location = settings.store_location
    env = {
        "AGGREGATE_CACHE_MAXSIZE": str(settings.cache_size),
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "IS_SNAPSHOTTING_ENABLED": "y",
        MAX_BATCH_KEY: str(settings.group_commit_max_batch),  # read by our factories
        MAX_WAIT_KEY: str(settings.group_commit_wait_s),
    }
    if location.kind == "postgres":
        extra = extra_parameters(settings)
        env.update(
            PERSISTENCE_MODULE="ledger.storage.postgres:ChainedPostgresFactory",
            POSTGRES_DBNAME=location.pg_dbname,
            POSTGRES_HOST=location.pg_host,
            POSTGRES_PORT=str(location.pg_port),
            POSTGRES_USER=location.pg_user,
            POSTGRES_PASSWORD=location.pg_password,
            POSTGRES_SCHEMA=settings.pg_schema,
            # Our append function takes the table lock itself; never use eventsourcing's.
            POSTGRES_ENABLE_DB_FUNCTIONS="n",
            # eventsourcing's wait for a pooled connection; libpq's own connect_timeout
            # and LEDGER_STORE's other parameters (sslmode, ...) come in CONNINFO_KEY.
            POSTGRES_CONNECT_TIMEOUT=str(int(extra["connect_timeout"]) or CONNECT_TIMEOUT_S),
            # One warm connection for a single writer (reusing the same server backend
            # is ~25% faster than cycling through five); more open under concurrency.
            POSTGRES_POOL_SIZE="1",
            POSTGRES_MAX_OVERFLOW="15",
        )
        env[CONNINFO_KEY] = make_conninfo(**extra)
    else:
        location.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        env.update(
            PERSISTENCE_MODULE="ledger.storage.sqlite:ChainedSQLiteFactory",
            SQLITE_DBNAME=str(location.sqlite_path),
            SQLITE_SYNCHRONOUS=settings.sqlite_synchronous.upper(),  # read by our factory
        )
    return env


def ensure_store(settings: Settings) -> None:
    """Create the store ``settings`` name if it is new: the event store's tables (events,
    snapshots, hash chain, command ids) and every side table. The views' tables are the
    view updater's to create."""
    # Named as the application is (LedgerApplication.name): eventsourcing names the tables after it.
    environment = Environment(APPLICATION_NAME, {**os.environ, **eventsourcing_env(settings)})
    factory = InfrastructureFactory.construct(environment)
    try:
        factory.application_recorder()
        factory.aggregate_recorder(purpose="snapshots")
    finally:
        factory.close()
    db = LedgerDatabase(settings)
    try:
        create_side_tables(db)
    finally:
        db.close()
