"""A TCP proxy that cuts every connection through it at intervals (for fault tests).

It forwards 127.0.0.1:<port> to a target address. Once started, every ``cut_every``
seconds (with jitter) it closes all open connections at once, wherever they are in a
conversation: during a query, a COMMIT, or while the answer is on its way back.
New connections are accepted all along.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from types import TracebackType


class CuttingProxy:
    def __init__(self, target: tuple[str, int], cut_every: float) -> None:
        self.target = target
        self.cut_every = cut_every
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cutting = threading.Event()  # set by start_cutting()
        self._threads = [
            threading.Thread(target=self._accept, daemon=True),
            threading.Thread(target=self._cut, daemon=True),
        ]

    def __enter__(self) -> CuttingProxy:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._listener.close()
        self.cut_all()

    def start_cutting(self) -> None:
        """Begin cutting connections (until then the proxy only forwards)."""
        self._cutting.set()

    def cut_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            # Shut down, not close: the pumps close their sockets when they see it. Closing
            # here would free the descriptor while a pump still reads from it, and a new
            # connection given the same number would lose its bytes to the old pump.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _cut(self) -> None:
        self._cutting.wait()
        while not self._stop.wait(self.cut_every * random.uniform(0.5, 1.5)):
            self.cut_all()
            self.cuts += 1

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        source.close()  # each pump closes the socket it reads from
