"""examples/ci/github-actions/register-model.yml: its registration step, run as GitHub
would run it (bash, curl, jq) against a real `ledger serve`, on both stores."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from ledger.api.routes.models import router
from ledger.ledger import Ledger
from tests.conftest import StoreFactory
from tests.paths import REPO
from tests.server_support import serving

WORKFLOW = REPO / "examples" / "ci" / "github-actions" / "register-model.yml"


def workflow() -> dict[Any, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(loaded, dict)
    return loaded


def register_step() -> dict[str, Any]:
    (job,) = workflow()["jobs"].values()
    (step,) = [step for step in job["steps"] if step.get("id") == "register"]
    return dict(step)


def test_the_workflow_parses_and_posts_to_the_registration_route() -> None:
    loaded = workflow()
    triggers = loaded.get("on", loaded.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "workflow_dispatch" in triggers
    step = register_step()
    assert step["env"]["LEDGER_TOKEN"] == "${{ secrets.LEDGER_TOKEN }}"
    (job,) = loaded["jobs"].values()
    assert job["env"]["LEDGER_URL"] == "${{ vars.LEDGER_URL }}"
    script = step["run"]
    assert "--fail-with-body" in script
    assert 'Idempotency-Key: github/$GITHUB_REPOSITORY/$GITHUB_RUN_ID"' in script
    (url,) = re.findall(r'"\$\{LEDGER_URL%/\}(/[^"]+)"', script)
    route = url.replace("$MODEL_NAME", "{name}")
    posts = {(r.path, m) for r in router.routes for m in getattr(r, "methods", ())}
    assert (route, "POST") in posts


def run_step(env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    script = register_step()["run"]
    assert "${{" not in script  # GitHub's expressions stay in `env:`, which we set here
    return subprocess.run(
        ["bash", "-c", script],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_registration_step_registers_once_per_run(store: StoreFactory) -> None:
    with Ledger(store.settings()) as ledger:
        token = ledger.tokens.create("ci-bot", "contributor").secret
    tmp = store.tmp_path
    model = tmp / "model"
    (model / "assets").mkdir(parents=True)
    (model / "model.onnx").write_bytes(b"onnx bytes")
    (model / "assets" / "labels.txt").write_text("setosa\nversicolor\nvirginica\n")
    runner = tmp / "runner"
    runner.mkdir()
    (runner / "metrics.json").write_text('{"accuracy": 0.97}')
    output = runner / "output"
    env = {
        "LEDGER_TOKEN": token,
        "MODEL_NAME": "iris-classifier",
        "MODEL_DIR": str(model),
        "MODEL_FLAVOR": "onnx",
        "RUNNER_TEMP": str(runner),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(runner / "summary.md"),
        "GITHUB_SHA": "0123abcd",
        "GITHUB_REF_NAME": "main",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/models",
        "GITHUB_RUN_ID": "1001",
    }
    with serving(store) as url:
        env["LEDGER_URL"] = url + "/"
        first = run_step(env, tmp)
        assert first.returncode == 0, first.stdout + first.stderr
        again = run_step(env, tmp)  # "Re-run jobs": the same run id
        assert again.returncode == 0, again.stdout + again.stderr
        assert output.read_text().splitlines() == ["ref=iris-classifier:1"] * 2
        headers = {"Authorization": f"Bearer {token}"}
        shown = httpx.get(f"{url}/models/iris-classifier/versions/1", headers=headers).json()
        assert sorted(f["path"] for f in shown["files"]) == ["assets/labels.txt", "model.onnx"]
        assert shown["flavor"] == "onnx" and shown["metrics"] == {"accuracy": 0.97}
        assert shown["tags"]["git_commit"] == "0123abcd" and shown["tags"]["stage"] == "candidate"
        assert shown["tags"]["ci_run"] == "https://github.com/acme/models/actions/runs/1001"
        assert shown["created_by"] == "ci-bot"

        next_run = run_step({**env, "GITHUB_RUN_ID": "1002"}, tmp)
        assert next_run.returncode == 0 and output.read_text().endswith("ref=iris-classifier:2\n")

        refused = run_step({**env, "GITHUB_RUN_ID": "1003", "LEDGER_TOKEN": "llt_wrong"}, tmp)
        assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr
        model_info = httpx.get(f"{url}/models/iris-classifier", headers=headers).json()
        assert model_info["latest_version"] == 2
