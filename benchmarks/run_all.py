"""Run every benchmark and write benchmarks/RESULTS.md and benchmarks/RESULTS.json.

Each ``benchmarks/*.py`` (but this one and the ``_`` helpers) runs in a process of its
own, one after the other so that they never share the machine, with ``--json`` and,
with ``--quick``, its own ``--quick`` sizes. Its tables stream to the terminal as it
goes; at the end the tables, what limits each figure, the machine and the date are
written as Markdown and as JSON. A benchmark that fails is reported as failed (with
its exit status) and the others still run; the command then exits 1. With ``--only``,
the sections of the benchmarks not run are kept from the RESULTS.json already there,
each with the date and commit it was measured at; the top of RESULTS.md lists the runs
the sections come from, and a section whose script has changed since it was measured
says so.

    .venv/bin/python benchmarks/run_all.py                  # full sizes (about 40 minutes)
    .venv/bin/python benchmarks/run_all.py --quick          # small sizes (about 8 minutes)
    .venv/bin/python benchmarks/run_all.py --only api     # rerun one; keep the other sections
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    DEFAULT_NATS_URL,
    DEFAULT_PG_URL,
    machine_facts,
    package_version,
    pg_server_facts,
)

HERE = Path(__file__).resolve().parent
PACKAGES = (
    "lifecycle-ledger", "eventsourcing", "psycopg", "nats-py", "ray", "onnxruntime",
    "scikit-learn", "fastapi", "uvicorn", "mlflow", "datasketches", "scipy",
)  # fmt: skip


def benchmarks() -> list[str]:
    """The benchmark scripts' names, in the order they run."""
    return sorted(
        path.stem
        for path in HERE.glob("*.py")
        if not path.name.startswith("_") and path.name != Path(__file__).name
    )


def run_one(name: str, quick: bool, scratch: Path, commit: str) -> dict[str, Any]:
    """One benchmark in a process of its own; its report, or why there is none."""
    out = scratch / f"{name}.json"
    command = [sys.executable, str(HERE / f"{name}.py"), "--json", str(out)]
    if quick:
        command.append("--quick")
    print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    status = subprocess.run(command, cwd=HERE.parent, check=False).returncode
    seconds = time.perf_counter() - started
    report: dict[str, Any] = {"title": name, "tables": [], "facts": [], "limits": []}
    if out.exists():
        report = json.loads(out.read_text(encoding="utf-8"))
    report |= {
        "script": f"benchmarks/{name}.py",
        "seconds": round(seconds, 1),
        "status": status,
        "quick": quick,
        "commit": commit,
        "script_sha256": script_digest(f"benchmarks/{name}.py"),
    }
    return report


def script_digest(script: str) -> str:
    return hashlib.sha256((HERE.parent / script).read_bytes()).hexdigest()


def script_changed(report: dict[str, Any]) -> bool:
    """Whether the benchmark's script differs now from the one that measured ``report``.

    By the digest recorded with the report, or else (an older report) by git against the
    commit it was measured at; False when neither can tell.
    """
    script = report.get("script", "")
    if not (HERE.parent / script).is_file():
        return False
    if "script_sha256" in report:
        return bool(report["script_sha256"] != script_digest(script))
    commit = str(report.get("commit", ""))
    if not commit or commit == "unknown" or commit.endswith("-dirty"):
        return False
    result = subprocess.run(
        ["git", "diff", "--quiet", commit, "--", script],
        cwd=HERE.parent,
        capture_output=True,
        check=False,
    )
    return result.returncode == 1


def merged(earlier: Path, fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reports of ``earlier`` RESULTS.json with the ``fresh`` ones in their place."""
    if not earlier.exists():
        return fresh
    document = json.loads(earlier.read_text(encoding="utf-8"))
    by_script = {
        report["script"]: {"commit": document["environment"]["commit"]} | report
        for report in document["reports"]
    }
    by_script |= {report["script"]: report for report in fresh}
    order = [f"benchmarks/{name}.py" for name in benchmarks()]
    return [by_script[script] for script in order if script in by_script]


def environment(pg_url: str, nats_url: str) -> dict[str, Any]:
    """The machine, the servers and the packages, as measured now."""
    facts = machine_facts()
    try:
        facts["postgres"] = pg_server_facts(pg_url)
    except Exception as exc:
        facts["postgres"] = {"error": " ".join(str(exc).split())}
    facts["nats"] = nats_server_version(nats_url)
    facts["packages"] = [package_version(name) for name in PACKAGES]
    facts["commit"] = git_commit()
    return facts


def nats_server_version(url: str) -> str:
    async def ask() -> str:
        import nats

        client = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=0)
        try:
            version = client.connected_server_version
            return f"{version.major}.{version.minor}.{version.patch} (JetStream)"
        finally:
            await client.close()

    try:
        return asyncio.run(ask())
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


def git_commit() -> str:
    result = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


# -- Markdown ------------------------------------------------------------------------------


def markdown(env: dict[str, Any], reports: list[dict[str, Any]], command: str) -> str:
    pg = env["postgres"]
    postgres = (
        f"PostgreSQL {pg['server_version']} (fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']})"
        if "server_version" in pg
        else f"PostgreSQL unreachable ({pg.get('error')})"
    )
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {env['date']} at commit `{env['commit']}`. Each figure "
        "stands beside its comparison, measured in the same run of its benchmark (each "
        "section gives when); the benchmarks ran one after the other, and within each the "
        "servers, the load and the databases share the machine's cores. What the figures "
        "mean and how each is measured: the benchmark's own docstring and the README's "
        "Benchmarks section.",
        "",
        *provenance(reports),
        "",
        "## The machine",
        "",
        f"- {env['cpu_count']} CPUs ({env['cpu_model']}), {env['memory_gib']} GiB of memory",
        f"- Python {env['python']} on {env['platform']}",
        f"- {postgres}; NATS {env['nats']}",
        f"- {', '.join(env['packages'])}",
        "",
    ]
    for report in reports:
        lines += section(report)
    return "\n".join(lines).rstrip() + "\n"


def provenance(reports: list[dict[str, Any]]) -> list[str]:
    """Which run of this script wrote which sections (``--only`` keeps earlier ones)."""
    runs: dict[tuple[str, str, bool], list[str]] = {}
    for report in reports:
        key = (report.get("run", ""), report.get("commit", "?"), bool(report.get("quick")))
        runs.setdefault(key, []).append(Path(report["script"]).stem)
    if len(runs) == 1:
        return ["Every section below comes from this one run."]
    lines = [f"The sections below come from {len(runs)} runs (each section gives its date):", ""]
    for (run, commit, quick), names in runs.items():
        how = f"`{run}`" if run else "an earlier run"
        size = "`--quick` sizes" if quick else "full sizes"
        lines.append(f"- {how} at `{commit}` ({size}): {', '.join(names)}")
    return lines


def section(report: dict[str, Any]) -> list[str]:
    status = "" if report["status"] == 0 else f" — **failed** (exit status {report['status']})"
    when = report.get("machine", {}).get("date")
    measured = f"measured {when} at `{report.get('commit', '?')}`, " if when else ""
    size = " (`--quick` sizes)" if report.get("quick") else ""
    load = report.get("machine", {}).get("load_average")
    busy = f"; load average at its end {load[0]:.1f} / {load[1]:.1f} (1 / 5 min)" if load else ""
    lines = [
        f"## {report['title']}",
        "",
        f"`{report['script']}`{size}: {measured}{report['seconds']:.0f} s{status}{busy}",
        "",
    ]
    if script_changed(report):
        lines += [
            f"**The script has changed since this run** (`git diff {report.get('commit', '?')} "
            f"-- {report['script']}`): these figures are those of its earlier version.",
            "",
        ]
    lines += [f"- {fact}" for fact in report["facts"]]
    for table in report["tables"]:
        lines += ["", f"**{table['title']}**", "", *table_markdown(table)]
        if table["caption"]:
            lines += ["", f"_{table['caption']}_"]
    if report["limits"]:
        lines += ["", "What limits these figures:", ""]
        lines += [f"- {limit}" for limit in report["limits"]]
    return [*lines, ""]


def table_markdown(table: dict[str, Any]) -> list[str]:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    columns = table["columns"]
    return [row(columns), row(["---"] * len(columns)), *(row(r) for r in table["rows"])]


# -- entry point ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each benchmark's small sizes")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md/.json go")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, metavar="URL")
    parser.add_argument("--nats-url", default=DEFAULT_NATS_URL, metavar="URL")
    args = parser.parse_args(argv)
    names = benchmarks()
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
        names = [name for name in names if name in wanted]

    env = environment(args.pg_url, args.nats_url)
    command = " ".join(["benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])])
    with tempfile.TemporaryDirectory(prefix="bench-results-") as scratch:
        reports = [run_one(name, args.quick, Path(scratch), env["commit"]) for name in names]
    for report in reports:
        report["run"] = command
    args.out.mkdir(parents=True, exist_ok=True)
    results_md, results_json = args.out / "RESULTS.md", args.out / "RESULTS.json"
    if args.only:  # the other sections stay as an earlier run wrote them
        reports = merged(results_json, reports)
    results_md.write_text(markdown(env, reports, command), encoding="utf-8")
    document = {"command": command, "quick": args.quick, "environment": env, "reports": reports}
    results_json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    failed = [report["script"] for report in reports if report["status"] != 0]
    print(f"\nWrote {results_md} and {results_json}" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
