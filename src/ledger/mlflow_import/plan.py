"""What importing an MLflow model would do, from what the ledger's views hold already.

The ledger hands out version numbers in sequence, so MLflow's numbers are kept by
registering every number from the ledger's next one up to MLflow's last: a number MLflow
no longer has (a deleted version) becomes a version registered deleted, with no files.
A version is imported already when the ledger's version of that number came from the
same registry (``origin.uri``) and the same artifact location (``origin.source``); any
other version below MLflow's last number would shift the numbers, and the model is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ledger.errors import InvalidInputError, NotFoundError
from ledger.mlflow_import.source import SourceModel, SourceVersion
from ledger.refs import check_name
from ledger.shapes import ModelOut, VersionOut

MLFLOW = "mlflow"
FAILED = "FAILED_REGISTRATION"
PENDING = "PENDING_REGISTRATION"


class RegistryReader(Protocol):
    """What planning reads of the ledger (the views: ``projections.views.Views``)."""

    def model(self, name: str) -> ModelOut: ...

    def versions(
        self, model: str, *, limit: int = 50, include_deleted: bool = False
    ) -> list[VersionOut]: ...


@dataclass
class ModelPlan:
    """One MLflow model against the ledger: what exists, what is still to register."""

    source: SourceModel
    uri: str
    ledger_model: ModelOut | None = None  # None: the model is created
    imported: dict[int, VersionOut] = field(default_factory=dict)  # from this registry
    to_register: list[int] = field(default_factory=list)  # ascending numbers
    refusal: str = ""

    @property
    def name(self) -> str:
        return self.source.name

    def source_version(self, number: int) -> SourceVersion | None:
        """MLflow's version of that number, or None where it has none (deleted there)."""
        for version in self.source.versions:
            if version.number == number:
                return version
        return None

    def is_gap(self, number: int) -> bool:
        """Whether that number is registered deleted (MLflow has no files for it)."""
        version = self.source_version(number)
        return version is None or version.status == FAILED

    @property
    def gaps(self) -> int:
        return sum(1 for number in self.to_register if self.is_gap(number))


def plan_model(source: SourceModel, reader: RegistryReader, uri: str) -> ModelPlan:
    """What importing ``source`` from the registry at ``uri`` does to the ledger now."""
    plan = ModelPlan(source, uri)
    try:
        check_name(source.name, "model name")
    except InvalidInputError as error:
        plan.refusal = f"{error}: the ledger cannot hold this name"
        return plan
    pending = [v.number for v in source.versions if v.status == PENDING]
    if pending:
        plan.refusal = (
            f"model {source.name!r}: MLflow is still registering version(s) "
            f"{_numbers(pending)}; import it once they are ready"
        )
        return plan
    try:
        plan.ledger_model = reader.model(source.name)
    except NotFoundError:
        plan.to_register = list(range(1, source.last_number + 1))
        return plan
    latest = plan.ledger_model["latest_version"]
    versions = {
        v["version"]: v
        for v in reader.versions(source.name, limit=max(latest, 1), include_deleted=True)
    }
    plan.imported = {n: v for n, v in versions.items() if _from(v, uri)}
    foreign = [
        n for n in range(1, min(latest, source.last_number) + 1) if not _same(plan, versions.get(n))
    ]
    if foreign:
        plan.refusal = (
            f"model {source.name!r}: ledger version(s) {_numbers(foreign)} did not come from "
            f"MLflow at {uri} (or differ from MLflow's): importing would shift MLflow's "
            "version numbers"
        )
        return plan
    plan.to_register = list(range(latest + 1, source.last_number + 1))
    return plan


def _from(version: VersionOut, uri: str) -> bool:
    origin = version["origin"]
    return origin.get("system") == MLFLOW and origin.get("uri") == uri


def _same(plan: ModelPlan, version: VersionOut | None) -> bool:
    """Whether the ledger's version is the import of MLflow's version of that number (or of
    its gap, or of a version MLflow deleted since)."""
    if version is None or not _from(version, plan.uri):
        return False
    if plan.is_gap(version["version"]):
        return True
    source = plan.source_version(version["version"])
    return source is not None and version["origin"].get("source") == source.source


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10]))
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
