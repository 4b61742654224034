"""MLflow tracking as ledger commands and views: experiments, runs, logged models, on
SQLite and PostgreSQL, following the log and rebuilt from it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.domain.run import Dataset, Metric
from ledger.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ledger.ledger import Ledger
from projections.views import Views

RUN_KEYS = {
    "run_id", "experiment_id", "status", "start_time", "end_time", "artifact_uri", "user_id",
    "run_name", "params", "metrics", "tags", "inputs", "outputs", "lifecycle_stage",
}  # fmt: skip
MODEL_KEYS = {
    "model_id", "experiment_id", "name", "artifact_location", "source_run_id", "status", "tags",
    "params", "creation_timestamp", "last_updated_timestamp",
}  # fmt: skip


@pytest.fixture
def views(ledger: Ledger) -> Iterator[Views]:
    opened = Views.open(ledger.settings)
    yield opened
    opened.close()


def read(views: Views, query: Any) -> Any:
    views.updater.catch_up()
    return query(views)


def test_the_default_experiment_answers_before_and_after_its_first_write(
    ledger: Ledger, views: Views
) -> None:
    before = views.mlflow_experiment("0")
    assert before["name"] == "Default" and before["artifact_location"] == "mlflow-artifacts:/0"
    assert before["creation_time"] is None and before["lifecycle_stage"] == "active"
    assert views.mlflow_experiment_by_name("Default")["experiment_id"] == "0"
    assert [e["experiment_id"] for e in views.mlflow_search_experiments().items] == ["0"]
    assert ledger.event_count() == 0  # reading wrote nothing
    run = ledger.runs.create("0", user_id="root")
    after = read(views, lambda v: v.mlflow_experiment("0"))
    assert after["name"] == "Default" and after["created_by"] == "tester"
    assert isinstance(after["creation_time"], int)
    assert read(views, lambda v: v.mlflow_run(run.run_id))["experiment_id"] == "0"
    with pytest.raises(AlreadyExistsError, match="'Default' is taken by experiment 0"):
        ledger.experiments.create("Default")


def test_experiments_are_numbered_named_once_renamed_deleted_and_restored(
    ledger: Ledger, views: Views
) -> None:
    first = ledger.experiments.create("churn", tags={"team": "ml"})
    second = ledger.experiments.create("fraud")
    assert (first.experiment_id, second.experiment_id) == ("1", "2")
    assert first.artifact_location == "mlflow-artifacts:/1"
    with pytest.raises(AlreadyExistsError, match="'churn' is taken"):
        ledger.experiments.create("churn")
    ledger.experiments.rename("1", "churn-v2")
    assert ledger.experiments.create("churn").experiment_id == "3"  # the old name is free
    ledger.experiments.set_tag("2", "owner", "ana")
    ledger.experiments.delete("2")
    with pytest.raises(InvalidInputError, match="experiment 2 is deleted"):
        ledger.runs.create("2")
    with pytest.raises(AlreadyExistsError, match="deleted experiment keeps its name"):
        ledger.experiments.create("fraud")
    shown = read(views, lambda v: v.mlflow_experiment("2"))
    assert shown["lifecycle_stage"] == "deleted" and shown["tags"] == {"owner": "ana"}
    assert views.mlflow_experiment_by_name("churn-v2")["tags"] == {"team": "ml"}
    active = [e["name"] for e in views.mlflow_search_experiments(order_by=["name"]).items]
    assert active == ["Default", "churn", "churn-v2"]
    newest = views.mlflow_search_experiments(order_by=["experiment_id DESC"]).items
    assert [e["experiment_id"] for e in newest] == ["3", "1", "0"]
    deleted = views.mlflow_search_experiments(view_type="DELETED_ONLY").items
    assert [e["name"] for e in deleted] == ["fraud"]
    ledger.experiments.restore("2")
    ledger.experiments.delete_tag("2", "owner")
    assert read(views, lambda v: v.mlflow_experiment("2"))["tags"] == {}
    with pytest.raises(NotFoundError, match="experiment 9 does not exist"):
        ledger.experiments.rename("9", "x")
    with pytest.raises(InvalidInputError, match="an experiment id is an integer"):
        ledger.runs.create("abc")
    with pytest.raises(NotFoundError, match="experiment '9' does not exist"):
        views.mlflow_experiment("9")
    with pytest.raises(NotFoundError, match="no experiment is named 'nope'"):
        views.mlflow_experiment_by_name("nope")


def _logged_run(ledger: Ledger) -> str:
    run = ledger.runs.create("0", run_name="first", start_time=1000, tags={"team": "ml"})
    ledger.runs.log_batch(
        run.run_id,
        metrics=[
            Metric("acc", 0.5, timestamp=10, step=1),
            Metric("acc", 0.9, timestamp=5, step=2),  # a later step wins over a later time
            Metric("acc", 0.7, timestamp=20, step=1),
            Metric("loss", math.nan, timestamp=10, step=0),
            Metric("gain", math.inf, timestamp=10, step=0),
        ],
        params=[("C", "1.0"), ("solver", "lbfgs")],
        tags=[("phase", "train")],
    )
    ledger.runs.log_batch(run.run_id, metrics=[Metric("acc", 0.7, timestamp=20, step=1)])
    dataset = Dataset("iris", "abc123", "code", '{"x": 1}', schema="{}", profile="{}",
                      tags={"mlflow.data.context": "training"})  # fmt: skip
    ledger.runs.log_inputs(run.run_id, [dataset, dataset])
    ledger.runs.log_inputs(run.run_id, [dataset])  # known inputs are not logged again
    return run.run_id


def test_a_run_shows_params_latest_metrics_history_tags_inputs_and_outputs(
    ledger: Ledger, views: Views
) -> None:
    run_id = _logged_run(ledger)
    model = ledger.logged_models.create("0", name="model", source_run_id=run_id)
    ledger.runs.log_batch(run_id, metrics=[Metric("acc", 0.9, 5, 2, model_id=model.model_id)])
    ledger.runs.log_outputs(run_id, [(model.model_id, 2)])
    ledger.runs.update(run_id, status="FINISHED", end_time=2000)
    run = read(views, lambda v: v.mlflow_run(run_id))
    assert run.keys() >= RUN_KEYS
    assert len(run_id) == 32 and int(run_id, 16) >= 0
    assert run["artifact_uri"] == f"mlflow-artifacts:/0/{run_id}/artifacts"
    assert (run["status"], run["start_time"], run["end_time"]) == ("FINISHED", 1000, 2000)
    assert run["user_id"] == "tester" and run["run_name"] == "first"
    assert run["params"] == {"C": "1.0", "solver": "lbfgs"}
    assert run["metrics"]["acc"] == 0.9 and math.isnan(run["metrics"]["loss"])
    assert run["metrics"]["gain"] == math.inf
    assert run["tags"] == {"team": "ml", "phase": "train", "mlflow.runName": "first"}
    assert [(i["name"], i["digest"], i["source_type"], i["source"]) for i in run["inputs"]] == [
        ("iris", "abc123", "code", '{"x": 1}')
    ]
    assert run["inputs"][0]["tags"] == {"mlflow.data.context": "training"}
    assert run["outputs"] == [model.model_id]
    assert run["model_outputs"] == [{"model_id": model.model_id, "step": 2}]
    history = views.mlflow_metric_history(run_id, "acc").items
    # by time, then step; the same value logged twice is kept once
    assert [(m["timestamp"], m["step"], m["value"]) for m in history] == [
        (5, 2, 0.9), (10, 1, 0.5), (20, 1, 0.7)
    ]  # fmt: skip
    page = views.mlflow_metric_history(run_id, "acc", max_results=2)
    rest = views.mlflow_metric_history(run_id, "acc", max_results=2, page_token=page.next_token)
    assert [m["value"] for m in page.items + rest.items] == [0.9, 0.5, 0.7] and not rest.next_token
    shown = views.mlflow_logged_model(model.model_id)
    assert [(m["key"], m["value"], m["run_id"]) for m in shown["metrics"]] == [("acc", 0.9, run_id)]


def test_params_are_write_once_and_a_batch_is_all_or_nothing(ledger: Ledger, views: Views) -> None:
    run_id = ledger.runs.create("0").run_id
    ledger.runs.log_batch(run_id, params=[("C", "1.0")])
    ledger.runs.log_batch(run_id, params=[("C", "1.0")])  # the same value again: fine
    head = ledger.event_count()
    with pytest.raises(InvalidInputError, match="parameters are write-once"):
        ledger.runs.log_batch(
            run_id, metrics=[Metric("acc", 1.0, 1)], params=[("D", "x"), ("C", "2.0")]
        )
    with pytest.raises(InvalidInputError, match="invalid metric key"):
        ledger.runs.log_batch(run_id, metrics=[Metric("../up", 1.0, 1)], params=[("E", "y")])
    with pytest.raises(InvalidInputError, match="at most 100 params"):
        ledger.runs.log_batch(run_id, params=[(f"p{n}", "v") for n in range(101)])
    with pytest.raises(InvalidInputError, match="tag 't' contains a NUL"):
        ledger.runs.log_batch(run_id, tags=[("t", "a\x00b")])
    assert ledger.event_count() == head  # nothing of a refused batch was written
    run = read(views, lambda v: v.mlflow_run(run_id))
    assert run["params"] == {"C": "1.0"} and run["metrics"] == {}


def test_run_names_tags_deletion_and_the_experiments_deletion(ledger: Ledger, views: Views) -> None:
    experiment = ledger.experiments.create("exp")
    run_id = ledger.runs.create("1", tags={"mlflow.runName": "from-tag"}).run_id
    other = ledger.runs.create("1")
    generated = other.run_name
    assert generated.count("-") == 2  # adjective-noun-number, as MLflow names runs
    with pytest.raises(InvalidInputError, match="differ"):
        ledger.runs.create("1", run_name="a", tags={"mlflow.runName": "b"})
    ledger.runs.log_batch(run_id, tags=[("mlflow.runName", "renamed"), ("x", "1")])
    assert read(views, lambda v: v.mlflow_run(run_id))["run_name"] == "renamed"
    ledger.runs.update(run_id, run_name="again")
    ledger.runs.delete_tag(run_id, "x")
    run = read(views, lambda v: v.mlflow_run(run_id))
    assert run["run_name"] == "again" and run["tags"]["mlflow.runName"] == "again"
    assert "x" not in run["tags"]
    with pytest.raises(NotFoundError, match="has no tag 'x'"):
        ledger.runs.delete_tag(run_id, "x")
    ledger.experiments.delete(experiment.experiment_id)
    assert read(views, lambda v: v.mlflow_run(run_id))["lifecycle_stage"] == "deleted"
    with pytest.raises(InvalidInputError, match="experiment 1 is deleted"):
        ledger.runs.log_batch(run_id, params=[("a", "b")])
    ledger.experiments.restore(experiment.experiment_id)
    ledger.runs.delete(run_id)
    ledger.runs.delete(run_id)  # deleting again changes nothing
    with pytest.raises(InvalidInputError, match="is deleted"):
        ledger.runs.update(run_id, status="FINISHED")
    active = read(views, lambda v: v.mlflow_search_runs(["1"]))
    assert [r["run_id"] for r in active.items] == [other.run_id]
    deleted = read(views, lambda v: v.mlflow_search_runs(["1"], view_type="DELETED_ONLY"))
    assert [r["run_id"] for r in deleted.items] == [run_id]
    ledger.runs.restore(run_id)
    assert read(views, lambda v: v.mlflow_run(run_id))["lifecycle_stage"] == "active"
    with pytest.raises(NotFoundError, match="run 'f00' does not exist"):
        ledger.runs.log_batch("f00", params=[("a", "b")])
    with pytest.raises(NotFoundError, match="run 'f00' does not exist"):
        views.mlflow_run("f00")


def test_logged_models_pending_ready_tagged_and_deleted(ledger: Ledger, views: Views) -> None:
    run_id = ledger.runs.create("0").run_id
    model = ledger.logged_models.create(
        "0", name="model", source_run_id=run_id, params={"C": "1"}, tags={"a": "b"}
    )
    assert model.model_id.startswith("m-") and len(model.model_id) == 34
    shown = read(views, lambda v: v.mlflow_logged_model(model.model_id))
    assert shown.keys() >= MODEL_KEYS
    assert shown["status"] == "PENDING" and shown["source_run_id"] == run_id
    assert shown["artifact_location"] == f"mlflow-artifacts:/0/models/{model.model_id}/artifacts"
    assert shown["creation_timestamp"] == shown["last_updated_timestamp"]
    ledger.logged_models.finalize(model.model_id, "READY")
    ledger.logged_models.set_tags(model.model_id, {"c": "d"})
    ledger.logged_models.delete_tag(model.model_id, "a")
    ledger.logged_models.log_params(model.model_id, {"D": "2"})
    shown = read(views, lambda v: v.mlflow_logged_model(model.model_id))
    assert (shown["status"], shown["tags"], shown["params"]) == (
        "READY", {"c": "d"}, {"C": "1", "D": "2"}
    )  # fmt: skip
    assert shown["last_updated_timestamp"] >= shown["creation_timestamp"]
    with pytest.raises(InvalidInputError, match="READY or FAILED"):
        ledger.logged_models.finalize(model.model_id, "PENDING")
    with pytest.raises(InvalidInputError, match="invalid logged model name"):
        ledger.logged_models.create("0", name="a/b")
    with pytest.raises(NotFoundError, match="run 'nope' does not exist"):
        ledger.logged_models.create("0", source_run_id="nope")
    with pytest.raises(NotFoundError, match="logged model 'm-x' does not exist"):
        ledger.runs.log_outputs(run_id, [("m-x", 0)])
    ledger.logged_models.delete(model.model_id)
    with pytest.raises(NotFoundError, match="does not exist"):
        ledger.logged_models.finalize(model.model_id, "READY")
    with pytest.raises(NotFoundError, match=f"logged model '{model.model_id}' does not exist"):
        read(views, lambda v: v.mlflow_logged_model(model.model_id))


def test_searches_filter_order_and_page(ledger: Ledger, views: Views) -> None:
    ids = []
    for number, (acc, solver) in enumerate([(0.5, "a"), (0.9, "b"), (0.7, "b")]):
        run_id = ledger.runs.create("0", start_time=1000 + number, run_name=f"r{number}").run_id
        ledger.runs.log_batch(run_id, metrics=[Metric("acc", acc, 1)], params=[("solver", solver)])
        ids.append(run_id)
    ledger.runs.update(ids[0], status="FINISHED")
    views.updater.catch_up()

    def found(**query: Any) -> list[str]:
        return [r["run_name"] for r in views.mlflow_search_runs(["0"], **query).items]

    assert found() == ["r2", "r1", "r0"]  # the latest start first
    assert found(filter="metrics.acc > 0.6") == ["r2", "r1"]
    assert found(filter="params.solver = 'b' and metrics.acc < 0.8") == ["r2"]
    assert found(filter="attributes.status = 'FINISHED'") == ["r0"]
    assert found(filter="tags.`mlflow.runName` LIKE 'r_'", order_by=["metrics.acc DESC"]) == [
        "r1", "r2", "r0"
    ]  # fmt: skip
    assert found(filter="attributes.run_name ILIKE 'R1'") == ["r1"]
    first = views.mlflow_search_runs(["0"], max_results=2, order_by=["attributes.start_time"])
    rest = views.mlflow_search_runs(
        ["0"], max_results=2, order_by=["attributes.start_time"], page_token=first.next_token
    )
    assert [r["run_name"] for r in first.items + rest.items] == ["r0", "r1", "r2"]
    assert not rest.next_token and first.items[0]["params"] == {"solver": "a"}
    for bad, message in [
        ("metrics.acc > 0.5 OR params.solver = 'a'", "OR is not supported"),
        ("params.solver IN ('a')", "joined by AND"),
        ("attributes.colour = 'red'", "cannot filter on attribute 'colour'"),
        ("metrics.acc = 'high'", "compared with a number"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            views.mlflow_search_runs(["0"], filter=bad)
    with pytest.raises(InvalidInputError, match="invalid page token"):
        views.mlflow_search_runs(["0"], page_token="garbage")
    model = ledger.logged_models.create("0", name="m1", tags={"k": "v"})
    ledger.logged_models.create("0", name="m2")
    models = read(views, lambda v: v.mlflow_search_logged_models(["0"], filter="tags.k = 'v'"))
    assert [m["model_id"] for m in models.items] == [model.model_id]


def test_the_views_rebuilt_from_the_log_match_the_followed_ones(
    ledger: Ledger, views: Views
) -> None:
    run_id = _logged_run(ledger)
    model = ledger.logged_models.create("0", name="model", source_run_id=run_id)
    ledger.runs.log_batch(run_id, metrics=[Metric("acc", 0.2, 99, 0, model_id=model.model_id)])
    ledger.experiments.create("other", tags={"a": "b"})
    followed = read(views, lambda v: (
        v.mlflow_run(run_id), v.mlflow_logged_model(model.model_id),
        v.mlflow_search_experiments().items, v.mlflow_metric_history(run_id, "acc").items,
    ))  # fmt: skip
    for names in (["mlflow"], []):  # this view alone, then a bulk load of every view
        views.updater.rebuild(names)
        rebuilt = (
            views.mlflow_run(run_id), views.mlflow_logged_model(model.model_id),
            views.mlflow_search_experiments().items,
            views.mlflow_metric_history(run_id, "acc").items,
        )  # fmt: skip
        assert repr(rebuilt) == repr(followed)  # repr: NaN compares unequal to itself


def test_renaming_the_default_experiment_as_its_first_write_frees_its_name(
    ledger: Ledger, views: Views
) -> None:
    assert ledger.experiments.rename("0", "main").name == "main"
    assert ledger.experiments.create("Default").experiment_id == "1"
    shown = read(views, lambda v: v.mlflow_search_experiments(order_by=["experiment_id"]).items)
    assert [(e["experiment_id"], e["name"]) for e in shown] == [("0", "main"), ("1", "Default")]
