"""The artifact tests' stores: the ledger-level tests run on SQLite and PostgreSQL with the
local artifact store, and on SQLite with an S3 (moto) and an Azure (Azurite) artifact store.
How events are stored does not change how artifacts are, so the object stores are not
multiplied by PostgreSQL as well."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import StoreFactory, _env_with, _with

# (event store, artifact store)
LEDGER_STORES = {
    "sqlite": ("sqlite", "local"),
    "postgres": ("postgres", "local"),
    "sqlite-s3": ("sqlite", "s3"),
    "sqlite-az": ("sqlite", "az"),
}


@pytest.fixture(params=list(LEDGER_STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """The test store (as tests/conftest.py's), its artifacts where the parameter says."""
    kind, artifacts = LEDGER_STORES[request.param]
    factory = StoreFactory(kind, tmp_path)
    if artifacts != "local":
        server = request.getfixturevalue("s3_server" if artifacts == "s3" else "azure_server")
        overrides = {"artifacts": server.new_location()}
        factory.settings = _with(factory.settings, overrides)  # type: ignore[method-assign]
        factory.env = _env_with(factory.env, overrides)  # type: ignore[method-assign]
    yield factory
    factory.drop()
