"""`ledger demo`: a scripted walk through the model lifecycle on the embedded store."""

from __future__ import annotations

import csv
import json
import random
import shlex
import sys
import tempfile
from pathlib import Path

from rich.rule import Rule

from ledger.cli.context import console, counted, load_settings, print_events
from ledger.cli.endpoints import print_split
from ledger.errors import InvalidInputError, RuleViolationError
from ledger.ledger import Ledger
from ledger.specs import EnvironmentSpec
from projections.audit import AuditQuery
from projections.views import Views

MODEL = "iris-classifier"
ENDPOINT = "iris-online"


def _write_dataset(path: Path) -> Path:
    rng = random.Random(7)
    species = ["setosa", "versicolor", "virginica"]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])
        for i in range(150):
            kind = i % 3
            writer.writerow(
                [
                    round(rng.gauss(5.0 + 0.9 * kind, 0.35), 1),
                    round(rng.gauss(3.4 - 0.3 * kind, 0.3), 1),
                    round(rng.gauss(1.5 + 2.5 * kind, 0.4), 1),
                    round(rng.gauss(0.25 + 0.9 * kind, 0.2), 1),
                    species[kind],
                ]
            )
    return path


def _write_model(directory: Path, seed: int) -> Path:
    """A small 'trained model': weights plus a preprocessing file in a subfolder."""
    rng = random.Random(seed)
    (directory / "preprocess").mkdir(parents=True)
    weights = [[round(rng.uniform(-1, 1), 4) for _ in range(4)] for _ in range(3)]
    (directory / "model.json").write_text(json.dumps({"weights": weights, "classes": 3}))
    (directory / "preprocess" / "scaler.json").write_text(
        json.dumps({"mean": [5.8, 3.0, 3.8, 1.2]})
    )
    (directory / "MLmodel").write_text("flavor: custom\nloader: json\n")
    return directory


def _step(title: str) -> None:
    console.print(Rule(f"[bold]{title}"), width=min(console.width, 100))


def explore_hint(home: Path) -> str:
    """A command that shows the demo's result, pasted as is into a shell (where `ledger`
    may not be on the PATH: the full path of this one)."""
    ledger = Path(sys.argv[0]).absolute() if Path(sys.argv[0]).name == "ledger" else None
    command = shlex.quote(str(ledger)) if ledger and ledger.is_file() else "ledger"
    return f"LEDGER_HOME={shlex.quote(str(home))} {command} model versions {MODEL}"


def run_demo(home: str = "") -> None:
    """Run the demo in ``home`` (a new temporary directory when empty)."""
    root = Path(home) if home else Path(tempfile.mkdtemp(prefix="ledger-demo-"))
    if (root / ".ledger").exists():
        raise InvalidInputError(f"{root} holds a demo already: give --home a new directory")
    root.mkdir(parents=True, exist_ok=True)
    settings = load_settings(
        home=root / ".ledger", store="", artifacts=root / ".ledger" / "artifacts"
    )
    console.print(f"Demo store: [bold]{settings.store_location.describe()}[/]")
    ledger = Ledger(settings)
    try:
        _walk_through(ledger, root)
    finally:
        ledger.close()
    console.print("\nExplore it yourself:")
    console.print(explore_hint(root / ".ledger"), markup=False, highlight=False, soft_wrap=True)


def _walk_through(ledger: Ledger, root: Path) -> None:
    data, env = _register_inputs(ledger, root)
    _register_models(ledger, root, data, env)
    _release(ledger, env)
    _enforce_rules(ledger)
    views = Views.open(ledger.settings)
    try:
        _look_back(views)
    finally:
        views.close()
    _step("9. Verify the hash chain over the whole log")
    report = ledger.verify()
    console.print(
        f"OK: {report.count} events, chain head {report.head}" if report.ok else f"[red]{report}"
    )


def _register_inputs(ledger: Ledger, root: Path) -> tuple[str, str]:
    """Steps 1-2: the training data and environment; returns their refs."""
    _step("1. Register training data (profiled for drift)")
    data = ledger.assets.register_data(
        "iris-train", _write_dataset(root / "iris.csv"), reason="initial training set"
    )
    profile = ledger.assets.data_version(data.ref)["content"]["profile"]
    console.print(
        f"data {data.ref}: {profile['rows']} rows, columns {', '.join(profile['columns'])}"
    )

    _step("2. Register the training environment (identical spec = same version)")
    spec = EnvironmentSpec(python="3.11", pip=["scikit-learn==1.5.2", "onnxruntime==1.19.2"])
    env = ledger.assets.register_environment("sklearn-cpu", spec, reason="training image")
    again = ledger.assets.register_environment("sklearn-cpu", spec)
    console.print(
        f"environment {env.ref} (registering it again returns {again.ref}, created={again.created})"
    )
    return data.ref, env.ref


def _register_models(ledger: Ledger, root: Path, data: str, env: str) -> None:
    _step("3. Register two model versions with lineage")
    for seed, accuracy in ((1, 0.93), (2, 0.96)):
        version = ledger.models.register_version(
            MODEL,
            _write_model(root / f"model-v{seed}", seed),
            flavor="custom",
            tags={"team": "vision", "stage": "candidate"},
            metrics={"accuracy": accuracy},
            lineage={"data": [data], "environment": env},
            reason=f"training run {seed}",
        )
        files = counted(len(version.spec["files"]), "file")
        console.print(f"{version.ref}: {files}, accuracy {accuracy}")
    ledger.models.set_alias(MODEL, "champion", 1, reason="best offline score so far")


def _release(ledger: Ledger, env: str) -> None:
    _step("4. Create an online endpoint; deploy blue (v1), then green (v2)")
    ledger.endpoints.create(ENDPOINT, "online", reason="public scoring API")
    ledger.endpoints.deploy(ENDPOINT, "blue", f"{MODEL}:1", environment=env, reason="first release")
    print_split(
        ledger.endpoints.deploy(
            ENDPOINT, "green", f"{MODEL}:2", environment=env, reason="candidate"
        )
    )

    _step("5. Canary: 90/10, then all traffic to green")
    print_split(ledger.endpoints.set_traffic(ENDPOINT, {"blue": 90, "green": 10}, reason="canary"))
    print_split(ledger.endpoints.set_traffic(ENDPOINT, {"green": 100}, reason="canary healthy"))
    ledger.models.set_alias(MODEL, "champion", 2, reason="won the canary")


def _enforce_rules(ledger: Ledger) -> None:
    _step("6. Rules hold: the live version cannot be deleted")
    try:
        ledger.models.delete_version(f"{MODEL}:2", reason="cleanup")
    except RuleViolationError as refusal:
        console.print(f"[red]refused:[/] {refusal}")
    ledger.endpoints.undeploy(ENDPOINT, "blue", reason="retired")
    ledger.models.delete_version(f"{MODEL}:1", reason="superseded by v2")
    console.print(f"undeployed blue (0% traffic) and deleted {MODEL}:1: allowed")


def _look_back(views: Views) -> None:
    """Steps 7-8: the endpoint's history, its state before the canary, its lineage."""
    _step("7. History of the endpoint (audit view): who did what, when and why")
    print_events(views.audit(AuditQuery(kind="endpoint", name=ENDPOINT)).items)

    _step("8. Point in time: the endpoint just before the canary; the live version's lineage")
    shifts = views.audit(AuditQuery(kind="endpoint", name=ENDPOINT, event_type="TrafficChanged"))
    before = views.point_at(position=shifts.items[1]["position"] - 1)
    traffic = views.endpoint_as_of(ENDPOINT, before)["traffic"]
    console.print(f"as of log position {before.position}: traffic {traffic}")
    graph = views.lineage(f"endpoint:{ENDPOINT}", direction="upstream", depth=4)
    console.print("upstream of the endpoint: " + ", ".join(list(graph.nodes)[1:]))
