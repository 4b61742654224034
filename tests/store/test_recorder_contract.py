"""eventsourcing's own recorder contract, run against the ledger's two recorders.

The cases come from the installed eventsourcing (``eventsourcing.tests.persistence``):
``ApplicationRecorderTestCase`` (insert and select, notification ids 1, 2, 3 in order,
conflicts raise ``IntegrityError``, concurrent writers with readers) and
``NonInterleavingNotificationIDsBaseCase`` (two writers racing: each one's events get
consecutive positions). Each store subclasses them, as eventsourcing's own SQLite and
PostgreSQL tests do, with ``create_recorder`` building the recorder exactly as the
application does (``eventsourcing_env`` through eventsourcing's factory), on a store of its
own that is removed afterwards.

The ledger's recorders seal each event in the hash chain and accept a command stamp; a
contract test run with neither (as these run) must see eventsourcing's behaviour unchanged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)
from eventsourcing.utils import Environment

from ledger.chain import verify_chain
from ledger.settings import Settings
from ledger.storage import APPLICATION_NAME, eventsourcing_env
from ledger.storage.postgres import ChainedPostgresApplicationRecorder
from ledger.storage.sqlite import ChainedSQLiteApplicationRecorder
from tests.conftest import PG_URL


class LedgerStore:
    """``create_recorder``: the ledger's recorder on a fresh store, as the application builds
    it; every store made is closed and removed at tearDown."""

    kind = ""  # "sqlite" or "postgres"
    recorder_class: type[ApplicationRecorder] = ApplicationRecorder

    def setUp(self) -> None:
        self._homes: list[Path] = []
        self._schemas: list[str] = []
        self._factories: list[InfrastructureFactory[Any]] = []
        self._recorders: list[ApplicationRecorder] = []

    def tearDown(self) -> None:
        for recorder in self._recorders:
            # Whatever a case wrote through the recorder, the chain seals it, in order.
            assert verify_chain(recorder).ok  # type: ignore[arg-type]
        for factory in self._factories:
            factory.close()
        if self._schemas:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                for schema in self._schemas:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        for home in self._homes:
            shutil.rmtree(home, ignore_errors=True)

    def create_recorder(self) -> ApplicationRecorder:
        home = Path(tempfile.mkdtemp(prefix="recorder-contract-"))
        self._homes.append(home)
        settings = Settings(home=home)
        if self.kind == "postgres":
            schema = f"test_contract_{uuid.uuid4().hex[:12]}"
            self._schemas.append(schema)
            settings = Settings(home=home, store=PG_URL, pg_schema=schema)
        environment = Environment(APPLICATION_NAME, {**os.environ, **eventsourcing_env(settings)})
        factory = InfrastructureFactory.construct(environment)
        self._factories.append(factory)
        recorder = factory.application_recorder()
        assert type(recorder) is self.recorder_class  # the ledger's, not eventsourcing's own
        self._recorders.append(recorder)
        return recorder


class SQLiteStore(LedgerStore):
    kind = "sqlite"
    recorder_class = ChainedSQLiteApplicationRecorder


class PostgresStore(LedgerStore):
    kind = "postgres"
    recorder_class = ChainedPostgresApplicationRecorder


class TestSQLiteRecorderContract(SQLiteStore, ApplicationRecorderTestCase[ApplicationRecorder]):
    pass


class TestPostgresRecorderContract(PostgresStore, ApplicationRecorderTestCase[ApplicationRecorder]):
    def test_insert_subscribe(self) -> None:
        # Optional in the contract; eventsourcing's PostgreSQL recorder offers it, and the
        # ledger's append function sends the NOTIFY its subscriptions listen for.
        self.optional_test_insert_subscribe()


class TestSQLiteNonInterleaving(SQLiteStore, NonInterleavingNotificationIDsBaseCase):
    pass


class TestPostgresNonInterleaving(PostgresStore, NonInterleavingNotificationIDsBaseCase):
    pass
