"""Object stores for tests, as real protocol servers in their own processes: moto's
standalone S3 server and Azurite (the Azure Storage emulator, installed from npm by
scripts/bootstrap.sh into .venv/azurite). One of each per test session, started on first
use; each test gets a bucket or container of its own. The servers themselves are started
by tests/object_store_servers.py (plain Python, which the benchmarks use too).

Clients find the servers through the usual environment variables (``AWS_ENDPOINT_URL``,
``AZURITE_BLOB_STORAGE_URL``...), set for the whole session so that Ray's workers, which
start from the driver's environment, find them too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests import object_store_servers
from tests.object_store_servers import AZURITE, ObjectStoreServer, moto_server

__all__ = ["ObjectStoreServer", "azurite_server", "moto_server"]


@contextmanager
def azurite_server() -> Iterator[ObjectStoreServer]:
    """Azurite's blob service on a free port; the test is skipped when it is not installed."""
    if not AZURITE.exists():
        pytest.skip(f"Azurite is not installed at {AZURITE} (scripts/bootstrap.sh installs it)")
    with object_store_servers.azurite_server() as server:
        yield server
