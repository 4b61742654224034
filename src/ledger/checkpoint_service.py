"""Making and publishing checkpoints: on demand (`ledger checkpoint`) and from `ledger serve`
every N events or T seconds, in a thread that rides out database outages."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field

import nats

from ledger.bus.nats_auth import connect_options, nats_servers
from ledger.checkpoints import (
    Checkpoint,
    last_checkpointed_position,
    load_private_key,
    make_checkpoint,
    write_to_directory,
)
from ledger.errors import InvalidInputError
from ledger.logging import get_logger
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase

log = get_logger(__name__)
NATS_TIMEOUT_S = 5
POLL_S = 1.0
MAX_BACKOFF_S = 30.0


def nats_checkpoint_subject(settings: Settings) -> str:
    return f"{settings.nats_subject_prefix}.checkpoint"


async def _publish_nats(settings: Settings, checkpoint: Checkpoint) -> None:
    client = await nats.connect(
        nats_servers(settings),
        connect_timeout=NATS_TIMEOUT_S,
        max_reconnect_attempts=0,
        allow_reconnect=False,
        **connect_options(settings),
    )
    try:
        msg_id = f"{checkpoint.origin}/checkpoint/{checkpoint.tree_size}/{checkpoint.timestamp}"
        await client.publish(
            nats_checkpoint_subject(settings),
            checkpoint.to_json().encode(),
            headers={"Nats-Msg-Id": msg_id},
        )
        await client.flush(timeout=NATS_TIMEOUT_S)
    finally:
        await client.close()


def publish(settings: Settings, checkpoint: Checkpoint) -> list[str]:
    """Publish to the checkpoint directory and NATS, where configured; where it went.

    A failure to publish on NATS is logged, not raised: the checkpoint is kept in the
    store's side table and the directory either way.
    """
    published = []
    if settings.checkpoint_dir is not None:
        published.append(str(write_to_directory(checkpoint, settings.checkpoint_dir)))
    if settings.nats_url:
        try:
            asyncio.run(asyncio.wait_for(_publish_nats(settings, checkpoint), NATS_TIMEOUT_S * 2))
            published.append(f"nats:{nats_checkpoint_subject(settings)}")
        except Exception as error:  # any NATS failure: the checkpoint stands
            log.warning("could not publish the checkpoint on NATS", error=str(error))
    return published


def checkpoint_now(settings: Settings) -> tuple[Checkpoint, list[str]]:
    """Sign the current tree with the configured key, keep and publish the checkpoint."""
    if settings.checkpoint_key is None:
        raise InvalidInputError(
            "no checkpoint key: set LEDGER_CHECKPOINT_KEY (create one: ledger checkpoint keygen)"
        )
    key = load_private_key(settings.checkpoint_key)
    db = LedgerDatabase(settings)
    try:
        checkpoint = make_checkpoint(db, key)
    finally:
        db.close()
    return checkpoint, publish(settings, checkpoint)


@dataclass
class CheckpointThread:
    """Checkpoints the log every ``checkpoint_every_events`` new events or every
    ``checkpoint_every_s`` seconds (when there are new events), until stopped."""

    settings: Settings
    made: int = 0
    last_error: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @staticmethod
    def wanted(settings: Settings) -> bool:
        return settings.checkpoint_key is not None and (
            settings.checkpoint_every_events > 0 or settings.checkpoint_every_s > 0
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        db: LedgerDatabase | None = None
        last, since, backoff = -1, time.monotonic(), POLL_S
        while not self._stop.wait(backoff):
            try:
                db = db or LedgerDatabase(self.settings)
                last, since = self._tick(db, last, since)
                backoff, self.last_error = POLL_S, ""
            except Exception as error:  # an outage: retry later, never die
                self.last_error = str(error).splitlines()[0] if str(error) else repr(error)
                log.warning("checkpoint failed; retrying", error=self.last_error)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                if db is not None:
                    with contextlib.suppress(Exception):
                        db.close()
                db = None
        if db is not None:
            db.close()

    def _tick(self, db: LedgerDatabase, last: int, since: float) -> tuple[int, float]:
        """One look at the log: checkpoint when enough events or time have passed.
        ``last``: the log position the last checkpoint covered (-1: not known yet)."""
        if last < 0:
            last = last_checkpointed_position(db)
        new = db.head_position() - last  # positions may skip numbers: close enough
        every_n, every_s = self.settings.checkpoint_every_events, self.settings.checkpoint_every_s
        due = (every_n and new >= every_n) or (every_s and time.monotonic() - since >= every_s)
        if new <= 0 or not due:
            return last, since
        checkpoint, _ = checkpoint_now(self.settings)
        self.made += 1
        log.info("checkpoint made", tree_size=checkpoint.tree_size, root=checkpoint.root_hash)
        return last_checkpointed_position(db), time.monotonic()
