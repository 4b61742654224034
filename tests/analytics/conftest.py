"""Fixtures of the analytics export tests: a clock for event times, and export targets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import eventsourcing.domain
import pytest

from ledger.ledger import Ledger
from tests.analytics.support import Clock, seed_shop
from tests.conftest import StoreFactory


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", fake)
    return fake


@pytest.fixture
def shop(store: StoreFactory, clock: Clock, tmp_path: Path) -> Iterator[Ledger]:
    """The seeded ledger (see ``tests.analytics.support``), open for more writes."""
    ledger = Ledger(store.settings(sqlite_synchronous="normal"))
    seed_shop(ledger, clock, tmp_path / "files")
    yield ledger
    ledger.close()


@pytest.fixture(params=["local", "s3"])
def export_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where an export goes: a local directory, or a fresh bucket on the S3 server."""
    if request.param == "local":
        return str(tmp_path / "export")
    location: str = request.getfixturevalue("s3_server").new_location("export")
    return location
