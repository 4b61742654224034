"""The benchmark suite's plumbing: every script starts, and run_all writes its report.

The benchmarks themselves take minutes and print figures, not verdicts; here each
script only has to parse its options (so an import that broke shows up in CI), the
Markdown that run_all writes is checked on real Rich tables, and the write modes of
api.py and register.py run at tiny sizes against real servers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.table import Table

from ledger.ledger import Ledger
from tests.conftest import PG_URL, StoreFactory
from tests.paths import BENCHMARKS

# Appended, not prepended: benchmarks/projections.py must not shadow the package.
sys.path.append(str(BENCHMARKS))

import run_all
from _common import Report, table_data

EXPECTED = {
    "api", "artifacts", "bus", "executors", "mlflow_client", "monitoring", "projections",
    "register", "scoring", "trust",
}  # fmt: skip


def test_run_all_finds_every_benchmark_and_no_helper() -> None:
    assert set(run_all.benchmarks()) == EXPECTED


def test_every_benchmark_parses_its_options() -> None:
    def help_text(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(BENCHMARKS / f"{name}.py"), "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(sorted(EXPECTED), pool.map(help_text, sorted(EXPECTED)), strict=True))
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert "--quick" in result.stdout and "--json" in result.stdout, name


def test_table_data_keeps_the_text_and_drops_the_markup() -> None:
    table = Table("system", "rate", title="[bold]Registering[/bold]")
    table.add_row("ledger", "[green]1,200/s[/green]")
    table.add_row("MLflow | SQL", "200/s")

    assert table_data(table) == {
        "title": "Registering",
        "caption": "",
        "columns": ["system", "rate"],
        "rows": [["ledger", "1,200/s"], ["MLflow | SQL", "200/s"]],
    }


def test_report_is_saved_and_rendered_as_markdown(tmp_path: Path) -> None:
    report = Report("Registering model versions")
    table = Table("system", "versions/s", title="One client")
    table.add_row("ledger", "1,200")
    table.add_row("MLflow | SQLAlchemy", "200")
    report.show(table)
    report.fact("N = 1,000 per range")
    report.limit("one commit per version")
    saved = tmp_path / "register.json"
    report.save(saved, options={"versions": 1000})

    loaded = json.loads(saved.read_text())
    section = "\n".join(
        run_all.section(loaded | {"script": "benchmarks/register.py", "seconds": 12.3, "status": 0})
    )
    assert "## Registering model versions" in section
    assert "`benchmarks/register.py`: measured 20" in section  # the date, then the commit
    assert "at `?`, 12 s" in section
    assert "- N = 1,000 per range" in section
    assert "| system | versions/s |\n| --- | --- |\n| ledger | 1,200 |" in section
    assert "| MLflow \\| SQLAlchemy | 200 |" in section  # a pipe in a cell is escaped
    assert "What limits these figures:\n\n- one commit per version" in section
    assert loaded["data"] == {"options": {"versions": 1000}}
    assert loaded["machine"]["cpu_count"] >= 1


def test_a_failed_benchmark_is_reported_as_failed() -> None:
    failed = {"title": "api", "script": "benchmarks/api.py", "seconds": 3.0, "status": 1}
    section = "\n".join(run_all.section(failed | {"tables": [], "facts": [], "limits": []}))
    assert "**failed** (exit status 1)" in section


def test_a_partial_run_keeps_the_other_sections(tmp_path: Path) -> None:
    earlier = tmp_path / "RESULTS.json"
    old = [
        {"script": f"benchmarks/{name}.py", "title": f"old {name}"}
        for name in ("api", "bus", "register")
    ]
    earlier.write_text(json.dumps({"environment": {"commit": "abc123"}, "reports": old}))
    fresh = [{"script": "benchmarks/bus.py", "title": "new bus", "commit": "def456"}]

    reports = run_all.merged(earlier, fresh)

    assert [(r["title"], r["commit"]) for r in reports] == [
        ("old api", "abc123"),
        ("new bus", "def456"),
        ("old register", "abc123"),
    ]
    assert run_all.merged(tmp_path / "missing.json", fresh) == fresh


def test_run_all_refuses_an_unknown_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--only", "register,nosuch"])
    assert exit_info.value.code == 2
    assert "unknown benchmark(s): nosuch" in capsys.readouterr().err


def import_benchmark(name: str) -> Any:
    """A benchmark script as a module, leaving sys.path as it was (the scripts reorder it)."""
    saved = list(sys.path)
    try:
        return importlib.import_module(name)
    finally:
        sys.path[:] = saved


def test_api_benchmark_finds_systems_that_answer_differently() -> None:
    api = import_benchmark("api")
    query = ("team-1", "dev")
    first = [("model-00002", 7), ("model-00001", 3)]
    ledger = {query: (first, [*first, ("model-00000", 9)])}

    assert api.differences(ledger, {query: (first, [*first, ("model-00000", 9)])}) == []
    missing = api.differences(ledger, {query: (first, first)})
    assert len(missing) == 1 and "3 versions vs 2" in missing[0]
    assert "model-00000" in missing[0]
    reordered = api.differences(ledger, {query: (first[::-1], ledger[query][1])})
    assert len(reordered) == 1 and "first pages differ" in reordered[0]


def test_api_benchmark_sends_each_system_the_same_tag_search() -> None:
    api = import_benchmark("api")
    queries = api.tag_queries(3)
    ledger, mlflow = (
        api.request_paths("ledger", "tag-search", 2_000, 3),
        api.request_paths("MLflow", "tag-search", 2_000, 3),
    )
    for (team, stage), ours, theirs in zip(queries, ledger, mlflow, strict=True):
        assert f"team%3D{team}" in ours and f"stage%3D{stage}" in ours and "limit=50" in ours
        assert f"%27{team}%27" in theirs and f"%27{stage}%27" in theirs
        assert "max_results=50" in theirs


def test_scoring_benchmark_reports_the_fastest_and_the_median_run() -> None:
    scoring = import_benchmark("scoring")
    assert scoring.fastest_median(1_000, [2.0, 1.0, 4.0]) == "1,000 / 500"
    # each set beside the ceiling's own fastest (0.5 s) and median (0.8 s)
    assert scoring.fastest_median(1_000, [2.0, 1.0, 4.0], [0.5, 0.8, 3.0]) == (
        "1,000 / 500 (50 % / 40 %)"
    )


def test_results_say_which_run_wrote_each_section() -> None:
    one = {"run": "benchmarks/run_all.py", "commit": "abc123", "quick": False}
    reports = [
        {"script": "benchmarks/api.py", "commit": "abc123"},
        one | {"script": "benchmarks/register.py"},
        one | {"script": "benchmarks/trust.py"},
    ]

    lines = run_all.provenance(reports)

    assert lines[0].startswith("The sections below come from 2 runs")
    assert "- an earlier run at `abc123` (full sizes): api" in lines
    assert "- `benchmarks/run_all.py` at `abc123` (full sizes): register, trust" in lines
    assert run_all.provenance(reports[1:]) == ["Every section below comes from this one run."]


def test_a_section_measured_by_an_older_script_says_so() -> None:
    report = {"title": "api", "script": "benchmarks/api.py", "seconds": 3.0, "status": 0}
    report |= {"tables": [], "facts": [], "limits": [], "commit": "abc123-dirty"}
    current = run_all.script_digest("benchmarks/api.py")

    fresh = "\n".join(run_all.section(report | {"script_sha256": current}))
    older = "\n".join(run_all.section(report | {"script_sha256": "0" * 64}))

    assert "has changed since" not in fresh
    assert "**The script has changed since this run** (`git diff abc123-dirty" in older


# -- the write modes at tiny sizes: real servers and clients, a few operations each ---------


def test_http_writes_register_and_tag_through_ledger_serve(store: StoreFactory) -> None:
    writes, common = import_benchmark("_http_writes"), import_benchmark("_common")
    settings = store.settings()
    with Ledger(settings) as ledger:
        token = ledger.tokens.create("bench-writer", "contributor").secret
    models = writes.client_models("bench-writes", 2)
    with common.ledger_server(settings) as url:
        registered = writes.run_clients(url, token, "ledger", "registration", models, 4)
        tagged = writes.run_clients(
            url, token, "ledger", "tag PUT", models, 6, versions=registered.fewest
        )
        health = writes.run_clients(url, token, "ledger", "GET /health", models, 2)
        version = httpx.get(
            f"{url}/models/bench-writes-1/versions/2",
            headers={"Authorization": f"Bearer {token}"},
        ).json()

    assert (len(registered.latencies_ms), registered.fewest) == (4, 2)
    assert len(tagged.latencies_ms) == 6 and len(health.latencies_ms) == 2
    assert min(registered.rate, tagged.rate, health.rate) > 0
    assert version["tags"]["checked"] == "run-2"
    assert [f["size"] for f in version["files"]] == [len(writes.SMALL_FILE)]


def test_api_benchmark_sets_writes_beside_health_and_mlflow() -> None:
    api, writes = import_benchmark("api"), import_benchmark("_http_writes")

    def row(system: str, operation: str, clients: int, rate: float, p50: float) -> Any:
        load = writes.Load([p50] * 10, rate, 10)
        return api.WriteRow("PostgreSQL", system, operation, clients, load)

    rows = [
        row("ledger", "registration", 1, 400.0, 2.5),
        row("ledger", "GET /health", 8, 1_000.0, 1.0),
        row("ledger", "registration", 8, 700.0, 9.0),
        row("ledger", "tag PUT", 8, 500.0, 9.0),
        row("MLflow", "registration", 8, 200.0, 30.0),
        row("MLflow", "tag PUT", 8, 250.0, 30.0),
    ]

    found = table_data(api.write_targets_table(rows, 8))["rows"]

    assert [r[1:] for r in found] == [
        ["ledger registration p50, 1 client", "2.50 ms", "ok (<= 3 ms)"],
        ["ledger registration / ledger GET /health, 8 clients", "0.70x", "ok (>= 0.6x)"],
        ["ledger / MLflow registration, 8 clients", "3.50x", "ok (>= 3x)"],
        ["ledger tag PUT / ledger GET /health, 8 clients", "0.50x", "MISSED (>= 0.6x)"],
        ["ledger / MLflow tag PUT, 8 clients", "2.00x", "MISSED (>= 3x)"],
    ]


def test_api_benchmark_signs_in_and_times_the_ui_pages_by_server_timing(
    store: StoreFactory,
) -> None:
    """The UI part of api.py at a tiny size: sign in through the form, time a served page
    by its Server-Timing, and report a page that is not served as a missed row."""
    pages, common = import_benchmark("_ui_pages"), import_benchmark("_common")
    settings = store.settings()
    with Ledger(settings) as ledger:
        token = ledger.tokens.create("bench", "reader").secret
    with common.ledger_server(settings) as url:
        cookie = pages.signed_in_cookie(url, token)
        served = pages.measure_pages(url, cookie, ["/ui/models"] * 8, 5.0)
        missing = pages.measure_pages(url, cookie, ["/ui/no-such-page"] * 3, 5.0)

    assert served["status"] == 200 and len(served["server_ms"]) == len(served["client_ms"]) == 8
    assert all(0 < server < 60_000 for server in served["server_ms"])
    assert (missing["status"], missing["server_ms"]) == (404, [])
    table = pages.pages_table()
    pages.add_page_row(table, "SQLite", "8", "models list", served)
    pages.add_page_row(table, "SQLite", "8", "model", missing)
    rows = table_data(table)["rows"]
    assert rows[0][3] == "8" and rows[0][-1] == "ok (<= 100 ms)"
    assert rows[1][3:5] == ["HTTP 404", ""] and rows[1][-1] == "MISSED (<= 100 ms)"


def test_register_benchmark_runs_clients_in_process_over_http_and_raw(tmp_path: Path) -> None:
    register = import_benchmark("register")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"w" * 1024)
    plan = register.Plan(4, (2,), True, "", model_dir)

    rows = [
        register.many_clients(system, "SQLite", plan, clients=2)[0]
        for system in ("ledger", register.THREADED, register.SERVED, "raw sqlite3")
    ]

    assert [(r.count, r.clients, len(r.latencies_ms)) for r in rows] == [(4, 2, 4)] * 4
    assert all(r.rate and r.rate > 0 for r in rows)
    table = table_data(register.results_table("t", rows, {"SQLite": "WAL"}, concurrent=True))
    assert [r[:4] for r in table["rows"]] == [
        ["ledger", "SQLite", "2 processes", "2 clients x 2 versions"],
        ["ledger, one process", "SQLite", "2 threads", "2 clients x 2 versions"],
        ["ledger serve", "SQLite", "2 over HTTP", "2 clients x 2 versions"],
        ["raw sqlite3", "SQLite", "2 processes", "2 clients x 2 INSERT+COMMIT"],
    ]
    raw = rows[3].rate
    assert register.served_over_raw(rows) == [
        f"ledger, one process on SQLite, 2 clients {rows[1].rate / raw:.2f}x",
        f"ledger serve on SQLite, 2 clients {rows[2].rate / raw:.2f}x",
    ]


def test_register_benchmark_sets_the_table_lock_beside_raw_psycopg() -> None:
    register = import_benchmark("register")
    rows = [
        register.Result(system, "PostgreSQL", "", 10, seconds, [], clients=clients)
        for system, clients, seconds in [
            ("raw psycopg", 1, 1.0),
            ("raw psycopg, table lock", 1, 2.0),
            ("raw psycopg", 8, 1.0),
            ("raw psycopg, table lock", 8, 4.0),
        ]
    ]
    assert register.lock_cost(rows) == ["1 client 0.50x", "8 clients 0.25x"]


def test_mlflow_client_benchmark_sets_both_servers_side_by_side(store: StoreFactory) -> None:
    """Both servers filled alike, every call made through MLflow's client, the answers
    compared: the benchmark at a tiny size on the test's kind of store."""
    benchmark = import_benchmark("mlflow_client")
    args = argparse.Namespace(
        pg_url=PG_URL, versions=300, creates=3, calls=4, searches=3, seconds=5.0
    )
    table = Table(*[str(n) for n in range(10)])
    report = Report("mlflow_client")

    mismatches, figures = benchmark.measure_store(store.kind, args, table, report)

    assert mismatches == []
    rows = table_data(table)["rows"]
    assert [row[:2] for row in rows] == [[rows[0][0], call] for call in benchmark.CALLS]
    assert all(float(row[8].rstrip("x")) > 0 for row in rows)
    assert figures["ledger create_model_version"]["calls"] == 3
    assert figures["MLflow search_model_versions"]["calls"] == 3
    assert "give the same" in report.facts[0]
