"""Environments, data assets and pipelines: named assets versioned by content digest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from uuid import UUID

from ledger.application import LedgerApplication
from ledger.artifacts.paths import local_path
from ledger.commands.lookups import Lookups
from ledger.domain.data_asset import DataAsset, data_asset_id
from ledger.domain.environment import Environment, environment_id
from ledger.domain.pipeline import Pipeline, pipeline_id, validate_dag
from ledger.domain.versioned import AssetVersion, VersionedAsset
from ledger.errors import InvalidInputError, RuleViolationError
from ledger.pipeline_code import snapshot_code
from ledger.pipeline_spec import parse_pipeline_spec
from ledger.refs import check_name
from ledger.specs import EnvironmentSpec, check_json_value, content_digest

if TYPE_CHECKING:
    from ledger.data_profile import DatasetProfile

V = TypeVar("V", bound=VersionedAsset)


@dataclass(frozen=True)
class RegisteredVersion:
    """The outcome of registering content: its version, and whether it was new."""

    name: str
    version: int
    digest: str
    created: bool

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class ProfiledVersion:
    """The outcome of ``profile_data``: the version's sketch, and whether it was new."""

    name: str
    version: int
    sketch: dict[str, Any]
    created: bool

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


class AssetCommands:
    """Commands and queries for environments, data assets and pipelines."""

    def __init__(self, application: LedgerApplication, lookups: Lookups) -> None:
        self._app = application
        self._lookups = lookups

    def _register_content(
        self,
        cls: type[V],
        asset_id: UUID,
        name: str,
        content: dict[str, Any],
        digest: str,
        reason: str,
        same: Callable[[AssetVersion], bool] | None = None,
    ) -> RegisteredVersion:
        """Add a version unless an equal one exists (same digest, or ``same``): reuse it."""
        is_same = same or (lambda existing: existing["digest"] == digest)

        def command() -> RegisteredVersion:
            asset = self._app.find(cls, asset_id) or cls._create(
                cls.Created, id=asset_id, name=name, origin=""
            )
            existing = next((v for v in asset.versions if is_same(v)), None)
            if existing is not None:
                return RegisteredVersion(name, existing["version"], digest, created=False)
            version = asset.add_version(digest, content)
            self._app.save(asset)
            return RegisteredVersion(name, version, digest, created=True)

        return self._app.execute(reason, command)

    # -- environments ------------------------------------------------------------------

    def register_environment(
        self, name: str, spec: EnvironmentSpec, *, reason: str = ""
    ) -> RegisteredVersion:
        """Register an environment spec; an identical spec returns its existing version."""
        check_name(name, "environment name")
        content = check_json_value(spec.model_dump(mode="json"), "environment spec")
        return self._register_content(
            Environment, environment_id(name), name, content, content_digest(content), reason
        )

    def environment_version(self, ref: str) -> AssetVersion:
        """Resolve ``name`` (latest) or ``name:version`` to that environment version."""
        return self._lookups.asset_version(Environment, environment_id, ref)[1]

    # -- data assets -----------------------------------------------------------------------

    def register_data(
        self, name: str, source: Path | str, *, description: str = "", reason: str = ""
    ) -> RegisteredVersion:
        """Profile the CSV/Parquet data at ``source`` (a local file or directory, or an
        object by URL: ``s3://``, ``az://``, ``gs://``) and record it as a new version.

        An object is read as it streams (digest, profile, sketch), never copied; the
        version's URI is its URL. The same data at the same location returns the existing
        version.
        """
        # Imported here: pyarrow takes a noticeable time to load and only this needs it.
        from ledger.data_objects import DataObject, data_source
        from ledger.data_profile import digest_path, profile_dataset

        check_name(name, "data asset name")
        data = data_source(source)
        if isinstance(data, DataObject):
            profile = self._with_sketch(data.url, profile_dataset(data.url))
            digest = data.digest()
            data.check_unchanged()  # the profile, sketch and digest are of the same bytes
            return self._record_data(name, data.url, digest, profile, description, reason)
        path = data
        if not path.exists():
            raise InvalidInputError(f"no such file or directory: {path}")
        profile = self._with_sketch(path, profile_dataset(path))
        return self._record_data(
            name, path.resolve().as_uri(), digest_path(path), profile, description, reason
        )

    def register_data_upload(
        self, name: str, reader: BinaryIO, filename: str, *, description: str = "", reason: str = ""
    ) -> RegisteredVersion:
        """Profile an uploaded CSV/Parquet file (``filename`` tells the format) and keep it
        in the artifact store (``data/<sha256>/<file name>``), writing it once; the
        version's URI names the kept file. A file that cannot be profiled is not kept."""
        from ledger.data_profile import profile_dataset

        check_name(name, "data asset name")
        with self._app.artifacts.receiving_data(reader, filename) as received:
            try:
                profile = self._with_sketch(received.path, profile_dataset(received.path))
            except InvalidInputError as error:  # name the upload, not the server's folder
                raise InvalidInputError(
                    str(error).replace(str(received.path), received.path.name)
                ) from None
            kept = received.keep()
        return self._record_data(name, kept, received.digest, profile, description, reason)

    def _record_data(
        self,
        name: str,
        uri: str,
        digest: str,
        profile: Any,
        description: str,
        reason: str,
    ) -> RegisteredVersion:
        content = {"uri": uri, "description": description, "profile": profile}
        return self._register_content(
            DataAsset,
            data_asset_id(name),
            name,
            content,
            digest,
            reason,
            same=lambda v: v["digest"] == digest and v["content"]["uri"] == content["uri"],
        )

    def _with_sketch(self, source: Path | str, profile: DatasetProfile) -> DatasetProfile:
        """``profile`` with the data's sketch, streamed from ``source`` (a path or an
        object's URL) and stored as a blob."""
        from ledger.data_sketch import sketch_dataset, store_sketch

        profile["sketch"] = store_sketch(self._app.artifacts, sketch_dataset(source, profile))
        return profile

    def data_version(self, ref: str) -> AssetVersion:
        return self._lookups.asset_version(DataAsset, data_asset_id, ref)[1]

    def profile_data(self, ref: str, *, reason: str = "") -> ProfiledVersion:
        """Give a data asset version registered without a sketch its sketch, read from its
        URI; a version that has one is answered as it is, and nothing is written.

        Refused when the data is gone or no longer has the digest it was registered with.
        """
        from ledger.data_sketch import sketch_dataset, store_sketch

        asset, version = self._lookups.asset_version(DataAsset, data_asset_id, ref)
        number, profile = version["version"], version["content"]["profile"]
        if "sketch" in profile:
            return ProfiledVersion(asset.name, number, profile["sketch"], created=False)
        path = _registered_data(asset.name, version)
        sketch = dict(store_sketch(self._app.artifacts, sketch_dataset(path, profile)))

        def command() -> ProfiledVersion:
            current = self._app.load(DataAsset, asset.id, f"data asset {asset.name!r}")
            kept = current.get_version(number)["content"]["profile"].get("sketch")
            if kept is not None:  # profiled meanwhile by another writer
                return ProfiledVersion(asset.name, number, kept, created=False)
            current.add_sketch(number, sketch)
            self._app.save(current)
            return ProfiledVersion(asset.name, number, sketch, created=True)

        return self._app.execute(reason, command)

    # -- pipelines ---------------------------------------------------------------------------

    def register_pipeline(
        self, name: str, spec: dict[str, Any], *, code_dir: Path | None = None, reason: str = ""
    ) -> RegisteredVersion:
        """Register a pipeline spec; an identical spec (and code) returns its version.

        ``code_dir``: a directory whose files are stored with the version, so a
        job runs, and a rerun runs again, exactly this code.
        """
        check_name(name, "pipeline name")
        check_json_value(spec, "pipeline spec")
        if code_dir is not None:
            spec = {**spec, "code": snapshot_code(self._app.artifacts, code_dir)}
        parsed = parse_pipeline_spec(spec)
        if parsed.code is not None:
            missing = [f.path for f in parsed.code.files if not self._app.artifacts.has(f.sha256)]
            if missing:
                raise InvalidInputError(f"pipeline code files are not stored: {missing[:5]}")
        content = parsed.model_dump(mode="json")
        validate_dag(content)
        return self._register_content(
            Pipeline, pipeline_id(name), name, content, content_digest(content), reason
        )

    def clone_pipeline(
        self, source_ref: str, new_name: str, *, reason: str = ""
    ) -> RegisteredVersion:
        """Start pipeline ``new_name`` from a version of another; the source is untouched."""
        check_name(new_name, "pipeline name")
        source, version = self._lookups.asset_version(Pipeline, pipeline_id, source_ref)
        origin = f"{source.name}:{version['version']}"

        def command() -> RegisteredVersion:
            if self._app.exists(pipeline_id(new_name)):
                raise RuleViolationError(f"pipeline {new_name!r} already exists")
            clone = Pipeline.create(new_name, cloned_from=origin)
            number = clone.add_version(version["digest"], version["content"])
            self._app.save(clone)
            return RegisteredVersion(new_name, number, version["digest"], created=True)

        return self._app.execute(reason, command)

    def pipeline_version(self, ref: str) -> AssetVersion:
        return self._lookups.asset_version(Pipeline, pipeline_id, ref)[1]


def _registered_data(name: str, version: AssetVersion) -> Path | str:
    """Where a data asset version's data is (a path, or an object's URL), checked to be the
    data it was registered with."""
    from ledger.data_objects import is_data_url, open_data_object
    from ledger.data_profile import digest_path

    label = f"data asset {name}:{version['version']}"
    uri: str = version["content"]["uri"]
    changed = (
        f"the data of {label} changed since it was registered ({{}} no longer has sha256 "
        f"{version['digest']}); register it as a new version instead"
    )
    if is_data_url(uri) and not uri.startswith("file:"):
        try:
            data = open_data_object(uri)
        except InvalidInputError as error:
            raise RuleViolationError(f"the data of {label} is gone: {error}") from None
        if data.digest() != version["digest"]:
            raise RuleViolationError(changed.format(uri))
        return uri
    path = local_path(uri)
    if not path.exists():
        raise RuleViolationError(f"the data of {label} is gone: {path} does not exist")
    if digest_path(path) != version["digest"]:
        raise RuleViolationError(changed.format(path))
    return path
