"""`ledger serve` as users run it, for tests: a real uvicorn server in its own process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.conftest import StoreFactory, free_port


@contextmanager
def serving(store: StoreFactory, **env: str) -> Iterator[str]:
    """Run `ledger serve` on ``store`` (``env`` added to its environment) on a free port
    until the block ends; yield its base URL."""
    port = free_port()
    ledger_bin = shutil.which("ledger", path=os.path.dirname(sys.executable))
    assert ledger_bin
    server = subprocess.Popen(
        [ledger_bin, "serve", "--port", str(port)],
        env={**os.environ, **store.env(), **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded machine starts it slowly
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
