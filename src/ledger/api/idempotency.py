"""Idempotency-Key: a retried write returns the first response and writes nothing new.

Keys are scoped to the caller's credentials, method and path, and kept for
``LEDGER_API_IDEMPOTENCY_HOURS``. The first request with a key claims it; a
request with the same key while the first runs gets 409; once the first answered
(with anything but a 5xx), a retry with the same body gets that answer again, and
one with another body gets 422. A 5xx releases the key, so the retry runs.

The keys are kept in the views' database. If it is unavailable before a request
runs, the request is answered 503 (with Retry-After) and nothing runs; if it went
away while the request ran, the answer stands as it is (a committed write is never
reported as failed) and the key's record is written once the database is back.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.api.problems import STORE_ERRORS, problem, store_unavailable
from ledger.api.services import ApiServices
from ledger.logging import get_logger
from ledger.storage.rows import Row
from ledger.storage.side_tables import API_IDEMPOTENCY as TABLE
from ledger.storage.side_tables import create_side_tables

HEADER = b"idempotency-key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255
# A claim this old whose request never answered (the server died) may be taken again.
ABANDONED_AFTER_S = 300
_PURGE_EVERY_S = 600
MAX_DEFERRED = 10_000  # key records waiting for the database to come back
log = get_logger(__name__)


def create_idempotency_table(services: ApiServices) -> None:
    with services.pool.views() as views:
        create_side_tables(views.db)


def _multipart_boundary(headers: dict[bytes, bytes]) -> bytes:
    content_type = headers.get(b"content-type", b"")
    if not content_type.startswith(b"multipart/"):
        return b""
    for parameter in content_type.split(b";")[1:]:
        name, _, value = parameter.strip().partition(b"=")
        if name.lower() == b"boundary":
            return value.strip(b'"')
    return b""


class BodyFingerprint:
    """sha256 of a request body, blind to its multipart boundary (a client picks a new
    random one for each retry of the same form)."""

    def __init__(self, boundary: bytes) -> None:
        self._hash = hashlib.sha256()
        self._boundary = boundary
        self._tail = b""  # may hold the start of a boundary split across chunks

    def update(self, chunk: bytes) -> None:
        if not self._boundary:
            self._hash.update(chunk)
            return
        data = (self._tail + chunk).replace(self._boundary, b"")
        keep = len(self._boundary) - 1
        self._hash.update(data[:-keep] if keep else data)
        self._tail = data[-keep:] if keep else b""

    def hexdigest(self) -> str:
        final = self._hash.copy()
        final.update(self._tail)
        return final.hexdigest()


def request_key(scope: Scope, headers: dict[bytes, bytes], raw_key: bytes) -> str:
    """What a request's answer is kept under: who sent it, to where, and its key."""
    return hashlib.sha256(
        b"\n".join(
            [
                headers.get(b"authorization", b""),
                scope["method"].encode(),
                scope.get("raw_path") or scope["path"].encode(),
                scope["query_string"],
                raw_key,
            ]
        )
    ).hexdigest()


async def replay(send: Send, status: int, content_type: str, body: bytes) -> None:
    """Send a kept answer again, marked ``Idempotent-Replayed: true``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"idempotent-replayed", b"true"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": bytes(body)})


class Idempotency:
    """ASGI middleware keeping the first response to each Idempotency-Key."""

    def __init__(self, app: ASGIApp, services: ApiServices) -> None:
        self.app = app
        self.services = services
        self.ttl_s = services.settings.api_idempotency_hours * 3600
        self._purged_at = 0.0
        # Key records (statement, parameters) that could not be written: the store was away.
        self._deferred: list[tuple[str, tuple[object, ...]]] = []
        self._deferred_lock = threading.Lock()
        # Keys whose answer is being recorded (their retries wait for it).
        self._recording: dict[str, asyncio.Event] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"]) if scope["type"] == "http" else {}
        raw_key = headers.get(HEADER)
        if raw_key is None or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        if not raw_key or len(raw_key) > MAX_KEY_LENGTH:
            detail = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters"
            await problem(400, detail)(scope, receive, send)
            return
        key = request_key(scope, headers, raw_key)
        body_hash = BodyFingerprint(_multipart_boundary(headers))
        # The request's commands are saved under this id: a retry after an answer that was
        # lost (or a 5xx) finds what they committed instead of doing it again.
        scope.setdefault("state", {})["command_id"] = key

        async def hashing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body_hash.update(message.get("body", b""))
            return message

        if (recording := self._recording.get(key)) is not None:
            await recording.wait()  # a retry that overtook the first answer's record
        try:
            stored = await anyio.to_thread.run_sync(self._claim_after_chores, key)
        except STORE_ERRORS as error:
            await store_unavailable(error)(scope, receive, send)
            return
        if stored is None:
            await self._run_and_keep(key, scope, hashing_receive, send, body_hash)
            return
        fingerprint, status, content_type, body = stored
        if status == 0:
            detail = "a request with this Idempotency-Key is still running; retry later"
            await problem(409, detail)(scope, receive, send)
            return
        while (await hashing_receive()).get("more_body", False):
            pass
        if body_hash.hexdigest() != fingerprint:
            detail = "this Idempotency-Key was used with another request body"
            await problem(422, detail)(scope, receive, send)
            return
        await replay(send, status, content_type, body)

    async def _run_and_keep(
        self, key: str, scope: Scope, receive: Receive, send: Send, body_hash: BodyFingerprint
    ) -> None:
        status, content_type, chunks = 500, "", []

        async def capturing_send(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                self._recording.setdefault(key, asyncio.Event())  # before the client sees it
                status = message["status"]
                content_type = dict(message.get("headers", [])).get(b"content-type", b"").decode()
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capturing_send)
        finally:
            record: tuple[str, tuple[object, ...]]
            if status >= 500:
                record = f"DELETE FROM {TABLE} WHERE key = ?", (key,)
            else:
                record = (
                    f"UPDATE {TABLE} SET fingerprint = ?, status = ?, content_type = ?, "
                    "body = ? WHERE key = ? AND status = 0",
                    (body_hash.hexdigest(), status, content_type, b"".join(chunks), key),
                )
            await self._record(key, *record)

    async def _record(self, key: str, statement: str, params: tuple[object, ...]) -> None:
        """Keep a request's outcome, off the event loop (other requests go on meanwhile),
        even if the client has gone. A retry sent once the answer began waits for this
        rather than finding the key still claimed."""
        recording = self._recording.setdefault(key, asyncio.Event())
        try:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._keep, statement, params)
        finally:
            del self._recording[key]
            recording.set()

    def _keep(self, statement: str, params: tuple[object, ...]) -> None:
        """Record a request's outcome under its key; if the store is away, later."""
        try:
            self._execute(statement, *params)
        except STORE_ERRORS as error:
            log.warning("an Idempotency-Key's answer is kept for later", error=str(error))
            with self._deferred_lock:
                if len(self._deferred) < MAX_DEFERRED:
                    self._deferred.append((statement, params))

    def _write_deferred(self) -> None:
        """Write the key records deferred while the store was away (before new claims)."""
        if not self._deferred:
            return
        with self._deferred_lock:
            while self._deferred:
                statement, params = self._deferred[0]
                self._execute(statement, *params)
                self._deferred.pop(0)

    def _claim_after_chores(self, key: str) -> tuple[str, int, str, bytes] | None:
        """Write deferred records and purge expired ones (now and then), then claim."""
        self._write_deferred()
        self._purge_expired()
        return self._claim(key)

    def _claim(self, key: str) -> tuple[str, int, str, bytes] | None:
        """None when this request now holds the key (new, or abandoned by a request that
        never answered); else what is stored under it."""
        now_us = int(time.time() * 1e6)
        claimed = self._execute(
            f"INSERT INTO {TABLE} (key, fingerprint, status, content_type, body, created_us) "
            "VALUES (?, '', 0, '', ?, ?) ON CONFLICT (key) DO UPDATE SET created_us = "
            f"excluded.created_us WHERE {TABLE}.status = 0 AND {TABLE}.created_us < ? "
            "RETURNING key",
            key,
            b"",
            now_us,
            now_us - ABANDONED_AFTER_S * 1_000_000,
        )
        if claimed:
            return None
        rows = self._execute(
            f"SELECT fingerprint, status, content_type, body FROM {TABLE} WHERE key = ?", key
        )
        if not rows:  # expired between the two statements: claim it again
            return self._claim(key)
        fingerprint, status, content_type, body = rows[0]
        return fingerprint, status, content_type, bytes(body)

    def _purge_expired(self) -> None:
        now = time.time()
        if now - self._purged_at > _PURGE_EVERY_S:
            self._purged_at = now
            self._execute(
                f"DELETE FROM {TABLE} WHERE created_us < ?", int((now - self.ttl_s) * 1e6)
            )

    def _execute(self, statement: str, *params: object) -> list[Row]:
        with self.services.pool.views() as views:
            return views.db.execute(statement, params)
