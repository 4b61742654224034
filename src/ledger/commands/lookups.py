"""Loading the aggregates more than one command group reads, inside a command."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from ledger.application import LedgerApplication
from ledger.domain.endpoint import Endpoint, endpoint_id
from ledger.domain.job import Job
from ledger.domain.model import Model, ModelVersion, model_id, model_version_id
from ledger.domain.versioned import AssetVersion, VersionedAsset
from ledger.errors import InvalidInputError, NotFoundError
from ledger.refs import Ref, check_name, parse_ref

V = TypeVar("V", bound=VersionedAsset)


class Lookups:
    """Models, versions, endpoints, jobs and asset versions by name or reference."""

    def __init__(self, application: LedgerApplication) -> None:
        self._app = application

    def model(self, name: str) -> Model:
        """A live model (a deleted or renamed one is not found)."""
        check_name(name, "model name")
        model = self._app.load(Model, model_id(name), f"model {name!r}")
        if model.deleted:
            was = f"renamed to {model.renamed_to!r}" if model.renamed_to else "deleted"
            raise NotFoundError(f"model {name!r} does not exist (it was {was})")
        return model

    def model_version(self, ref_text: str) -> ModelVersion:
        """Resolve ``name`` (latest live version), ``name:3`` or ``name@alias``."""
        return self.resolve(parse_ref(ref_text))

    def resolve(self, ref: Ref) -> ModelVersion:
        model = self.model(ref.name)
        if ref.alias is not None:
            if ref.alias not in model.aliases:
                raise NotFoundError(f"model {ref.name!r} has no alias {ref.alias!r}")
            number = model.aliases[ref.alias]
        elif ref.version is not None:
            number = ref.version
        else:
            return self._latest_live_version(model)
        return self.version(ref.name, number)

    def version(self, name: str, number: int) -> ModelVersion:
        return self._app.load(
            ModelVersion, model_version_id(name, number), f"model version {name}:{number}"
        )

    def _latest_live_version(self, model: Model) -> ModelVersion:
        for number in range(model.latest_version, 0, -1):
            version = self.version(model.name, number)
            if version.status != "deleted":
                return version
        raise NotFoundError(f"model {model.name!r} has no live versions")

    def endpoint(self, name: str) -> Endpoint:
        return self._app.load(Endpoint, endpoint_id(name), f"endpoint {name!r}")

    def job(self, job_id: str) -> Job:
        try:
            uid = uuid.UUID(job_id)
        except ValueError:
            raise InvalidInputError(f"invalid job id {job_id!r}") from None
        return self._app.load(Job, uid, f"job {job_id}")

    def asset_version(
        self, cls: type[V], id_of: Callable[[str], uuid.UUID], ref_text: str
    ) -> tuple[V, AssetVersion]:
        """Resolve ``name`` (latest) or ``name:version`` of an environment, data or pipeline."""
        ref = parse_ref(ref_text, allow_alias=False)
        asset = self._app.load(cls, id_of(ref.name), f"{cls.kind} {ref.name!r}")
        return asset, asset.get_version(ref.version)

    def exact_asset_ref(
        self, cls: type[V], id_of: Callable[[str], uuid.UUID], ref_text: str
    ) -> str:
        """``name`` or ``name:version`` as the exact ``name:version`` it stands for."""
        asset, version = self.asset_version(cls, id_of, ref_text)
        return f"{asset.name}:{version['version']}"
