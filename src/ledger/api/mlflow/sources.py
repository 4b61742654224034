"""What an MLflow ``create_model_version`` registers: the files behind its ``source``
(an artifact location logged to this server) and what the run that made them recorded.

A source is ``mlflow-artifacts:/<path>`` (also as ``mlflow-artifacts://host:port/<path>``
or ``http(s)://host/api/2.0/mlflow-artifacts/artifacts/<path>``), ``runs:/<run>/<path>``,
``models:/m-<id>`` (a logged model) or ``models:/<name>/<version>`` / ``models:/<name>@alias``
(a registered version, as ``copy_model_version`` sends). Its files are the blobs already
in the artifact store: registering copies nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import isfinite
from typing import Any
from urllib.parse import unquote, urlsplit

from ledger.api.mlflow.errors import INVALID_PARAMETER_VALUE, MlflowError
from ledger.api.services import ApiServices
from ledger.artifacts.paths import FileEntry, check_no_clashes, safe_relative_path
from ledger.artifacts.store import ArtifactStore
from ledger.errors import InvalidInputError, NotFoundError
from ledger.mlmodel import describe_model
from projections.views import Views

ARTIFACTS_ROUTE = "/api/2.0/mlflow-artifacts/artifacts"
MODELS_FOLDER = "ledger/models"
DATASET_FIELDS = ("name", "digest", "source_type", "source")


@dataclass(frozen=True)
class ModelSource:
    """A logged model's directory as stored blobs, with its flavor and signature (read from
    its MLmodel file) and the run's latest metrics, parameters and dataset inputs."""

    files: list[FileEntry]
    flavor: str = "custom"  # the ledger's flavor: onnx, sklearn, pytorch or custom
    signature: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    model_id: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    datasets: list[dict[str, str]] = field(default_factory=list)
    artifact_path: str = ""  # where the files are, under mlflow-artifacts:/


def resolve_source(services: ApiServices, source: str, run_id: str, model_id: str) -> ModelSource:
    """The files and run record behind ``source`` (``mlflow-artifacts:/...``, ``models:/m-...``
    or ``runs:/RUN/path``). Raises MlflowError(INVALID_PARAMETER_VALUE) for a source this
    server does not hold, RESOURCE_DOES_NOT_EXIST for an unknown run or logged model.
    Blocking: call it from a worker thread. It reads the views once they include every
    tracking write this server finished (the client's run and uploads just before)."""
    services.include_writes(services.source_writes)
    with services.pool.views() as views:
        return SourceReader(views, services.ledger.artifacts).resolve(source, run_id, model_id)


def artifact_path_of(uri: str) -> str | None:
    """The proxy path an artifact URI names (``""``: the root), None when it names none."""
    parts = urlsplit(uri)
    if parts.scheme == "mlflow-artifacts":
        path = parts.path
    elif parts.scheme in ("http", "https") and ARTIFACTS_ROUTE in parts.path:
        path = parts.path.split(ARTIFACTS_ROUTE, 1)[1]
        if path and not path.startswith("/"):
            return None  # e.g. .../artifactsX: another route
    else:
        return None
    path = unquote(path).strip("/")
    return safe_relative_path(path) if path else ""


class SourceReader:
    """Resolves sources on one open set of views."""

    def __init__(self, views: Views, store: ArtifactStore) -> None:
        self.views = views
        self.store = store

    def resolve(self, source: str, run_id: str, model_id: str) -> ModelSource:
        run_id, model_id = run_id.strip(), model_id.strip()
        if source.startswith("models:/"):
            target = source.removeprefix("models:/").strip("/")
            if "/" not in target and "@" not in target:  # a logged model's id
                model_id = model_id or target
                return self._from_logged_model(source, target, run_id, model_id)
            return self._from_registered(source, target, run_id, model_id)
        if source.startswith("runs:/"):
            run, _, subpath = source.removeprefix("runs:/").partition("/")
            run_id = run_id or run
            uri = str(self.views.mlflow_run(run)["artifact_uri"]).rstrip("/")
            return self._from_location(source, f"{uri}/{subpath}", run_id, model_id)
        return self._from_location(source, source, run_id, model_id)

    def _from_logged_model(
        self, source: str, logged_id: str, run_id: str, model_id: str
    ) -> ModelSource:
        logged = self.views.mlflow_logged_model(logged_id)
        run_id = run_id or str(logged.get("source_run_id") or "")
        return self._from_location(source, str(logged["artifact_location"]), run_id, model_id)

    def _from_location(self, source: str, uri: str, run_id: str, model_id: str) -> ModelSource:
        path = self._path_of(source, uri)
        if path.split("/", 2)[:2] == MODELS_FOLDER.split("/") and path.count("/") >= 3:
            _, _, name, number = path.split("/", 3)
            if "/" not in number:
                return self._from_registered(source, f"{name}/{number}", run_id, model_id)
        files = self._files_at(source, path)
        try:
            flavor, signature = describe_model(self.store, files)
        except InvalidInputError as error:
            raise _refused(source, str(error)) from None
        if not run_id and model_id:
            run_id = self._run_of_logged_model(model_id)
        return self._with_run(
            ModelSource(files, flavor, signature, run_id, model_id, artifact_path=path)
        )

    def _path_of(self, source: str, uri: str) -> str:
        try:
            path = artifact_path_of(uri)
        except InvalidInputError as error:
            raise _refused(source, f"its path is not a safe relative path ({error})") from None
        if path is None:
            raise _refused(
                source,
                "it is not an artifact location of this server (use mlflow-artifacts:/..., "
                "runs:/RUN_ID/PATH, models:/m-ID or models:/NAME/VERSION)",
            )
        if not path:
            raise _refused(source, "it names the root of the artifact store, not a model")
        return path

    def _files_at(self, source: str, path: str) -> list[FileEntry]:
        found = self.views.tracked_artifacts(path)
        if not found:
            try:
                single = self.views.tracked_artifact(path)
            except NotFoundError:
                raise _refused(source, f"no files were uploaded under {path!r}") from None
            found = [{**single, "path": path.rsplit("/", 1)[-1]}]
        files = [FileEntry(f["path"], f["sha256"], int(f["size"])) for f in found]
        try:
            check_no_clashes([f.path for f in files])
        except InvalidInputError as error:
            raise _refused(source, str(error)) from None
        return files

    def _from_registered(self, source: str, ref: str, run_id: str, model_id: str) -> ModelSource:
        name, slash, number = ref.partition("/")
        text = f"{name}:{number}" if slash else ref
        try:
            version = self.views.version(text)
        except (NotFoundError, InvalidInputError) as error:
            raise _refused(source, str(error)) from None
        if version["status"] == "deleted":
            raise _refused(source, f"model version {version['ref']} is deleted")
        files = [FileEntry(f["path"], f["sha256"], f["size"]) for f in version["files"]]
        found = ModelSource(
            files,
            version["flavor"],
            version["signature"],
            run_id,
            model_id,
            metrics=dict(version["metrics"]),
            artifact_path=f"{MODELS_FOLDER}/{version['model']}/{version['version']}",
        )
        return self._with_run(found) if run_id else found

    def _run_of_logged_model(self, model_id: str) -> str:
        return str(self.views.mlflow_logged_model(model_id).get("source_run_id") or "")

    def _with_run(self, found: ModelSource) -> ModelSource:
        """``found`` with its run's latest metrics, parameters and dataset inputs."""
        if not found.run_id:
            return found
        run = self.views.mlflow_run(found.run_id)
        datasets = [
            {key: str(item.get(key) or "") for key in DATASET_FIELDS}
            for item in run.get("inputs") or []
        ]
        # A version's metrics are finite numbers; MLflow also logs NaN and infinities.
        finite = {k: float(v) for k, v in run["metrics"].items() if _finite(v)}
        return replace(
            found,
            metrics={**found.metrics, **finite},
            params={k: str(v) for k, v in run["params"].items()},
            datasets=datasets,
        )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and isfinite(value)


def _refused(source: str, why: str) -> MlflowError:
    return MlflowError(INVALID_PARAMETER_VALUE, f"cannot register source {source[:500]!r}: {why}")
