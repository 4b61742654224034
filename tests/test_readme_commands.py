"""The README's two commands work on a fresh clone (they build their own virtualenv)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block, "the README opens with a bash block holding the two commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.slow
def test_demo_and_test_commands_work_from_a_fresh_clone(tmp_path: Path) -> None:
    demo_command, test_command = _readme_commands()
    assert (demo_command, test_command) == ("./scripts/demo.sh", "./scripts/test.sh")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "VIRTUAL_ENV"))}
    env["LEDGER_TEST_PG_URL"] = os.environ.get(
        "LEDGER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=clone, env=env, capture_output=True, text=True, timeout=900
        )

    demo = run(demo_command, "--home", str(tmp_path / "demo"))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "refused: cannot delete model version iris-classifier:2" in demo.stdout
    assert re.search(r"OK: \d+ events", demo.stdout)

    # The test command, narrowed to one quick test: the full suite is what runs this test.
    tests = run(
        test_command,
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_model_versions.py",
        "-k",
        "three_times",
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(r"2 passed", tests.stdout), tests.stdout
