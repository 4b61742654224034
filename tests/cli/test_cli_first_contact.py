"""What a first user meets: piped output, help pages, restore, download, the demo's hint."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from typer.main import get_command

from ledger.cli import app
from ledger.ledger import Ledger
from tests.conftest import Cli, StoreFactory, assert_user_error
from tests.paths import REPO

LEDGER_BIN = shutil.which("ledger", path=os.path.dirname(sys.executable)) or "ledger"
LONG_NAME = "iris-" + "x" * 90  # wider than any terminal default


def _piped(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`ledger ARGS` through the installed entry point, stdout and stderr piped."""
    return subprocess.run([LEDGER_BIN, *args], env=env, capture_output=True, text=True, timeout=120)


def test_piped_output_keeps_whole_values_and_no_blank_lines(
    store: StoreFactory, model_dir: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | store.env()
    assert _piped(env, "model", "register", LONG_NAME, str(model_dir)).returncode == 0
    listed = _piped(env, "model", "list")
    assert LONG_NAME in listed.stdout, listed.stdout
    verified = _piped(env, "verify")
    assert verified.returncode == 0 and verified.stderr == ""  # no progress bar left behind
    refused = _piped(env, "model", "show", "nothing:1")
    assert refused.stderr == "error: model 'nothing' does not exist\n"


def test_restoring_a_version_that_is_not_archived_writes_nothing(cli: Cli, model_dir: Path) -> None:
    cli("model", "register", "iris", str(model_dir))
    events = len(cli("history", "model", "iris", "--json").json())
    restored = cli("model", "restore", "iris:1")
    assert restored.code == 0 and "iris:1 is not archived: nothing to restore" in restored.out
    assert len(cli("history", "model", "iris", "--json").json()) == events
    cli("model", "archive", "iris:1")
    assert "Restored iris:1" in cli("model", "restore", "iris:1").out
    assert cli("model", "show", "iris:1", "--json").json()["status"] == "ready"


def test_download_refuses_to_overwrite_different_files_without_force(
    cli: Cli, model_dir: Path, tmp_path: Path
) -> None:
    cli("model", "register", "iris", str(model_dir))
    out = tmp_path / "out"
    assert "Wrote 3 files" in cli("model", "download", "iris:1", str(out)).out
    assert cli("model", "download", "iris:1", str(out)).code == 0  # the same files: fine
    (out / "config.json").write_text("edited")
    assert_user_error(cli("model", "download", "iris:1", str(out)), "config.json): pass --force")
    assert (out / "config.json").read_text() == "edited"
    assert cli("model", "download", "iris:1", str(out), "--force").code == 0
    assert (out / "config.json").read_text() == '{"layers": 3}'


def test_one_file_is_not_files(cli: Cli, tmp_path: Path) -> None:
    single = tmp_path / "model.onnx"
    single.write_bytes(b"onnx")
    assert "(1 file, 4 bytes)" in cli("model", "register", "one", str(single)).out
    assert "Wrote 1 file to" in cli("model", "download", "one", str(tmp_path / "o")).out


def test_scoring_a_model_that_is_not_onnx_is_refused_before_ray_starts(
    cli: Cli, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from executors.serving import serve_endpoints

    def no_ray(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ray Serve (and Ray) started before the refusal")

    monkeypatch.setattr(serve_endpoints.ServeEndpoints, "__init__", no_ray)
    cli("model", "register", "iris", str(model_dir), "--flavor", "sklearn")
    cli("endpoint", "create", "shop")
    cli("endpoint", "deploy", "shop", "blue", "iris:1")
    scored = cli("endpoint", "score", "shop", "--input", "[[1, 2]]")
    assert_user_error(scored, "deployment 'blue' cannot serve: it serves iris:1, a sklearn model")
    assert_user_error(
        cli("endpoint", "score", "shop", "--input", "[[1]]", "--deployment", "red"),
        "has no deployment 'red'",
    )


def test_environment_files_take_numbers(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "env.yaml"
    spec.write_text("name: np\npython: 3.12\nvariables: {OMP_NUM_THREADS: 1}\n")
    assert cli("env", "register", str(spec)).code == 0
    content = cli("env", "show", "np", "--json").json()["versions"][0]["content"]
    assert content["python"] == "3.12" and content["variables"] == {"OMP_NUM_THREADS": "1"}
    example = REPO / "examples" / "environment.yaml"
    assert "Registered environment sklearn-cpu:1" in cli("env", "register", str(example)).out


def _commands(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
    return found


def test_help_pages_name_arguments_plainly(cli: Cli) -> None:
    for path in _commands(get_command(app)):
        page = cli(*path, "--help").out
        assert "<bool>" not in page and not re.search(r"\{[a-z_]+\}", page), (path, page)
        assert "[default: -1]" not in page, (path, page)


@pytest.mark.slow
def test_the_demos_closing_hint_runs_as_printed(tmp_path: Path) -> None:
    """Pasted into a shell where `ledger` is not on the PATH, the hint still works."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["PATH"] = "/usr/bin:/bin"
    demo = subprocess.run(
        [LEDGER_BIN, "demo", "--home", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    hint = demo.stdout.rstrip().splitlines()[-1]
    assert hint.startswith("LEDGER_HOME="), demo.stdout
    shown = subprocess.run(
        ["bash", "-c", hint], env=env, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert "champion" in shown.stdout  # the versions of the demo's model


def test_a_batch_jobs_history_is_found_under_job(
    cli: Cli, store: StoreFactory, model_dir: Path, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n3,4\n")
    cli("model", "register", "iris", str(model_dir))
    cli("endpoint", "create", "nightly", "--kind", "batch")
    cli("endpoint", "deploy", "nightly", "main", "iris:1")
    ledger = Ledger(store.settings())
    try:
        job = str(ledger.batch_jobs.invoke("nightly", rows).id)
        ledger.batch_jobs.start(job, "w1", may_take=lambda _: True)
        ledger.batch_jobs.complete(job, "w1", 2, 1.0, 0.5, "0" * 64)
    finally:
        ledger.close()
    assert "batch" in cli("history", "--help").out
    history = cli("history", "job", job, "--json").json()
    assert [e["event_type"] for e in history] == [
        "BatchJob.Requested",
        "BatchJob.Started",
        "BatchJob.Completed",
    ]
    audited = cli("audit", "--type", "BatchJob.Completed", "--json").json()
    assert [e["event_type"] for e in audited["items"]] == ["BatchJob.Completed"]
    assert cli("audit", "--type", "Completed", "--json").json()["items"] == audited["items"]
