"""NATS JetStream plumbing shared by the relay and the consumers: connecting, the stream,
and how ledger subjects map to NATS subjects."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import nats
import orjson
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from ledger.bus.events import ROOT, ledger_envelope
from ledger.bus.nats_auth import (
    connect_options,
    credentials_refused,
    describe_nats_url,
    is_refusal,
    nats_servers,
    who,
)
from ledger.bus.running import stopped
from ledger.errors import BusUnavailableError
from ledger.logging import get_logger
from ledger.settings import Settings

log = get_logger(__name__)
RECONNECT_WAIT_S = 1.0
CONNECT_TIMEOUT_S = 5.0
# How many foreign messages at the end of the stream the relay looks past.
FOREIGN_LOOKBACK = 100


def nats_subject(settings: Settings, subject: str) -> str:
    """``ledger.model.registered`` as published: under the configured first token."""
    first, _, rest = subject.partition(".")
    assert first == ROOT, subject
    return f"{settings.nats_subject_prefix}.{rest}"


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.nats_stream,
        description="Lifecycle Ledger events, published by `ledger relay`",
        subjects=[f"{settings.nats_subject_prefix}.>"],
        retention=RetentionPolicy(settings.nats_retention),
        storage=StorageType.FILE,
        num_replicas=settings.nats_replicas,
        max_age=settings.nats_max_age_hours * 3600,
        duplicate_window=settings.nats_duplicate_window_s,
    )


@dataclass
class Connection:
    """A NATS connection that reconnects forever, and what the relay reports of it."""

    settings: Settings
    name: str
    client: Client = field(init=False)
    connected: bool = False
    last_error: str = ""
    refusal: BaseException | None = None  # NATS refused the credentials (last attempt)

    async def open(self, stop: asyncio.Event | None = None) -> JetStreamContext | None:
        """Connect. With ``stop``, retry until NATS answers (None: stopped meanwhile);
        without, fail at once. Credentials NATS refuses fail at once either way: retrying
        them cannot succeed, and an operator must see the mistake."""
        servers = nats_servers(self.settings)
        where = describe_nats_url(self.settings.nats_url)
        options = connect_options(self.settings)
        while True:
            self.refusal = None
            try:
                # Reconnecting forever also makes nats-py's first connect try forever.
                self.client = await asyncio.wait_for(
                    nats.connect(
                        servers,
                        name=self.name,
                        connect_timeout=2,
                        reconnect_time_wait=RECONNECT_WAIT_S,
                        max_reconnect_attempts=-1,
                        disconnected_cb=self._disconnected,
                        reconnected_cb=self._reconnected,
                        error_cb=self._error,
                        **options,
                    ),
                    CONNECT_TIMEOUT_S,
                )
            except Exception as error:  # TimeoutError, an authorization error...
                if not isinstance(error, TimeoutError) or not self.last_error:
                    self._note_error(error)
                if self.refusal is not None or is_refusal(error):
                    raise credentials_refused(self.settings, self.refusal or error) from None
                if stop is None:
                    raise BusUnavailableError(
                        f"cannot reach NATS at {where}: {self.last_error}"
                    ) from error
                log.warning("cannot reach NATS; retrying", url=where, error=self.last_error)
                if await stopped(stop, RECONNECT_WAIT_S):
                    return None
                continue
            self.connected = True
            log.info("connected to NATS", url=self.client.connected_url, name=self.name)
            return self.client.jetstream(timeout=5)

    async def close(self) -> None:
        self.connected = False  # before closing: a deliberate close is no disconnection
        if getattr(self, "client", None) is not None and not self.client.is_closed:
            await self.client.close()

    async def _disconnected(self) -> None:
        if self.connected:
            log.warning("disconnected from NATS; reconnecting", name=self.name)
        self.connected = False

    async def _reconnected(self) -> None:
        self.connected = True
        log.info("reconnected to NATS", url=self.client.connected_url, name=self.name)

    async def _error(self, error: Exception) -> None:
        self._note_error(error)
        if is_refusal(error):
            self.refusal = error
            if self.connected:  # rotated credentials, or a server that lost its users
                log.error("NATS refuses the credentials", who=who(self.settings), name=self.name)

    def _note_error(self, error: BaseException) -> None:
        self.last_error = str(error) or type(error).__name__


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    """Create the stream, or bring an existing one to the configured limits."""
    wanted = stream_config(settings)
    try:
        info = await js.stream_info(settings.nats_stream)
    except NotFoundError:
        await js.add_stream(wanted)
        log.info("created the JetStream stream", stream=settings.nats_stream)
        return
    current = info.config
    have = (current.subjects, getattr(current.retention, "value", current.retention))
    want = (wanted.subjects, getattr(wanted.retention, "value", wanted.retention))
    if have != want:
        raise BusUnavailableError(
            f"JetStream stream {settings.nats_stream} exists with subjects {have[0]} and "
            f"retention {have[1]}; the settings ask for {want[0]} and {want[1]}: "
            "set LEDGER_NATS_STREAM to another name, or delete the stream"
        )
    changed = {
        name: getattr(wanted, name)
        for name in ("num_replicas", "max_age", "duplicate_window")
        if getattr(current, name) != getattr(wanted, name)
    }
    if changed:
        for name, value in changed.items():
            setattr(current, name, value)
        await js.update_stream(current)
        log.info("updated the JetStream stream", stream=settings.nats_stream, **changed)


async def stream_end(js: JetStreamContext, settings: Settings) -> tuple[int, dict[str, Any] | None]:
    """The stream's last sequence, and the newest ledger event in it, looking back past
    foreign messages (None: none, e.g. an empty stream or one whose messages were consumed
    or expired)."""
    state = (await js.stream_info(settings.nats_stream)).state
    last = state.last_seq or 0
    for sequence in range(last, max(state.first_seq or 1, last - FOREIGN_LOOKBACK) - 1, -1):
        try:
            if envelope := await envelope_at(js, settings, sequence):
                return last, envelope
        except NotFoundError:  # deleted, expired or consumed
            continue
    return last, None


async def envelope_at(js: JetStreamContext, settings: Settings, sequence: int) -> dict[str, Any]:
    """The ledger event at stream ``sequence`` as published (empty: a foreign message)."""
    message = await js.get_msg(settings.nats_stream, sequence)
    try:
        payload = orjson.loads(message.data or b"{}")
        envelope = ledger_envelope(payload) if isinstance(payload, dict) else {}
        if int(envelope.get("position", 0)) > 0:
            return envelope
    except (ValueError, TypeError):
        pass
    log.warning("a message in the stream is no ledger event", sequence=sequence)
    return {}


async def position_at(js: JetStreamContext, settings: Settings, sequence: int) -> int:
    """The log position of the event at stream ``sequence`` (0: a foreign message)."""
    return int((await envelope_at(js, settings, sequence)).get("position", 0))


async def delete_stream(js: JetStreamContext, settings: Settings) -> bool:
    """Delete the stream with its consumers; whether there was one."""
    try:
        await js.delete_stream(settings.nats_stream)
    except NotFoundError:
        return False
    log.warning("deleted the JetStream stream", stream=settings.nats_stream)
    return True
