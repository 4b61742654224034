"""The README's analytics query, run as the README shows it, answers correctly; the README's
table of analytics views names the columns the views have."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from ledger.ledger import Ledger
from projections.analytics.catalog import DATASETS
from projections.analytics.parquet_export import export_parquet
from projections.views import Views
from tests.analytics.support import ACCURACY
from tests.conftest import StoreFactory
from tests.paths import REPO

README = (REPO / "README.md").read_text()
QUERY = re.search(
    r"<!-- analytics-query:start -->\n```sql\n(.*?)```\n<!-- analytics-query:end -->",
    README,
    re.DOTALL,
)
DAY = "TIMESTAMPTZ '2026-03-02 00:00:00+00'"
NEXT_DAY = "TIMESTAMPTZ '2026-03-03 00:00:00+00'"


def on_day(query: str, day: int) -> str:
    """The README's query for another day of March 2026."""
    bounds = {DAY: day, NEXT_DAY: day + 1}
    return re.sub(
        "|".join(map(re.escape, bounds)),
        lambda found: f"TIMESTAMPTZ '2026-03-{bounds[found.group(0)]:02} 00:00:00+00'",
        query,
    )


def test_the_readme_query_says_which_version_served_shop_on_a_day(
    store: StoreFactory, shop: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert QUERY is not None, "README.md lost its analytics-query markers"
    query = QUERY.group(1)
    assert DAY in query and NEXT_DAY in query
    with Views.open(store.settings()) as views:
        export_parquet(views.db, str(tmp_path / "ledger-export"))
    monkeypatch.chdir(tmp_path)  # the README runs it beside ledger-export/
    blue, green = ("blue", "iris", 1, 100, ACCURACY[1]), ("green", "iris", 2, 100, ACCURACY[2])
    assert duckdb.sql(query).fetchall() == [blue]  # verbatim: 2 March, before the switch
    assert duckdb.sql(on_day(query, 3)).fetchall() == [blue, green]  # switched at 10:00
    assert duckdb.sql(on_day(query, 4)).fetchall() == [green]
    assert duckdb.sql(on_day(query, 1)).fetchall() == [blue]  # the first day
    assert duckdb.sql(on_day(query, 28)).fetchall() == [green]  # still now


def test_the_readme_table_lists_every_analytics_column() -> None:
    rows = {
        found.group(1): found.group(2)
        for found in re.finditer(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \|$", README, re.MULTILINE)
    }
    for dataset in DATASETS:
        assert dataset.name in rows, f"README's analytics table lacks {dataset.name}"
        listed = [re.sub(r" \(.*\)$", "", name.strip()) for name in rows[dataset.name].split(",")]
        assert listed == list(dataset.column_names), dataset.name
