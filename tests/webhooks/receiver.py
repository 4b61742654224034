"""A real HTTP receiver for webhook tests: records each request and answers a scripted
sequence of statuses (the last one repeats), on a free port of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


@dataclass
class Script:
    """What the receiver answers: statuses in turn (the last repeats), extra headers, and
    a body of ``body_size`` bytes."""

    statuses: list[int] = field(default_factory=lambda: [200])
    headers: dict[str, str] = field(default_factory=dict)
    body_size: int = 2
    answered: int = 0

    def next_status(self) -> int:
        status = self.statuses[min(self.answered, len(self.statuses) - 1)]
        self.answered += 1
        return status


class Receiver:
    """The receiver's state: requests so far, and the script (changeable mid-test)."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.requests: list[Received] = []
        self.script = Script()
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, *statuses: int, **headers: str) -> None:
        with self.lock:
            self.script = Script(list(statuses), dict(headers))

    def ids(self) -> list[str]:
        with self.lock:
            return [r.headers.get("webhook-id", "") for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    receiver: Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        receiver = self.server.receiver  # type: ignore[attr-defined]
        with receiver.lock:
            receiver.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                         time.monotonic())
            )  # fmt: skip
            status = receiver.script.next_status()
            extra = dict(receiver.script.headers)
            size = receiver.script.body_size
        payload = b"x" * size
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key.replace("_", "-"), value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def receiving() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    server.receiver = receiver  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
