"""The `ledger` command line: commands, output, and exit codes (0 ok, 1 refused, 2 usage)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli, StoreFactory, assert_user_error


def test_model_commands(cli: Cli, model_dir: Path, tmp_path: Path) -> None:
    first = cli("model", "register", "iris", str(model_dir), "--tag", "team=ml", "-m", "auc=0.9")
    assert first.code == 0 and "Registered iris:1 (3 files" in first.out
    registered = cli("model", "register", "iris", str(model_dir), "-r", "retrain", "--json")
    assert registered.json() == cli("model", "show", "iris:2", "--json").json()

    shown = cli("model", "show", "iris:1", "--json").json()
    assert shown["tags"] == {"team": "ml"} and shown["metrics"] == {"auc": 0.9}
    assert [f["path"] for f in shown["files"]] == ["config.json", "sub/vocab.txt", "weights.bin"]

    assert cli("model", "tag", "iris:2", "stage=prod", "owner=ana").code == 0
    assert cli("model", "untag", "iris:2", "owner").code == 0
    assert cli("model", "alias", "iris", "champion", "2").code == 0
    assert cli("model", "show", "iris@champion", "--json").json()["tags"] == {"stage": "prod"}

    listed = cli("model", "list", "--json").json()
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in listed] == [
        ("iris", 2, {"champion": 2})
    ]
    versions = cli("model", "versions", "iris", "--json").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert "champion" in cli("model", "versions", "iris").out

    out = tmp_path / "download"
    assert cli("model", "download", "iris:1", str(out)).code == 0
    assert (out / "sub" / "vocab.txt").read_bytes() == (
        model_dir / "sub" / "vocab.txt"
    ).read_bytes()

    assert cli("model", "delete", "iris:1", "--reason", "obsolete").code == 0
    assert [v["version"] for v in cli("model", "versions", "iris", "--json").json()] == [2]
    history = cli("history", "model", "iris", "--json").json()
    assert history[-1]["event_type"] == "ModelVersion.Deleted"
    assert history[-1]["reason"] == "obsolete" and history[-1]["name"] == "iris:1"
    assert history[-1]["actor"] == "tester"


def test_environment_and_data_commands(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "env.yaml"
    spec.write_text("name: torch-gpu\npython: '3.11'\npip: [torch==2.4.0, onnx]\n")
    assert "Registered environment torch-gpu:1" in cli("env", "register", str(spec)).out
    again = cli("env", "register", str(spec))
    assert again.code == 0 and "Unchanged: environment torch-gpu:1" in again.out
    assert cli("env", "show", "torch-gpu", "--json").json()["versions"][0]["content"]["pip"] == [
        "torch==2.4.0",
        "onnx",
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npython: three\n")
    assert_user_error(cli("env", "register", str(bad)), "invalid environment spec: python")

    data = tmp_path / "train.csv"
    data.write_text("age,city\n31,Oslo\n,Lima\n45,Oslo\n")
    assert "Registered data asset train:1" in cli("data", "register", "train", str(data)).out
    profile = cli("data", "show", "train", "--json").json()["versions"][0]["content"]["profile"]
    assert profile["rows"] == 3
    assert profile["columns"]["age"]["nulls"] == 1
    assert profile["columns"]["city"]["top"][0] == ["Oslo", 2]
    assert "Oslo (2)" in cli("data", "show", "train").out
    assert_user_error(cli("data", "register", "train", str(tmp_path / "nope.csv")), "no such file")


def test_endpoint_commands_and_refusals(cli: Cli, model_dir: Path) -> None:
    for _ in range(2):
        cli("model", "register", "ranker", str(model_dir))
    assert cli("endpoint", "create", "shop").code == 0
    assert "traffic blue=100%" in cli("endpoint", "deploy", "shop", "blue", "ranker:1").out
    assert cli("endpoint", "deploy", "shop", "green", "ranker:2", "--replicas", "2").code == 0
    split = cli("endpoint", "traffic", "shop", "blue=90", "green=10")
    assert split.code == 0 and "blue=90%, green=10%" in split.out

    assert_user_error(cli("endpoint", "traffic", "shop", "blue=90", "green=20"), "sum to 100")
    assert_user_error(cli("endpoint", "traffic", "shop", "blue=x"), "whole percentage")
    assert_user_error(cli("endpoint", "mirror", "shop", "green=10"), "10% live traffic")
    assert_user_error(cli("model", "delete", "ranker:1"), "deployment 'blue' of endpoint 'shop'")
    assert_user_error(cli("model", "show", "ghost:1"), "model 'ghost' does not exist")

    assert cli("endpoint", "traffic", "shop", "green=100").code == 0
    assert cli("endpoint", "mirror", "shop", "blue=25").code == 0
    shown = cli("endpoint", "show", "shop", "--json").json()
    assert shown["traffic"] == {"green": 100} and shown["mirror"] == {"blue": 25}
    assert shown["deployments"]["green"]["resources"]["replicas"] == 2
    assert "green" in cli("endpoint", "show", "shop").out
    assert cli("endpoint", "mirror", "shop", "blue=0").code == 0
    collecting = cli("endpoint", "deploy", "shop", "red", "ranker:2", "--sampling-rate", "0.1")
    assert collecting.code == 0, collecting.err
    changed = cli("endpoint", "collect", "shop", "green", "--sampling-rate", "0.5", "--reason", "x")
    assert changed.code == 0 and "shop/green collects 50% of its requests" in changed.out
    assert_user_error(
        cli("endpoint", "collect", "shop", "green", "--sampling-rate", "1.5"),
        "sampling rate must be between 0 and 1, got 1.5",
    )
    assert_user_error(
        cli("endpoint", "deploy", "shop", "pink", "ranker:2", "--sampling-rate", "-1"),
        "sampling rate must be between 0 and 1",
    )
    shown = cli("endpoint", "show", "shop", "--json").json()["deployments"]
    rates = {name: d["sampling_rate"] for name, d in shown.items()}
    assert rates == {"blue": 0.0, "green": 0.5, "red": 0.1}
    assert "collect" in cli("endpoint", "show", "shop").out
    assert cli("endpoint", "undeploy", "shop", "red").code == 0
    assert cli("endpoint", "undeploy", "shop", "blue").code == 0
    assert_user_error(cli("endpoint", "delete", "shop"), "still has deployments green")
    events = [e["event_type"] for e in cli("history", "endpoint", "shop", "--json").json()]
    assert events.count("Endpoint.TrafficChanged") == 3
    assert events[-1] == "Endpoint.DeploymentDeleted"


def test_verify_reports_ok_then_the_tampered_position(
    cli,
    store: StoreFactory,
    model_dir: Path,
) -> None:
    cli("model", "register", "iris", str(model_dir))
    ok = cli("verify")
    assert ok.code == 0 and ok.out.startswith("OK: 3 events")
    store.sql(f"DELETE FROM {store.events_table} WHERE {store.position_column} = 2")
    tampered = cli("verify")
    assert tampered.code == 1 and "TAMPERED at log position 2" in tampered.err
    assert cli("verify", "--json").json()["bad_position"] == 2  # type: ignore[index]


def test_demo_runs_once_per_home(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "demo"
    first = cli("demo", "--home", str(home))
    assert first.code == 0 and "OK:" in first.out, first
    assert_user_error(cli("demo", "--home", str(home)), "holds a demo already")


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert (result.code, result.out.strip()) == (0, "ledger 0.1.0")


def test_usage_errors_exit_2_and_bad_settings_exit_1(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("model", "register").code == 2
    assert cli("history", "model").code == 2
    assert_user_error(cli("history", "planet", "x"), "unknown entity kind 'planet'")
    monkeypatch.setenv("LEDGER_STORE", "mysql://nope")
    assert_user_error(cli("model", "list"), "LEDGER_STORE")


def test_the_installed_command_prints_one_line_errors(store: StoreFactory) -> None:
    ledger_bin = shutil.which("ledger", path=os.path.dirname(sys.executable))
    assert ledger_bin, "the `ledger` console script is installed with the package"
    env = {**os.environ, **store.env()}
    result = subprocess.run(
        [ledger_bin, "model", "show", "nothing:1"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: model 'nothing' does not exist"
    assert result.stdout == ""


def test_model_level_tags_archive_and_alias_removal(cli: Cli, model_dir: Path) -> None:
    cli("model", "register", "iris", str(model_dir), "--description", "first cut")
    assert cli("model", "tag", "iris", "owner=vision-team").code == 0
    assert cli("model", "list", "--json").json()[0]["tags"] == {"owner": "vision-team"}
    assert "owner=vision-team" in cli("model", "list").out
    assert cli("model", "untag", "iris", "owner").code == 0
    assert_user_error(cli("model", "untag", "iris", "owner"), "model iris has no tag 'owner'")

    assert cli("model", "archive", "iris:1", "-r", "superseded").code == 0
    assert cli("model", "show", "iris:1", "--json").json()["status"] == "archived"
    assert cli("model", "restore", "iris:1").code == 0
    shown = cli("model", "show", "iris:1")
    assert shown.code == 0 and "ready" in shown.out and "first cut" in shown.out
    assert "weights.bin" in shown.out

    assert cli("model", "alias", "iris", "prod", "1").code == 0
    assert cli("model", "alias", "iris", "prod", "--delete").code == 0
    assert_user_error(cli("model", "show", "iris@prod"), "has no alias 'prod'")
    assert_user_error(cli("model", "alias", "iris", "prod"), "give the VERSION")
    assert_user_error(cli("model", "alias", "iris", "1st", "1"), "invalid alias '1st'")
    assert_user_error(cli("model", "delete", "iris"), "or delete the model with --all")


def test_tables_for_people(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "env.yaml"
    spec.write_text("python: '3.12'\npip: [numpy]\n")
    assert_user_error(cli("env", "register", str(spec)), "has no `name`; pass --name")
    assert cli("env", "register", str(spec), "--name", "np").code == 0
    shown = cli("env", "show", "np")
    assert "3.12" in shown.out and "numpy" in shown.out


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the URL below replaces it
def test_unreachable_store_is_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_STORE", "postgresql://nobody@127.0.0.1:1/nowhere")
    result = cli("model", "list")
    assert_user_error(result, "the event store is unavailable: cannot reach postgresql://nobody@")
    assert len(result.err.strip().splitlines()) == 1


def test_describe_rename_and_delete_a_whole_model(cli: Cli, model_dir: Path) -> None:
    assert cli("model", "register", "iris", str(model_dir)).code == 0
    assert cli("model", "register", "iris", str(model_dir)).code == 0
    assert cli("model", "describe", "iris", "the iris classifier").code == 0
    assert cli("model", "describe", "iris:2", "retrained").code == 0
    assert cli("model", "alias", "iris", "champion", "2").code == 0
    renamed = cli("model", "rename", "iris", "flowers", "--reason", "clearer")
    assert renamed.code == 0 and "Renamed iris to flowers" in renamed.out
    moved = cli("model", "show", "flowers@champion", "--json").json()
    assert (moved["version"], moved["description"]) == (2, "retrained")
    assert cli("model", "list", "--json").json()[0]["description"] == "the iris classifier"
    assert_user_error(cli("model", "rename", "flowers", "iris"), "that name was used before")
    assert_user_error(cli("model", "delete", "flowers:1", "--all"), "give its NAME")
    deleted = cli("model", "delete", "flowers", "--all", "--reason", "retired")
    assert deleted.code == 0 and "Deleted model flowers (2 versions" in deleted.out
    assert_user_error(cli("model", "show", "flowers:1"), "flowers")
    history = cli("history", "model", "flowers", "--json").json()
    last = {(e["event_type"], e["name"], e["reason"]) for e in history[-3:]}
    assert last == {("Model.Deleted", "flowers", "retired"),
                    ("ModelVersion.Deleted", "flowers:1", "retired"),
                    ("ModelVersion.Deleted", "flowers:2", "retired")}  # fmt: skip
