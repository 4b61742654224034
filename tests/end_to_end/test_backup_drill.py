"""The backup and restore drill of README "Production" (Backups) and "Restoring a backup",
run for real: a private PostgreSQL and nats-server, `pg_dump -Fc`, more events and a
checkpoint after it, the database lost and `pg_restore`d into a fresh one, then the
procedure's commands as an operator types them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.bus import open_bus
from ledger.bus.relay import Relay
from ledger.checkpoints import generate_key
from ledger.ledger import Ledger
from ledger.settings import Settings
from tests.bus.test_relay_trust import stream_contents
from tests.bus_support import PrivateNats, handled_rows, in_background, record, wait_for
from tests.pg_instance import PgInstance, pg_binary, private_instance

LEDGER_BIN = Path(sys.executable).parent / "ledger"
DATABASE = "ledger"


@dataclass
class Drill:
    """Where the drill's ledger lives, as settings and as the environment of `ledger`."""

    pg: PgInstance
    settings: Settings
    env: dict[str, str]
    key: Path
    published: Path

    @property
    def url(self) -> str:
        return self.settings.store

    def ledger(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LEDGER_BIN, *args], env=self.env, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip

    def admin(self, statement: str) -> None:
        """A statement on the server's maintenance database (CREATE/DROP DATABASE)."""
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            conn.execute(statement)


@pytest.fixture
def drill(tmp_path: Path) -> Iterator[Drill]:
    nats = PrivateNats(tmp_path / "nats")
    nats.start()
    try:
        with private_instance() as pg:
            suffix = uuid.uuid4().hex[:10]
            key = tmp_path / "keys" / "checkpoint.key"
            generate_key(key)
            values = {
                "store": f"postgresql://postgres@127.0.0.1:{pg.port}/{DATABASE}",
                "home": str(tmp_path / ".ledger"),
                "actor": "operator",
                "executor": "local",
                "nats_url": nats.url,
                "nats_stream": f"DRILL_{suffix}",
                "nats_subject_prefix": f"drill_{suffix}",
                "nats_ack_wait_s": "1",
                "checkpoint_key": str(key),
                "checkpoint_dir": str(tmp_path / "published"),
                "log_level": "ERROR",
            }
            env = os.environ | {f"LEDGER_{name.upper()}": value for name, value in values.items()}
            drill = Drill(pg, Settings(**values), env, key, tmp_path / "published")
            drill.admin(f"CREATE DATABASE {DATABASE}")
            yield drill
    finally:
        nats.stop()


def register(drill: Drill, model_dir: Path, *names: str) -> int:
    """Register a version of each model; the head of the log."""
    with Ledger(drill.settings) as ledger:
        for name in names:
            ledger.models.register_version(name, model_dir, reason="drill")
        return int(ledger.event_count())


def relay_and_consume(settings: Settings, head: int) -> None:
    """The relay publishes the log up to ``head`` and the consumer `auditor` handles it."""
    relay, bus = Relay(settings), open_bus(settings)
    bus.subscribe("auditor", record)
    with in_background(relay.run, bus.run):
        wait_for(lambda: relay.status.position == head, 30, "the relay")
        wait_for(lambda: len(handled_rows(settings)) == head, 30, "the consumer")


def checkpoint(drill: Drill, size: int) -> None:
    made = drill.ledger("checkpoint")
    assert made.returncode == 0 and made.stdout.startswith(f"checkpoint: {size} events"), made


def handled_positions(settings: Settings) -> list[int]:
    return sorted(row[1] for row in handled_rows(settings))


def models(drill: Drill) -> dict[str, Any]:
    listed = drill.ledger("model", "list", "--json")
    assert listed.returncode == 0, listed
    return {model["name"]: model["latest_version"] for model in json.loads(listed.stdout)}


def test_backup_restore_drill(drill: Drill, model_dir: Path, tmp_path: Path) -> None:
    settings = drill.settings
    dump = tmp_path / "ledger.dump"

    # Before the backup: models, a checkpoint, everything relayed and consumed.
    backed_up = register(drill, model_dir, "iris", "iris", "wine")
    checkpoint(drill, backed_up)
    relay_and_consume(settings, backed_up)
    pg_dump = [pg_binary("pg_dump"), "-Fc", "-f", str(dump), f"--dbname={drill.url}"]
    subprocess.run(pg_dump, check=True, capture_output=True, timeout=120)

    # After it: more events, another checkpoint, relayed and consumed too.
    lost = register(drill, model_dir, "iris", "bert")
    checkpoint(drill, lost)
    relay_and_consume(settings, lost)
    assert lost > backed_up

    # The disaster: the database is gone; the dump is restored into a fresh one.
    drill.admin(f"DROP DATABASE {DATABASE} WITH (FORCE)")
    drill.admin(f"CREATE DATABASE {DATABASE}")
    pg_restore = [pg_binary("pg_restore"), "--exit-on-error", f"--dbname={drill.url}", str(dump)]
    restored = subprocess.run(pg_restore, capture_output=True, text=True, timeout=120, check=False)
    assert restored.returncode == 0, restored.stderr

    # 1. The restored log is whole, and holds the older checkpoint but not the newer one.
    verified = drill.ledger("verify")
    assert verified.returncode == 0, verified
    assert verified.stdout.startswith(f"OK: {backed_up} events, chain head "), verified
    public_key = f"{drill.key}.pub"
    anchored = drill.ledger(
        "verify", "--checkpoints", str(drill.published), "--public-key", public_key
    )
    assert anchored.returncode == 1, anchored
    assert f"OK: checkpoint {backed_up} of " in anchored.stdout, anchored
    (deleted,) = anchored.stderr.strip().splitlines()
    assert deleted.startswith(f"TAMPERED: checkpoint {lost} of "), deleted
    assert deleted.endswith(
        f"the checkpoint covers {lost} events but the log has only {backed_up}: events were deleted"
    ), deleted

    # 2. The relay refuses to go on from the stream, in one line.
    refused = drill.ledger("relay")
    assert refused.returncode == 1, refused
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: the relay refuses to publish to JetStream stream {settings.nats_stream}: it "
        f"holds events up to log position {lost} but this log ends at {backed_up}: the "
        "database was restored from an older backup; run `ledger relay --reset` to publish "
        f"this log into a fresh stream {settings.nats_stream} (it deletes the stream and its "
        "consumers)"
    ), refused.stderr

    # 3. `ledger relay --reset --yes` publishes the restored log into a fresh stream, and
    # goes on relaying: a write after the restore reaches the consumer, which skips what it
    # had handled before the backup and handles each event once.
    reset = subprocess.Popen(
        [LEDGER_BIN, "relay", "--reset", "--yes"], env=drill.env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    bus = open_bus(settings)
    bus.subscribe("auditor", record)
    try:
        with in_background(bus.run):
            wait_for(lambda: _positions(settings) == list(range(1, backed_up + 1)), 60,
                     "the restored log in the fresh stream")  # fmt: skip
            registered = drill.ledger("model", "register", "after", str(model_dir))
            assert registered.returncode == 0, registered
            head = _head(settings)
            wait_for(lambda: _positions(settings) == list(range(1, head + 1)), 30, "the write")
            wait_for(lambda: handled_positions(settings) == list(range(1, head + 1)), 30,
                     "the consumer")  # fmt: skip
    finally:
        reset.send_signal(signal.SIGTERM)
        _, errors = reset.communicate(timeout=30)
    assert reset.returncode == 0, errors
    assert "(reset: publishing the whole log afresh)" in " ".join(errors.split()), errors

    # 4. The views hold what the backup held, and what was written since; the log verifies.
    assert models(drill) == {"iris": 2, "wine": 1, "after": 1}
    assert drill.ledger("verify").returncode == 0


def _positions(settings: Settings) -> list[int]:
    """The log positions of the events in the stream, in stream order."""
    try:
        return [envelope["position"] for _, envelope in stream_contents(settings)]
    except Exception:  # the stream is being deleted and made afresh
        return []


def _head(settings: Settings) -> int:
    with Ledger(settings) as ledger:
        return int(ledger.event_count())
