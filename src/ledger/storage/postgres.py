"""The production store: eventsourcing's PostgreSQL recorder plus the hash chain.

Appending runs as one server-side function call, so a commit is a single round
trip, for one save or for the batch of saves that queued meanwhile (group commit,
see ``ledger.storage.group_commit``). The function still takes the EXCLUSIVE table
lock that keeps the notification log gap-free (eventsourcing's own db-function mode
skips it), seals each event in the chain, records each save's command id and
NOTIFYs followers, all in the one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from ledger.chain import CHAIN_TABLE
from ledger.storage.commands import (
    COMMANDS_TABLE,
    CommittedCommand,
    create_commands_table_statement,
)
from ledger.storage.connections import CONNINFO_KEY
from ledger.storage.group_commit import (
    GroupCommitter,
    Outcome,
    PendingSave,
    configure_group_commit,
)

# The saves of one batch (see ledger.storage.group_commit): event columns of all of them,
# then per save its event count, command id and attempt. Each save runs in a savepoint
# of its own (a plpgsql block with an exception handler): one that conflicts rolls back
# alone and comes back as one row with no position and the error.
_APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{function}(
    ids uuid[], versions bigint[], topics text[], states bytea[],
    counts int[], p_commands text[], p_attempts text[]
) RETURNS TABLE (saved int, saved_at bigint, refused text) LANGUAGE plpgsql AS $BODY$
DECLARE
    previous bytea;
    chained bytea;
    positions bigint[];
    digests bytea[];
    hashes bytea[];
    lo int := 1;
    hi int;
BEGIN
    -- Taken before any savepoint: a save that rolls back must not release it.
    LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE;
    NOTIFY {channel};
    SELECT hash INTO previous FROM {schema}.{chain} ORDER BY position DESC LIMIT 1;
    previous := coalesce(previous, decode(repeat('00', 32), 'hex'));
    FOR s IN 1 .. array_length(counts, 1) LOOP
        hi := lo + counts[s] - 1;
        BEGIN
            WITH inserted AS (
                INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state)
                SELECT * FROM unnest(ids[lo:hi], versions[lo:hi],
                                     topics[lo:hi], states[lo:hi])
                RETURNING notification_id, originator_id, originator_version, topic, state
            )
            SELECT array_agg(notification_id ORDER BY notification_id),
                   array_agg(sha256(convert_to(originator_id::text || ':'
                                               || originator_version::text || ':' || topic,
                                               'UTF8') || state)
                             ORDER BY notification_id)
            INTO positions, digests FROM inserted;
            chained := previous;
            hashes := '{{}}';
            FOR i IN 1 .. array_length(positions, 1) LOOP
                chained := sha256(chained || int8send(positions[i]) || digests[i]);
                hashes[i] := chained;
            END LOOP;
            INSERT INTO {schema}.{chain} (position, hash) SELECT * FROM unnest(positions, hashes);
            IF p_commands[s] IS NOT NULL THEN
                INSERT INTO {schema}.{commands} (command_id, attempt, first_position, event_count)
                VALUES (p_commands[s], p_attempts[s], positions[1], array_length(positions, 1));
            END IF;
            previous := chained;
        EXCEPTION WHEN unique_violation THEN
            positions := NULL;
            RETURN QUERY SELECT s, NULL::bigint, SQLERRM;
        END;
        IF positions IS NOT NULL THEN
            RETURN QUERY SELECT s, unnest(positions), NULL::text;
        END IF;
        lo := hi + 1;
    END LOOP;
END;
$BODY$
"""


class ChainedPostgresApplicationRecorder(PostgresApplicationRecorder):
    """Appends through the chained append function; reads as eventsourcing does."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.chain_table = Identifier(CHAIN_TABLE)
        function = Identifier(f"{events_table_name}_append_batch")
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{chain} "
                "(position bigint PRIMARY KEY, hash bytea NOT NULL)"
            ).format(schema=schema, chain=self.chain_table)
        )
        self.sql_create_statements.append(
            SQL(create_commands_table_statement("{schema}.")).format(schema=schema)
        )
        self.sql_create_statements.append(
            SQL(_APPEND_FUNCTION).format(
                schema=schema,
                function=function,
                events=Identifier(self.events_table_name),
                chain=self.chain_table,
                commands=Identifier(COMMANDS_TABLE),
                channel=Identifier(self.channel_name),
            )
        )
        # Stores made before group commit hold the one-save function it replaced.
        self.sql_create_statements.append(
            SQL(
                "DROP FUNCTION IF EXISTS {schema}.{old}"
                "(uuid[], bigint[], text[], bytea[], text, text)"
            ).format(schema=schema, old=Identifier(f"{events_table_name}_append"))
        )
        # Binary parameters: event states travel as bytes, not hex text.
        self.append_statement = SQL(
            "SELECT * FROM {schema}.{function}(%b::uuid[], %b::bigint[], %b::text[], "
            "%b::bytea[], %b::int[], %b::text[], %b::text[])"
        ).format(schema=schema, function=function)
        self.writer = GroupCommitter(self._write_batch)
        self.select_chain_statement = SQL(
            "SELECT position, hash FROM {schema}.{chain} WHERE position > %s "
            "ORDER BY position LIMIT %s"
        ).format(schema=schema, chain=self.chain_table)
        self.select_command_statement = SQL(
            "SELECT attempt, first_position, event_count FROM {schema}.{commands} "
            "WHERE command_id = %s"
        ).format(schema=schema, commands=Identifier(COMMANDS_TABLE))

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Commit ``stored_events`` (with the ``command`` stamp's id, when given), in a
        transaction shared with the saves of other threads that arrive meanwhile."""
        if not stored_events:
            return []
        return self.writer.save(stored_events, kwargs.get("command"))

    # Like eventsourcing's recorders: a dropped connection is retried on a fresh one.
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _write_batch(self, batch: Sequence[PendingSave]) -> list[Outcome]:
        """One call of the append function: one transaction, one table lock, one flush."""
        events = [event for pending in batch for event in pending.events]
        commands = [pending.command for pending in batch]
        columns = (
            [e.originator_id for e in events],
            [e.originator_version for e in events],
            [e.topic for e in events],
            [e.state for e in events],
            [len(pending.events) for pending in batch],
            [command.command_id if command else None for command in commands],
            [command.attempt if command else None for command in commands],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.append_statement, columns, prepare=True)
            rows = curs.fetchall()
        positions: list[list[int]] = [[] for _ in batch]
        refused: dict[int, str] = {}
        for row in rows:
            if row["refused"] is not None:
                refused[row["saved"] - 1] = row["refused"]
            else:
                positions[row["saved"] - 1].append(row["saved_at"])
        return [
            IntegrityError(refused[i]) if i in refused else positions[i] for i in range(len(batch))
        ]

    def select_chain(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_chain_statement, (after, limit), prepare=True)
            return [(row["position"], bytes(row["hash"])) for row in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def committed_command(self, command_id: str) -> CommittedCommand | None:
        """The save that committed ``command_id``, if one did."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_command_statement, (command_id,))
            row = curs.fetchone()
        if row is None:
            return None
        return CommittedCommand(
            command_id, row["attempt"], row["first_position"], row["event_count"]
        )


class ChainedPostgresFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory: creates the schema, uses the chained recorder."""

    application_recorder_class = ChainedPostgresApplicationRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        # eventsourcing's datastore builds its pool (not yet open) from host, port, user,
        # password and database only: the rest of LEDGER_STORE (sslmode, timeouts, ...)
        # joins as the pool's connection string, which psycopg merges with those.
        self.datastore.pool.conninfo = self.env.get(CONNINFO_KEY) or ""
        if self.env_create_table():
            with self._schema_lock(), self.datastore.transaction(commit=True) as curs:
                curs.execute(
                    SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(self.datastore.schema))
                )

    def application_recorder(self) -> ApplicationRecorder:
        with self._schema_lock():
            recorder = super().application_recorder()
        assert isinstance(recorder, ChainedPostgresApplicationRecorder)
        configure_group_commit(recorder.writer, self.env)
        return recorder

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        with self._schema_lock():
            return super().aggregate_recorder(purpose)

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Serialise table and function creation across processes starting together:
        concurrent CREATE OR REPLACE FUNCTION fails with 'tuple concurrently updated'."""
        if not self.env_create_table():
            yield
            return
        key = f"ledger-schema:{self.datastore.schema}"
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
