"""Per-step capture of print output, safe when steps run on parallel threads.

``sys.stdout``/``sys.stderr`` are replaced once by routers that write to the
current step's log when one is set for this thread, and to the original stream
otherwise.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

_current_log: ContextVar[TextIO | None] = ContextVar("step_log", default=None)
_install_lock = threading.Lock()


class _Router:
    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        target = _current_log.get() or self.original
        return target.write(text)

    def flush(self) -> None:
        (_current_log.get() or self.original).flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self.original, name)


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr)


@contextmanager
def captured_output(log: TextIO) -> Iterator[None]:
    """Within this block, this thread's prints (stdout and stderr) go to ``log``."""
    _install()
    token = _current_log.set(log)
    try:
        yield
    finally:
        _current_log.reset(token)
