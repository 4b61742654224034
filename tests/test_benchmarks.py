"""The benchmark suite's plumbing: every script starts, and run_all writes its report.

The benchmarks themselves take minutes and print figures, not verdicts; here each
script only has to parse its options (so an import that broke shows up in CI), and
the Markdown that run_all writes is checked on real Rich tables.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich.table import Table

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# Appended, not prepended: benchmarks/projections.py must not shadow the package.
sys.path.append(str(BENCHMARKS))

import run_all  # noqa: E402
from _common import Report, table_data  # noqa: E402

EXPECTED = {"api", "bus", "executors", "projections", "register", "scoring"}


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
