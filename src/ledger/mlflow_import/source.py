"""An MLflow registry as the import reads it, through MLflow's own client.

The client talks to a tracking server (``http(s)://``, ``databricks``) or straight to its
database (``sqlite:///``, ``postgresql://``), reads the token and credentials from the
usual ``MLFLOW_TRACKING_*`` variables, and downloads files from every artifact scheme.
MLflow is imported only here, and only when an import runs: the rest of the ledger works
without it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import translate
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ledger.errors import InvalidInputError, LedgerError
from ledger.logging import get_logger
from ledger.mlmodel import MLMODEL, parse_mlmodel

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = get_logger(__name__)
INSTALL_HINT = (
    "`ledger import mlflow` needs MLflow's client: install the `mlflow` extra "
    "(pip install 'lifecycle-ledger[mlflow]')"
)
# An unreachable server fails after this many retries unless MLFLOW_HTTP_REQUEST_MAX_RETRIES
# says otherwise (MLflow's own default, 7, waits about four minutes); a rerun resumes.
DEFAULT_MAX_RETRIES = "2"
PAGE_SIZE = 1000
ERROR_LENGTH = 300


class MlflowSourceError(LedgerError):
    """MLflow could not be read: unreachable, credentials refused, a file missing."""


@dataclass(frozen=True)
class SourceVersion:
    """One MLflow model version, as the import records it."""

    number: int
    source: str
    run_id: str
    model_id: str
    status: str  # READY, PENDING_REGISTRATION or FAILED_REGISTRATION
    description: str
    tags: dict[str, str]
    user_id: str
    created_at: str  # ISO 8601, UTC


@dataclass(frozen=True)
class SourceModel:
    """One MLflow registered model with its versions (ascending) and aliases."""

    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]
    created_at: str
    versions: list[SourceVersion] = field(default_factory=list)

    @property
    def last_number(self) -> int:
        return self.versions[-1].number if self.versions else 0


def public_uri(uri: str) -> str:
    """The tracking URI as recorded in the ledger: no credentials, no trailing slash."""
    uri = uri.strip()
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        uri = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return uri.rstrip("/")


def name_matcher(pattern: str) -> re.Pattern[str]:
    """``--models``: a glob (``*``, ``?``, ``[...]``), where SQL LIKE's ``%`` means ``*``
    too (``_`` stays a plain character: names often hold one)."""
    return re.compile(translate(pattern.replace("%", "*")))


def iso_millis(timestamp_ms: int | None) -> str:
    if not timestamp_ms:
        return ""
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def read_mlmodel(directory: Path) -> tuple[str, dict[str, Any]]:
    """The ledger flavor and the signature an MLmodel file declares (``custom`` and none
    when it is missing or unreadable: the files are imported all the same)."""
    try:
        return parse_mlmodel((directory / MLMODEL).read_bytes())
    except (OSError, InvalidInputError):
        return "custom", {}


UNREACHABLE = ("Failed to establish a new connection", "NameResolutionError", "ConnectTimeout")


def problem(error: Exception, uri: str) -> str:
    """One line for what went wrong talking to MLflow at ``uri``."""
    text = str(getattr(error, "message", error)).strip() or type(error).__name__
    if not (type(error).__module__.startswith("mlflow") or isinstance(error, OSError)):
        text = f"{type(error).__name__}: {text}"  # an artifact store's own error
    if any(sign in text for sign in UNREACHABLE):
        cause = re.search(r"\[Errno -?\d+\] ([^'\")]+)|(Failed to resolve '[^']+')", text)
        reason = next((group for group in cause.groups() if group), "") if cause else ""
        return f"cannot reach MLflow at {uri}" + (f": {reason}" if reason else "")
    first_line = text.splitlines()[0][:ERROR_LENGTH]
    if re.search(r"error code (401|403)\b|UNAUTHENTICATED|PERMISSION_DENIED", text):
        return (
            f"MLflow at {uri} refused access ({first_line}); set MLFLOW_TRACKING_TOKEN, or "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    return f"MLflow at {uri}: {first_line}"


@contextmanager
def _quick_failure() -> Iterator[None]:
    """MLflow's retry count for the duration of an import, unless the user set one."""
    key = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
    if key in os.environ:
        yield
        return
    os.environ[key] = DEFAULT_MAX_RETRIES
    try:
        yield
    finally:
        os.environ.pop(key, None)


class MlflowRegistry:
    """The models of one MLflow registry, and the files of their versions."""

    def __init__(self, tracking_uri: str) -> None:
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise MlflowSourceError(INSTALL_HINT) from None
        self.tracking_uri = tracking_uri.strip()
        if not self.tracking_uri:
            raise InvalidInputError("the MLflow tracking URI is empty")
        self.uri = public_uri(self.tracking_uri)
        database = self.tracking_uri.removeprefix("sqlite:///")
        if database != self.tracking_uri and not Path(database).is_file():
            # MLflow would create an empty registry there
            raise InvalidInputError(f"no MLflow database at {database}")
        with self.reading("the tracking URI"):
            self._client: MlflowClient = MlflowClient(self.tracking_uri, self.tracking_uri)

    @contextmanager
    def reading(self, what: str) -> Iterator[None]:
        """Errors inside (MLflow's, or an artifact store's: S3, Azure, GCS...) become one
        MlflowSourceError naming ``what`` was read; the whole of it is logged at debug."""
        try:
            with _quick_failure():
                yield
        except Exception as error:
            log.debug("reading MLflow failed", what=what, exc_info=True)
            raise MlflowSourceError(f"{problem(error, self.uri)} (reading {what})") from None

    def model_names(self, pattern: str = "*") -> list[str]:
        """The names of the registered models that match ``pattern``, sorted."""
        matcher = name_matcher(pattern)
        with self.reading("the registered models"):
            return sorted(name for name in self._model_names() if matcher.fullmatch(name))

    def _model_names(self) -> Iterator[str]:
        token = None
        while True:
            page = self._client.search_registered_models(max_results=PAGE_SIZE, page_token=token)
            yield from (model.name for model in page)
            token = page.token
            if not token:
                return

    def model(self, name: str) -> SourceModel:
        """One registered model, its aliases and every version it still has."""
        with self.reading(f"model {name!r}"):
            found = self._client.get_registered_model(name)
            versions = sorted(
                (self._version(v) for v in self._versions(name)), key=lambda v: v.number
            )
        return SourceModel(
            name=found.name,
            description=found.description or "",
            tags=dict(found.tags),
            aliases={alias: int(number) for alias, number in found.aliases.items()},
            created_at=iso_millis(found.creation_timestamp),
            versions=versions,
        )

    def _versions(self, name: str) -> Iterator[Any]:
        token = None
        quoted = name.replace("'", "\\'")
        while True:
            page = self._client.search_model_versions(
                f"name = '{quoted}'", max_results=PAGE_SIZE, page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

    @staticmethod
    def _version(found: Any) -> SourceVersion:
        return SourceVersion(
            number=int(found.version),
            source=found.source or "",
            run_id=found.run_id or "",
            model_id=getattr(found, "model_id", None) or "",
            status=found.status or "READY",
            description=found.description or "",
            tags=dict(found.tags),
            user_id=found.user_id or "",
            created_at=iso_millis(found.creation_timestamp),
        )

    def download(self, name: str, version: SourceVersion, dest: Path) -> Path:
        """The version's files under ``dest`` (a directory, or the one file it is)."""
        from mlflow.artifacts import download_artifacts

        with self.reading(f"the files of {name} version {version.number}"):
            location = self._client.get_model_version_download_uri(name, str(version.number))
            local = download_artifacts(
                artifact_uri=location,
                dst_path=str(dest),
                tracking_uri=self.tracking_uri,
                registry_uri=self.tracking_uri,
            )
        return Path(local)
