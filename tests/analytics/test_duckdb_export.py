"""`ledger export --format duckdb`: the events and views in one DuckDB file, appended to by
later exports, untouched by a stopped one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from projections.analytics import duckdb_export
from projections.analytics.duckdb_export import export_duckdb
from projections.analytics.target import ExportTargetError
from projections.analytics.view_tables import exported_tables, short_name
from projections.views import Views
from tests.analytics.support import ACCURACY, add_events, feed
from tests.conftest import StoreFactory


def export(store: StoreFactory, file: Path | str, **options: Any) -> Any:
    with Views.open(store.settings()) as views:
        return export_duckdb(views.db, str(file), **options)


def query(file: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(file), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_file_holds_the_events_and_views_and_grows_by_the_new_events(
    store: StoreFactory, shop: Ledger, tmp_path: Path
) -> None:
    file = tmp_path / "out" / "ledger.duckdb"
    first = export(store, file)
    with Views.open(store.settings()) as views, duckdb.connect(str(file), read_only=True) as con:
        envelopes = feed(views)
        rows = con.sql("SELECT position, type, actor, payload FROM events ORDER BY position")
        assert [(p, t, a, json.loads(d)) for p, t, a, d in rows.fetchall()] == [
            (e["position"], e["type"], e["actor"], e["data"]) for e in envelopes
        ]
        for table in exported_tables():
            name, order = short_name(table), ", ".join(table.key)
            columns = [c[0] for c in con.sql(f"DESCRIBE views.{name}").fetchall()]
            stored = views.db.execute(
                f"SELECT {', '.join(columns)} FROM {table.name} ORDER BY {order}"
            )
            exported = con.sql(f"SELECT * FROM views.{name} ORDER BY {order}").fetchall()
            assert exported == [tuple(r) for r in stored]
        accuracy = con.sql(
            "SELECT version, metrics['accuracy'] FROM analytics.model_versions ORDER BY 1"
        ).fetchall()
        assert accuracy == list(ACCURACY.items())
        assert con.sql("SELECT position, views_position, since FROM _export").fetchall() == [
            (first.position, first.views_position, 0)
        ]

    add_events(shop, 1000)
    second = export(store, file)
    assert second.events == 1000
    new = query(file, f"SELECT position FROM events WHERE position > {first.position}")
    assert len(new) == 1000
    assert query(file, "SELECT count(*) - count(DISTINCT position) FROM events") == [(0,)]
    with Views.open(store.settings()) as views:
        assert [r[0] for r in query(file, "SELECT position FROM events ORDER BY 1")] == [
            e["position"] for e in feed(views)
        ]
    assert query(file, "SELECT position, since FROM _export") == [(second.position, first.position)]


def test_a_stopped_export_leaves_the_file_as_the_last_one_did(
    store: StoreFactory, shop: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "ledger.duckdb"
    first = export(store, file)
    add_events(shop, 100)
    replace = duckdb_export._replace_snapshot

    def killed(*args: Any) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(duckdb_export, "_replace_snapshot", killed)
    with pytest.raises(KeyboardInterrupt):
        export(store, file)
    assert query(file, "SELECT max(position), count(*) FROM events")[0][0] == first.position
    assert query(file, "SELECT position FROM _export") == [(first.position,)]
    monkeypatch.setattr(duckdb_export, "_replace_snapshot", replace)
    again = export(store, file)
    assert again.events == 100
    assert query(file, "SELECT count(*) - count(DISTINCT position) FROM events") == [(0,)]


def test_since_and_bad_targets(store: StoreFactory, shop: Ledger, tmp_path: Path) -> None:
    file = tmp_path / "ledger.duckdb"
    head = export(store, file).position
    # Going back re-exports those events (in the same transaction: never twice).
    assert export(store, file, since=head - 5).events == 5
    assert query(file, "SELECT count(*) - count(DISTINCT position) FROM events") == [(0,)]
    with pytest.raises(InvalidInputError, match="beyond the end of the log"):
        export(store, file, since=head + 10)
    with pytest.raises(InvalidInputError, match="writes a local file"):
        export(store, "s3://bucket/ledger.duckdb")
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(ExportTargetError, match="cannot write the DuckDB file"):
        export(store, tmp_path / "a-file" / "ledger.duckdb")
