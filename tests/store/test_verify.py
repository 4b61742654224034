"""The hash chain detects an edited, deleted, reordered or inserted event, at its position."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.ledger import Ledger
from tests.conftest import StoreFactory


@pytest.fixture
def history(ledger: Ledger, model_dir: Path) -> Ledger:
    for _ in range(5):
        ledger.models.register_version("iris", model_dir, reason="train")
    ledger.endpoints.create("web")
    ledger.endpoints.deploy("web", "blue", "iris:5")
    return ledger  # 3 + 4 * 2 (versions) + 1 (endpoint) + 3 (deploy) = 15 events


def test_clean_store_verifies(history: Ledger) -> None:
    report = history.verify()
    assert report.ok
    assert report.count == history.event_count() == 15
    assert len(report.head) == 64


def _position_filter(store: StoreFactory) -> str:
    return f"{store.position_column} = ?"


def test_edited_event_is_detected_at_its_position(
    history: Ledger, store: StoreFactory, open_ledger: Callable[..., Ledger]
) -> None:
    (state,) = store.sql(
        f"SELECT state FROM {store.events_table} WHERE {_position_filter(store)}", (7,)
    )[0]
    edited = bytes(state).replace(b"tester", b"mallory")
    assert edited != bytes(state)
    store.sql(
        f"UPDATE {store.events_table} SET state = ? WHERE {_position_filter(store)}", (edited, 7)
    )
    report = open_ledger().verify()
    assert (report.ok, report.bad_position, report.count) == (False, 7, 6)
    assert "edited" in report.problem


def test_deleted_event_is_detected_at_its_position(
    history: Ledger, store: StoreFactory, open_ledger: Callable[..., Ledger]
) -> None:
    store.sql(f"DELETE FROM {store.events_table} WHERE {_position_filter(store)}", (9,))
    report = open_ledger().verify()
    assert (report.ok, report.bad_position) == (False, 9)
    assert "deleted" in report.problem


def test_swapped_events_are_detected_at_the_first_of_them(
    history: Ledger, store: StoreFactory, open_ledger: Callable[..., Ledger]
) -> None:
    column, table = store.position_column, store.events_table
    store.sql(f"UPDATE {table} SET {column} = 1000 WHERE {column} = ?", (4,))
    store.sql(f"UPDATE {table} SET {column} = 4 WHERE {column} = ?", (11,))
    store.sql(f"UPDATE {table} SET {column} = 11 WHERE {column} = ?", (1000,))
    report = open_ledger().verify()
    assert (report.ok, report.bad_position) == (False, 4)


def test_inserted_event_is_detected_at_its_position(
    history: Ledger, store: StoreFactory, open_ledger: Callable[..., Ledger]
) -> None:
    column, table = store.position_column, store.events_table
    # Forge a copy of event 3 under a new id and version, appended after the last event.
    store.sql(
        f"INSERT INTO {table} (originator_id, originator_version, topic, state, {column}) "
        f"SELECT originator_id, originator_version + 100, topic, state, 16 FROM {table} "
        f"WHERE {column} = 3"
    )
    report = open_ledger().verify()
    assert (report.ok, report.bad_position, report.count) == (False, 16, 15)
    assert "inserted" in report.problem


def test_chain_keeps_growing_across_sessions(
    history: Ledger, open_ledger: Callable[..., Ledger], model_dir: Path
) -> None:
    later = open_ledger()
    later.models.register_version("iris", model_dir)
    report = later.verify()
    assert report.ok and report.count == 17
