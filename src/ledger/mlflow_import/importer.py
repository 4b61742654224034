"""Carrying out import plans with the ledger's commands.

Per model: create it (or bring its description and tags to MLflow's), register the missing
numbers in ascending order (files downloaded first: a version is all its files or nothing),
bring the versions imported before to MLflow's tags and descriptions (deleting those MLflow
deleted since), then set the aliases. Only what differs is written, so a rerun writes
nothing; a rerun after a crash goes on from the first number the ledger lacks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ledger.domain.model import Origin
from ledger.errors import LedgerError, RuleViolationError
from ledger.ledger import Ledger
from ledger.mlflow_import.plan import FAILED, MLFLOW, ModelPlan
from ledger.mlflow_import.source import (
    MlflowRegistry,
    MlflowSourceError,
    SourceVersion,
    read_mlmodel,
)


@dataclass
class ModelReport:
    """What the import did to one model."""

    name: str
    created: bool = False
    versions: int = 0  # registered with their files
    gaps: int = 0  # numbers MLflow no longer has, registered deleted
    deleted: int = 0  # imported before, deleted in MLflow since
    changes: int = 0  # tags, aliases and descriptions brought to MLflow's values
    refusal: str = ""

    @property
    def wrote(self) -> bool:
        return bool(self.created or self.versions or self.gaps or self.deleted or self.changes)


class RegistryImport:
    """Imports planned models into ``ledger`` from ``registry``, as the ledger's actor."""

    def __init__(self, ledger: Ledger, registry: MlflowRegistry) -> None:
        self.ledger = ledger
        self.registry = registry
        self.reason = f"imported from MLflow {registry.uri}"

    def run(self, plans: list[ModelPlan], on_version: Callable[[str], None]) -> list[ModelReport]:
        """Import every plan in turn; ``on_version(ref)`` after each registered number. A
        model the ledger refuses is reported and the others go on; MLflow failing stops
        the import (MlflowSourceError), leaving every version written whole."""
        reports = []
        for plan in plans:
            report = ModelReport(plan.name, refusal=plan.refusal)
            reports.append(report)
            if plan.refusal:
                continue
            try:
                self.apply(plan, report, on_version)
            except MlflowSourceError:
                raise
            except LedgerError as error:
                report.refusal = f"model {plan.name!r}: {error}"
        return reports

    def apply(
        self, plan: ModelPlan, report: ModelReport, on_version: Callable[[str], None]
    ) -> None:
        """Import one model (the plan says what the ledger holds of it already)."""
        source = plan.source
        if plan.ledger_model is None:
            self._create(plan)
            report.created = True
        else:
            report.changes += self._sync(
                source.name, plan.ledger_model["description"], plan.ledger_model["tags"],
                source.description, source.tags,
            )  # fmt: skip
        for number in plan.to_register:
            self._register(plan, number, report)
            on_version(f"{source.name}:{number}")
        aliases = dict(plan.ledger_model["aliases"]) if plan.ledger_model else {}
        for number, version in sorted(plan.imported.items()):
            found = plan.source_version(number)
            if version["status"] == "deleted":
                continue  # a gap, or deleted in the ledger since: nothing to bring over
            if found is not None and found.status != FAILED:
                report.changes += self._sync(
                    f"{source.name}:{number}", version["description"], version["tags"],
                    found.description, found.tags,
                )  # fmt: skip
            else:
                self._delete_since(plan, number, report)
                aliases = {a: v for a, v in aliases.items() if v != number}
        report.changes += self._set_aliases(source.name, aliases, source.aliases)

    def _create(self, plan: ModelPlan) -> None:
        source = plan.source
        origin: Origin = {"system": MLFLOW, "uri": plan.uri}
        if source.created_at:
            origin["created_at"] = source.created_at
        self.ledger.models.create_model(
            source.name,
            description=source.description,
            tags=source.tags,
            origin=origin,
            reason=self.reason,
        )

    def _register(self, plan: ModelPlan, number: int, report: ModelReport) -> None:
        found = plan.source_version(number)
        if plan.is_gap(number):
            version = self.ledger.models.register_gap(
                plan.name,
                description=_gap_description(number, found),
                origin=_origin(plan.uri, found),
                reason=self.reason,
            )
            report.gaps += 1
        else:
            assert found is not None
            with tempfile.TemporaryDirectory(prefix="ledger-mlflow-") as tmp:
                files = self.registry.download(plan.name, found, Path(tmp) / "files")
                flavor, signature = read_mlmodel(files if files.is_dir() else files.parent)
                version = self.ledger.models.register_version(
                    plan.name,
                    files,
                    flavor=flavor,
                    tags=found.tags,
                    description=found.description,
                    signature=signature,
                    origin=_origin(plan.uri, found),
                    reason=self.reason,
                )
            report.versions += 1
        if version.number != number:
            raise RuleViolationError(
                f"MLflow version {number} became ledger version {version.number}: another "
                "writer registered a version of this model during the import"
            )

    def _delete_since(self, plan: ModelPlan, number: int, report: ModelReport) -> None:
        self.ledger.models.delete_version(
            f"{plan.name}:{number}",
            reason=f"deleted in MLflow {plan.uri} since it was imported",
        )
        report.deleted += 1

    def _sync(
        self,
        ref: str,
        description: str,
        tags: dict[str, str],
        wanted_description: str,
        wanted_tags: dict[str, str],
    ) -> int:
        """Bring a model's or version's description and tags to MLflow's; changes made."""
        models = self.ledger.models
        changed = {k: v for k, v in wanted_tags.items() if tags.get(k) != v}
        removed = sorted(set(tags) - set(wanted_tags))
        if changed:
            models.set_tags(ref, changed, reason=self.reason)
        if removed:
            models.remove_tags(ref, removed, reason=self.reason)
        if description != wanted_description:
            models.describe(ref, wanted_description, reason=self.reason)
        return len(changed) + len(removed) + (description != wanted_description)

    def _set_aliases(self, name: str, aliases: dict[str, int], wanted: dict[str, int]) -> int:
        """Point the model's aliases where MLflow's point, removing those it lacks."""
        removed = sorted(set(aliases) - set(wanted))
        for alias in removed:
            self.ledger.models.remove_alias(name, alias, reason=self.reason)
        moved = {a: v for a, v in sorted(wanted.items()) if aliases.get(a) != v}
        for alias, number in moved.items():
            self.ledger.models.set_alias(name, alias, number, reason=self.reason)
        return len(removed) + len(moved)


def _origin(uri: str, version: SourceVersion | None) -> Origin:
    """Where a version came from: the registry, the artifact location, the run, and who
    made it when (the event's actor being the importer)."""
    origin: Origin = {"system": MLFLOW, "uri": uri}
    if version is None:
        return origin
    if version.status != FAILED:
        origin["source"] = version.source
    if version.run_id:
        origin["run_id"] = version.run_id
    if version.model_id:
        origin["model_id"] = version.model_id
    if version.user_id:
        origin["created_by"] = version.user_id
    if version.created_at:
        origin["created_at"] = version.created_at
    return origin


def _gap_description(number: int, version: SourceVersion | None) -> str:
    if version is None:
        return f"MLflow has no version {number} (deleted there before the import)"
    return f"MLflow version {number} failed to register: it has no files"
