"""MLflow experiments: create, rename, delete, restore, tag.

The default experiment "0" ("Default") exists without anyone creating it: the views answer
it until it is first written, and the first command that needs it (a run logged to it, a
tag, a new experiment) creates it, with the directory of names, in that command's save.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.application import LedgerApplication
from ledger.domain import LedgerAggregate
from ledger.domain.experiment import (
    DIRECTORY_ID,
    Experiment,
    ExperimentDirectory,
    check_experiment_name,
)
from ledger.domain.tracking import (
    ARTIFACTS_SCHEME,
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    check_experiment_id,
    check_text,
    experiment_aggregate_id,
    experiment_artifact_location,
)
from ledger.errors import InvalidInputError, NotFoundError

MAX_ARTIFACT_LOCATION = 2048


def first_use() -> tuple[ExperimentDirectory, Experiment]:
    """The directory of experiment names, and the default experiment it starts with."""
    default = Experiment.create(
        DEFAULT_EXPERIMENT_ID,
        DEFAULT_EXPERIMENT_NAME,
        experiment_artifact_location(DEFAULT_EXPERIMENT_ID),
        {},
    )
    return ExperimentDirectory.create(), default


def load_experiment(
    app: LedgerApplication, experiment_id: str, *, for_update: bool = False
) -> tuple[Experiment, list[LedgerAggregate]]:
    """The experiment (NotFoundError when there is none), and what the command must save
    with its own changes: the default experiment and the directory, on first use."""
    experiment_id = check_experiment_id(experiment_id)
    found = app.find(Experiment, experiment_aggregate_id(experiment_id), for_update=for_update)
    if found is not None:
        return found, []
    if experiment_id == DEFAULT_EXPERIMENT_ID and not app.exists(DIRECTORY_ID):
        directory, default = first_use()
        return default, [directory]
    raise NotFoundError(f"experiment {experiment_id} does not exist")


def load_directory(app: LedgerApplication) -> tuple[ExperimentDirectory, list[LedgerAggregate]]:
    """The directory of names (for update), and the default experiment on first use."""
    directory = app.find(ExperimentDirectory, DIRECTORY_ID, for_update=True)
    if directory is not None:
        return directory, []
    directory, default = first_use()
    return directory, [default]


def check_artifact_location(location: str) -> str:
    """ "" (the server's own location) or a location under ``mlflow-artifacts:/``: the ledger
    holds the files of every experiment, served by its artifact proxy."""
    check_text("artifact_location", location, MAX_ARTIFACT_LOCATION)
    if location and not location.startswith(f"{ARTIFACTS_SCHEME}/"):
        raise InvalidInputError(
            f"artifact_location {location[:100]!r} is not served by the ledger: leave it out "
            f"(the ledger keeps the files) or give one under {ARTIFACTS_SCHEME}/"
        )
    return location


class ExperimentCommands:
    """Commands for MLflow experiments (reads go through the mlflow view)."""

    def __init__(self, application: LedgerApplication) -> None:
        self._app = application

    def create(
        self,
        name: str,
        *,
        artifact_location: str = "",
        tags: dict[str, str] | None = None,
        reason: str = "",
    ) -> Experiment:
        """A new experiment, numbered after the last one; its name must be free."""
        check_experiment_name(name)
        check_artifact_location(artifact_location)

        def command() -> Experiment:
            directory, created = load_directory(self._app)
            experiment_id = directory.claim_new(name)
            location = artifact_location or experiment_artifact_location(experiment_id)
            experiment = Experiment.create(experiment_id, name, location, tags or {})
            self._app.save(directory, *created, experiment)
            return experiment

        return self._app.execute(reason, command)

    def rename(self, experiment_id: str, name: str, *, reason: str = "") -> Experiment:
        check_experiment_name(name)

        def command() -> Experiment:
            experiment, created = load_experiment(self._app, experiment_id, for_update=True)
            experiment.require_active("renamed")
            if name == experiment.name:
                return experiment
            # The directory exists with any experiment; on first use it came with the default.
            directory = created[0] if created else load_directory(self._app)[0]
            assert isinstance(directory, ExperimentDirectory)
            directory.rename(experiment.experiment_id, experiment.name, name)
            experiment.rename(name)
            self._app.save(directory, experiment)
            return experiment

        return self._app.execute(reason, command)

    def delete(self, experiment_id: str, *, reason: str = "") -> Experiment:
        """Mark the experiment deleted: its runs read as deleted too, and nothing can be
        logged to it until it is restored. It keeps its name."""
        return self._change(experiment_id, Experiment.delete, reason)

    def restore(self, experiment_id: str, *, reason: str = "") -> Experiment:
        return self._change(experiment_id, Experiment.restore, reason)

    def set_tag(self, experiment_id: str, key: str, value: str, *, reason: str = "") -> Experiment:
        return self._change(experiment_id, lambda e: e.set_tag(key, value), reason)

    def delete_tag(self, experiment_id: str, key: str, *, reason: str = "") -> Experiment:
        return self._change(experiment_id, lambda e: e.remove_tag(key), reason)

    def _change(
        self, experiment_id: str, change: Callable[[Experiment], object], reason: str
    ) -> Experiment:
        def command() -> Experiment:
            experiment, created = load_experiment(self._app, experiment_id, for_update=True)
            change(experiment)
            self._app.save(*created, experiment)
            return experiment

        return self._app.execute(reason, command)
