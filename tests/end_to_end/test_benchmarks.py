"""The benchmark suite's plumbing: every script starts, and run_all writes its report.

The benchmarks themselves take minutes and print figures, not verdicts; here each
script only has to parse its options (so an import that broke shows up in CI), and
the Markdown that run_all writes is checked on real Rich tables.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from rich.table import Table

from tests.paths import REPO

BENCHMARKS = REPO / "benchmarks"
# Appended, not prepended: benchmarks/projections.py must not shadow the package.
sys.path.append(str(BENCHMARKS))

import run_all  # noqa: E402
from _common import Report, table_data  # noqa: E402

EXPECTED = {"api", "bus", "executors", "projections", "register", "scoring", "trust"}


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
        results = dict(zip(EXPECTED, pool.map(help_text, sorted(EXPECTED)), strict=True))
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
