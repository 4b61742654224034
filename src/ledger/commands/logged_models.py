"""MLflow logged models: create (pending), finalize (ready or failed), tag, log parameters,
delete. A deleted logged model is gone for every command, as in MLflow's reads."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from ledger.application import LedgerApplication
from ledger.command_context import running_command_id
from ledger.commands.experiments import load_experiment
from ledger.commands.runs import find_run
from ledger.domain.logged_model import LoggedModel
from ledger.domain.tracking import (
    generated_run_name,
    logged_model_aggregate_id,
    model_artifact_location,
)
from ledger.errors import NotFoundError

# Logged model ids derive from the command id: a retried command names the same model.
_MODEL_IDS = uuid.UUID("8b2e4f61-0c7a-4d95-a3e8-71f6d2c9b540")


def find_logged_model(
    app: LedgerApplication, model_id: str, *, for_update: bool = False
) -> LoggedModel:
    """The logged model; NotFoundError when there is none, or it was deleted."""
    model = app.find(LoggedModel, logged_model_aggregate_id(model_id), for_update=for_update)
    if model is None or model.deleted:
        raise NotFoundError(f"logged model {model_id[:100]!r} does not exist")
    return model


class LoggedModelCommands:
    """Commands for MLflow logged models (reads go through the mlflow view)."""

    def __init__(self, application: LedgerApplication) -> None:
        self._app = application

    def create(
        self,
        experiment_id: str,
        *,
        name: str = "",
        source_run_id: str = "",
        model_type: str = "",
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        reason: str = "",
    ) -> LoggedModel:
        """A pending logged model in the experiment (of the run ``source_run_id``, when
        given); its files go under its artifact location, then it is finalized."""

        def command() -> LoggedModel:
            experiment, created = load_experiment(self._app, experiment_id)
            experiment.require_active("given new models")
            if source_run_id:
                find_run(self._app, source_run_id)
            model_id = (
                "m-" + uuid.uuid5(_MODEL_IDS, running_command_id.get() or uuid.uuid4().hex).hex
            )
            model = LoggedModel.create(
                model_id,
                experiment_id=experiment.experiment_id,
                name=name or generated_run_name(model_id),
                source_run_id=source_run_id,
                model_type=model_type,
                params=params or {},
                tags=tags or {},
                artifact_location=model_artifact_location(experiment.artifact_location, model_id),
            )
            first_use = [*created, experiment] if created else []  # the default experiment
            self._app.save(*first_use, model)
            return model

        return self._app.execute(reason, command)

    def finalize(self, model_id: str, status: str, *, reason: str = "") -> LoggedModel:
        """``status``: READY once its files are uploaded, FAILED when the upload failed."""
        return self._change(model_id, lambda m: m.finalize(status), reason)

    def set_tags(self, model_id: str, tags: dict[str, str], *, reason: str = "") -> LoggedModel:
        return self._change(model_id, lambda m: m.set_tags(tags), reason)

    def delete_tag(self, model_id: str, key: str, *, reason: str = "") -> LoggedModel:
        return self._change(model_id, lambda m: m.delete_tag(key), reason)

    def log_params(self, model_id: str, params: dict[str, str], *, reason: str = "") -> LoggedModel:
        return self._change(model_id, lambda m: m.log_params(params), reason)

    def delete(self, model_id: str, *, reason: str = "") -> LoggedModel:
        return self._change(model_id, LoggedModel.delete, reason)

    def _change(
        self, model_id: str, change: Callable[[LoggedModel], object], reason: str
    ) -> LoggedModel:
        return self._app.change(
            lambda: find_logged_model(self._app, model_id, for_update=True), change, reason
        )
