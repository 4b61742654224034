"""The README's two commands work on a fresh clone (they build their own virtualenv)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO

REPO = REPO


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
    assert not (clone / ".venv" / "bin" / "pytest").exists()  # the demo installs no test tools

    # The test command, narrowed to one quick test: the full suite is what runs this test.
    tests = run(
        test_command,
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/store/test_model_versions.py",
        "-k",
        "three_times",
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(r"2 passed", tests.stdout), tests.stdout


# Commands of the CLI walkthrough that serve or follow until interrupted: the walkthrough
# test leaves them out (each has tests of its own).
RUNS_UNTIL_STOPPED = ("ledger projections run", "ledger serve")


def _cli_walkthrough() -> str:
    """The README's "Using the CLI" block, without the commands that run until stopped."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Using the CLI", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the CLI section holds a bash block"
    lines = block.group(1).splitlines()
    return "\n".join(line for line in lines if not line.startswith(RUNS_UNTIL_STOPPED))


@pytest.mark.slow
def test_the_cli_walkthrough_runs_in_order_on_a_fresh_store(tmp_path: Path) -> None:
    """Pasted in order on a fresh SQLite store, every command of the walkthrough works."""
    for folder in ("examples", "scripts"):
        (tmp_path / folder).symlink_to(REPO / folder)
    script = tmp_path / "walkthrough.sh"
    script.write_text(
        "set -euo pipefail\n"
        "trap 'echo \"FAILED: $BASH_COMMAND\" >&2' ERR\n" + _cli_walkthrough() + "\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    venv_bin = str(Path(sys.executable).parent)
    env |= {"LEDGER_HOME": str(tmp_path / ".ledger"), "PATH": f"{venv_bin}:{env['PATH']}"}
    done = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "OK:" in done.stdout
    assert (tmp_path / "out" / "model.json").read_bytes() == (
        tmp_path / "model-dir" / "model.json"
    ).read_bytes()
