"""`ledger export` and `ledger analytics init` from the command line: what they print, and
clear errors for what they cannot do."""

from __future__ import annotations

import uuid
from pathlib import Path

from ledger.ledger import Ledger
from tests.conftest import Cli, StoreFactory, assert_user_error


def test_export_and_analytics_init(
    store: StoreFactory, shop: Ledger, cli: Cli, tmp_path: Path
) -> None:
    head = shop.event_count()
    out = tmp_path / "export"
    result = cli("export", "--to", str(out))
    assert result.code == 0, result
    assert f"Exported {head} events (positions 1 to {head})" in result.out
    assert (out / "_export.json").exists()
    again = cli("export", "--to", str(out), "--json")
    assert again.code == 0, again
    summary = again.json()
    assert isinstance(summary, dict)
    assert (summary["events"], summary["since"], summary["position"]) == (0, head, head)
    duck = cli("export", "--to", str(tmp_path / "ledger.duckdb"), "--format", "duckdb", "--json")
    assert duck.code == 0, duck
    written = duck.json()
    assert isinstance(written, dict) and written["events"] == head

    assert_user_error(cli("export", "--to", str(out), "--format", "csv"), "unknown export format")
    assert_user_error(
        cli("export", "--to", str(out), "--since", "9999"), "beyond the end of the log"
    )
    (tmp_path / "a-file").write_text("")
    assert_user_error(cli("export", "--to", str(tmp_path / "a-file" / "x")), "cannot write to")

    schema = f"analytics_{uuid.uuid4().hex[:10]}"
    try:
        init = cli("analytics", "init", "--schema", schema)
        if store.kind == "sqlite":
            assert_user_error(init, "the analytics schema is for PostgreSQL stores")
        else:
            assert init.code == 0 and f"Analytics views in schema {schema}" in init.out, init
            assert store.sql(f"SELECT count(*) FROM {schema}.model_versions") == [(2,)]
    finally:
        if store.kind == "postgres":
            store.sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
