"""Summarise a mutmut run of scripts/mutation.sh as Markdown.

mutation_report.py WORKDIR GROUP "PATTERNS"   # one group: kill rate per module, survivors
mutation_report.py --summary REPORT_DIR       # the table over all groups' reports
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 36, 24, -24, 152, 255, 37}  # a failing test, a timeout or a type error
SURVIVED = {0}
ROW = re.compile(
    r"^\| `(?P<module>[^`]+)` \| (?P<killed>\d+) \| (?P<total>\d+) \| (?P<equivalent>\d+) \|"
)
SQL = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|VALUES|ON CONFLICT|SAVEPOINT|PRAGMA|SET LOCAL"
    r"|PRIMARY KEY|ORDER BY|NOT NULL)\b",
    re.I,
)


def show(workdir: Path, name: str) -> list[str]:
    """The lines a mutant removes and adds."""
    diff = subprocess.run(
        [str(Path(sys.executable).parent / "mutmut"), "show", name],
        cwd=workdir,
        capture_output=True,
        text=True,
    ).stdout
    return [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def sql_case_only(changed: list[str]) -> bool:
    """A mutant that only changes the case of SQL: keywords and unquoted identifiers are
    case-insensitive, so no test can tell (an equivalent mutant)."""
    removed = [line[1:] for line in changed if line.startswith("-")]
    added = [line[1:] for line in changed if line.startswith("+")]
    return (
        len(removed) == len(added) == 1
        and removed[0].lower() == added[0].lower()
        and bool(SQL.search(removed[0]))
    )


def group_report(workdir: Path, group: str, patterns: list[str]) -> str:
    mutants = workdir / "mutants"
    rows: list[str] = []
    survivors: list[tuple[str, list[str]]] = []
    equivalent: list[tuple[str, list[str]]] = []
    for meta in sorted(mutants.glob("src/**/*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        keys = [k for k in codes if not patterns or any(fnmatch.fnmatch(k, p) for p in patterns)]
        if not keys:
            continue
        counts = Counter(
            "killed" if codes[k] in KILLED else "survived" if codes[k] in SURVIVED else "other"
            for k in keys
        )
        same = 0
        for name in (k for k in keys if codes[k] in SURVIVED):
            changed = show(workdir, name)
            if sql_case_only(changed):
                equivalent.append((name, changed))
                same += 1
            else:
                survivors.append((name, changed))
        checked = counts["killed"] + counts["survived"]
        rate = 100.0 * counts["killed"] / (checked - same) if checked > same else 0.0
        module = str(meta.relative_to(mutants)).removesuffix(".meta")
        rows.append(
            f"| `{module}` | {counts['killed']} | {checked} | {same} | {rate:.1f} % "
            f"| {counts['other']} |"
        )
    lines = [
        f"## {group}",
        "",
        "| module | killed | checked | equivalent (SQL case) | kill rate | not run / no tests |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "Kill rate: killed / (checked - equivalent). Timeouts count as killed.",
        "",
    ]
    for title, listed in (("Survivors", survivors), ("Equivalent: SQL case only", equivalent)):
        if listed:
            lines += [f"### {title} ({len(listed)})", ""]
            for name, changed in listed:
                lines += [f"- `{name}`", "  ```diff", *(f"  {c}" for c in changed), "  ```"]
    return "\n".join(lines) + "\n"


def summary(report_dir: Path) -> str:
    lines = [
        "# Mutation testing",
        "",
        "| module | killed | checked | equivalent | kill rate |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    killed = total = same = 0
    for report in sorted(report_dir.glob("*.md")):
        if report.name == "README.md":
            continue
        for line in report.read_text().splitlines():
            if match := ROW.match(line):
                k, t, e = int(match["killed"]), int(match["total"]), int(match["equivalent"])
                killed, total, same = killed + k, total + t, same + e
                rate = 100.0 * k / (t - e) if t > e else 0.0
                lines.append(f"| `{match['module']}` | {k} | {t} | {e} | {rate:.1f} % |")
    overall = 100.0 * killed / (total - same) if total > same else 0.0
    lines += [f"| **all** | {killed} | {total} | {same} | {overall:.1f} % |", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        print(summary(Path(sys.argv[2])), end="")
    else:
        print(group_report(Path(sys.argv[1]), sys.argv[2], sys.argv[3].split()), end="")
