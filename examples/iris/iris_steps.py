"""The steps of the example pipeline (pipeline.yaml). Each receives a StepContext."""

from __future__ import annotations

import csv
import json
import pickle
import random
from pathlib import Path
from typing import Any

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _read(path: Path) -> tuple[list[list[float]], list[str]]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return [[float(r[c]) for c in FEATURES] for r in rows], [r["species"] for r in rows]


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*FEATURES, "species"])
        writer.writeheader()
        writer.writerows(rows)


def prepare(ctx: Any) -> dict[str, float]:
    """Split the raw data into train and test sets, shuffled with the given seed."""
    with Path(ctx.inputs["raw"]).open() as f:
        rows = list(csv.DictReader(f))
    random.Random(ctx.inputs["seed"]).shuffle(rows)
    cut = int(len(rows) * (1 - ctx.inputs["test_size"]))
    _write(ctx.output("train"), rows[:cut])
    _write(ctx.output("test"), rows[cut:])
    ctx.log(f"{cut} training rows, {len(rows) - cut} test rows")
    return {"train_rows": cut, "test_rows": len(rows) - cut}


def _fit(ctx: Any, model: Any) -> None:
    features, labels = _read(ctx.inputs["train"])
    model.fit(features, labels)
    ctx.output("model").write_bytes(pickle.dumps(model))


def train_forest(ctx: Any) -> None:
    _fit(ctx, RandomForestClassifier(ctx.inputs["n_estimators"], random_state=ctx.inputs["seed"]))


def train_baseline(ctx: Any) -> None:
    _fit(ctx, LogisticRegression(max_iter=500))


def evaluate(ctx: Any) -> dict[str, float]:
    """Score both models on the test set; the report holds every metric."""
    features, labels = _read(ctx.inputs["test"])
    report = {}
    for name in ("forest", "baseline"):
        model = pickle.loads(Path(ctx.inputs[name]).read_bytes())
        predicted = model.predict(features)
        report[name] = {
            "accuracy": accuracy_score(labels, predicted),
            "f1_macro": f1_score(labels, predicted, average="macro"),
        }
    ctx.output("report").write_text(json.dumps(report, indent=2))
    return {f"{name}_{k}": v for name, scores in report.items() for k, v in scores.items()}


def register(ctx: Any) -> None:
    """Register the better model (the forest on a tie) with its metrics."""
    report = json.loads(Path(ctx.inputs["report"]).read_text())
    best = max(("forest", "baseline"), key=lambda name: report[name]["accuracy"])
    ctx.log(f"registering the {best}: accuracy {report[best]['accuracy']:.3f}")
    model_dir = ctx.work_dir / "iris-classifier"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(Path(ctx.inputs[best]).read_bytes())
    ctx.register_model(
        "iris-classifier",
        model_dir,
        flavor="sklearn",
        metrics=report[best],
        tags={"algorithm": best},
        description=f"iris {best} trained by job {ctx.job_id}",
    )
