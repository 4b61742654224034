"""`ledger analytics init` on PostgreSQL: documented views that answer as the export's
analytics datasets do, replaced idempotently, and still valid after the ledger rebuilds its
views. On SQLite it is refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from projections.analytics.catalog import DATASETS, Dataset
from projections.analytics.derived import analytics_tables
from projections.analytics.pg_views import create_analytics_schema
from projections.views import Views
from tests.conftest import PG_URL, StoreFactory
from tests.ui.seed import seed_world


@pytest.fixture
def schema(store: StoreFactory) -> Iterator[str]:
    """An analytics schema name of the test's own, dropped afterwards."""
    name = f"analytics_{uuid.uuid4().hex[:10]}"
    yield name
    if store.kind == "postgres":
        store.sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def pg(statement: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        cursor = conn.execute(statement)
        assert cursor.description is not None
        return [c.name for c in cursor.description], cursor.fetchall()


def normalized(dataset: Dataset, row: dict[str, Any]) -> str:
    """A row as comparable text: maps as objects, JSON text parsed."""
    values = {}
    for column in dataset.columns:
        value = row[column.name]
        if column.kind.endswith("map") and isinstance(value, list):
            value = dict(value)
        elif column.kind == "json" and isinstance(value, str):
            value = json.loads(value)
        values[column.name] = value
    return json.dumps(values, sort_keys=True, default=lambda v: v.isoformat())


def answers(schema: str) -> dict[str, list[str]]:
    found = {}
    for dataset in DATASETS:
        names, rows = pg(f"SELECT * FROM {schema}.{dataset.name}")
        assert names == list(dataset.column_names)
        found[dataset.name] = sorted(
            normalized(dataset, dict(zip(names, r, strict=True))) for r in rows
        )
    return found


def test_the_analytics_views_answer_as_the_export_does(
    store: StoreFactory, ledger: Ledger, schema: str
) -> None:
    settings = store.settings()
    if store.kind == "sqlite":
        with Views.open(settings) as views, pytest.raises(InvalidInputError, match="PostgreSQL"):
            create_analytics_schema(views.db, schema, settings.pg_schema)
        return
    seed_world(ledger)  # something in every dataset: models, endpoint shop, a job, a monitor
    with Views.open(settings) as views:
        create_analytics_schema(views.db, schema, settings.pg_schema)
        create_analytics_schema(views.db, schema, settings.pg_schema)  # again: replaced
        exported = {
            name: sorted(normalized(d, row) for row in table.to_pylist())
            for (name, table), d in zip(analytics_tables(views.db).items(), DATASETS, strict=True)
        }
    assert answers(schema) == exported
    assert all(exported.values())
    _, serving = pg(
        f"SELECT deployment, version, traffic FROM {schema}.deployments_over_time "
        "WHERE endpoint = 'shop' AND valid_to IS NULL ORDER BY deployment"
    )
    assert serving == [("blue", 1, 0), ("green", 2, 100)]
    _, accuracy = pg(
        f"SELECT version, (metrics ->> 'accuracy')::float8 FROM {schema}.model_versions "
        "ORDER BY version"
    )
    assert accuracy == [(1, 0.91), (2, 0.95), (3, 0.93)]

    # The ledger may still drop and rebuild its views: the analytics views read the new ones.
    with Views.open(settings) as views:
        views.updater.rebuild()
    assert answers(schema) == exported


def test_every_view_and_column_is_documented(
    store: StoreFactory, shop: Ledger, schema: str
) -> None:
    if store.kind == "sqlite":
        pytest.skip("PostgreSQL only (the refusal on SQLite is tested above)")
    settings = store.settings()
    with Views.open(settings) as views:
        create_analytics_schema(views.db, schema, settings.pg_schema)
        for bad in ("drop table x", "1st", settings.pg_schema):
            with pytest.raises(InvalidInputError, match="schema"):
                create_analytics_schema(views.db, bad, settings.pg_schema)
    for dataset in DATASETS:
        view = f"{schema}.{dataset.name}"
        _, [(described,)] = pg(f"SELECT obj_description('{view}'::regclass, 'pg_class')")
        assert described == dataset.description
        _, rows = pg(
            f"SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
            f"WHERE a.attrelid = '{view}'::regclass AND a.attnum > 0 ORDER BY a.attnum"
        )
        assert rows == [(c.name, c.description) for c in dataset.columns]
