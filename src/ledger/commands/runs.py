"""MLflow runs: create, update, delete and restore them; log metrics, parameters, tags,
inputs and outputs. A batch of metrics, parameters and tags is one command: one atomic save.

Nothing is logged to a deleted run, nor to a run of a deleted experiment (MLflow marks an
experiment's runs deleted with it; here they read as deleted while it is).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

from ledger.application import LedgerApplication
from ledger.command_context import running_command_id
from ledger.commands.experiments import load_experiment
from ledger.domain.base import current_meta
from ledger.domain.logged_model import LoggedModel
from ledger.domain.run import Dataset, Metric, Run
from ledger.domain.tracking import (
    generated_run_name,
    logged_model_aggregate_id,
    run_aggregate_id,
    run_artifact_uri,
)
from ledger.errors import NotFoundError

# Run ids derive from the command id: a retried command names the same run.
_RUN_IDS = uuid.UUID("3f1d8c52-6a0e-4b7d-9c21-5e8f0a7b4d13")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def find_run(app: LedgerApplication, run_id: str, *, for_update: bool = False) -> Run:
    """The run; NotFoundError when there is none."""
    run = app.find(Run, run_aggregate_id(run_id), for_update=for_update)
    if run is None:
        raise NotFoundError(f"run {run_id[:100]!r} does not exist")
    return run


def require_logged_models(app: LedgerApplication, model_ids: Sequence[str]) -> None:
    """Every id names a logged model that is not deleted."""
    for model_id in dict.fromkeys(model_ids):
        model = app.find(LoggedModel, logged_model_aggregate_id(model_id))
        if model is None or model.deleted:
            raise NotFoundError(f"logged model {model_id[:100]!r} does not exist")


class RunCommands:
    """Commands for MLflow runs (reads go through the mlflow view)."""

    def __init__(self, application: LedgerApplication) -> None:
        self._app = application

    def create(
        self,
        experiment_id: str,
        *,
        user_id: str = "",
        run_name: str = "",
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        reason: str = "",
    ) -> Run:
        """A new run in the experiment, RUNNING; without a name (``run_name`` or the tag
        ``mlflow.runName``) it gets one; without ``user_id``, the actor's name."""
        started = now_ms() if start_time is None else start_time

        def command() -> Run:
            experiment, created = load_experiment(self._app, experiment_id)
            experiment.require_active("given new runs")
            run_id = uuid.uuid5(_RUN_IDS, running_command_id.get() or uuid.uuid4().hex).hex
            named = run_name or (tags or {}).get("mlflow.runName", "")
            run = Run.create(
                run_id,
                experiment_id=experiment.experiment_id,
                run_name=run_name or ("" if named else generated_run_name(run_id)),
                user_id=user_id or current_meta().actor,
                start_time=started,
                tags=tags or {},
                artifact_uri=run_artifact_uri(experiment.artifact_location, run_id),
            )
            first_use = [*created, experiment] if created else []  # the default experiment
            self._app.save(*first_use, run)
            return run

        return self._app.execute(reason, command)

    def update(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
        reason: str = "",
    ) -> Run:
        """Change the status (e.g. FINISHED), end time or name."""
        return self._change(
            run_id, lambda r: r.update(status=status, end_time=end_time, run_name=run_name), reason
        )

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
        reason: str = "",
    ) -> Run:
        """Log metrics, parameters and tags in one save (parameters are write-once)."""

        def change(run: Run) -> None:
            require_logged_models(self._app, [m.model_id for m in metrics if m.model_id])
            run.log(list(metrics), list(params), list(tags))

        return self._change(run_id, change, reason)

    def delete_tag(self, run_id: str, key: str, *, reason: str = "") -> Run:
        return self._change(run_id, lambda r: r.delete_tag(key), reason)

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[Dataset],
        models: Sequence[str] = (),
        *,
        reason: str = "",
    ) -> Run:
        """Record the datasets and logged models the run used (each once)."""

        def change(run: Run) -> None:
            require_logged_models(self._app, models)
            run.log_inputs(list(datasets), list(models))

        return self._change(run_id, change, reason)

    def log_outputs(
        self, run_id: str, models: Sequence[tuple[str, int]], *, reason: str = ""
    ) -> Run:
        """Record the logged models (id, step) the run produced (each once)."""

        def change(run: Run) -> None:
            require_logged_models(self._app, [model_id for model_id, _ in models])
            run.log_outputs(list(models))

        return self._change(run_id, change, reason)

    def delete(self, run_id: str, *, reason: str = "") -> Run:
        """Mark the run deleted (again: nothing happens)."""
        return self._app.change(lambda: find_run(self._app, run_id, for_update=True),
                                Run.delete, reason)  # fmt: skip

    def restore(self, run_id: str, *, reason: str = "") -> Run:
        return self._app.change(lambda: find_run(self._app, run_id, for_update=True),
                                Run.restore, reason)  # fmt: skip

    def _change(self, run_id: str, change: Callable[[Run], object], reason: str) -> Run:
        """Change a run whose experiment is not deleted."""

        def load() -> Run:
            run = find_run(self._app, run_id, for_update=True)
            experiment, _ = load_experiment(self._app, run.experiment_id)
            experiment.require_active("logged to")
            return run

        return self._app.change(load, change, reason)
