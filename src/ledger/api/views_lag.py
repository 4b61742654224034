"""Saying that the views lag behind a committed write: the ``X-Ledger-Views-Lag`` header.

A request reading the views waits for them to include the writes this server answered
before it, and a write answered from them waits for itself (read-your-writes). If they
cannot catch up (the store went away right after a commit), the answer says so with this
header, a write's answer still reports it as done, and the views catch up once the store
is back.
"""

from __future__ import annotations

from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Ledger-Views-Lag"
# One mutable note per request: a sync route runs in a thread with a copy of the
# request's context, which still holds the same list.
_NOTE: ContextVar[list[bool] | None] = ContextVar("views_lag", default=None)


def note_views_lag() -> None:
    """Mark the current request's answer: its write committed, the views lag behind it."""
    note = _NOTE.get()
    if note is not None:
        note.append(True)


def views_lagging() -> bool:
    """Whether the current request's write committed ahead of the views."""
    return bool(_NOTE.get())


class ViewsLagHeader:
    """ASGI middleware adding ``X-Ledger-Views-Lag: true`` to answers noted as lagging."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        note: list[bool] = []
        token = _NOTE.set(note)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start" and note:
                headers = [*message.get("headers", []), (HEADER.lower().encode(), b"true")]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            _NOTE.reset(token)
