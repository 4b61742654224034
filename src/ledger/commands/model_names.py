"""Deleting and renaming a model: every version changes with it, in one atomic save.

Aggregate ids derive from names (``model:NAME``, ``model-version:NAME:N``), so a rename
cannot relabel them: it *moves* the model. A new model aggregate under the new name
(``Model.RenamedFrom``) takes the description, tags, aliases and version counter, and each
version is started again under the new name with the same number (``RenamedFrom``: its
registration, tags, description and status); the old aggregates end with ``Renamed``
(deleted, pointing at the new name). Nothing is rewritten: both names' histories stay.

Because version ids derive from the name and number, a name that was ever used keeps its
numbering for good: a model created again under a deleted (or renamed-away) name continues
after its last version, and a rename onto such a name is refused (the moved versions would
need numbers that name already used).
"""

from __future__ import annotations

from ledger.application import LedgerApplication
from ledger.commands.lookups import Lookups
from ledger.domain.model import Model, ModelVersion, model_id
from ledger.errors import AlreadyExistsError, InvalidInputError


def _every_version(lookups: Lookups, model: Model) -> list[ModelVersion]:
    return [lookups.version(model.name, n) for n in range(1, model.latest_version + 1)]


def delete_model(app: LedgerApplication, lookups: Lookups, name: str) -> Model:
    """The command: delete ``name`` and its live versions (a deployed one refuses it all)."""
    model = lookups.model(name)
    versions = [v for v in _every_version(lookups, model) if v.status != "deleted"]
    for version in versions:
        version.delete()
    model.delete()
    app.save(model, *versions)
    return model


def rename_model(app: LedgerApplication, lookups: Lookups, name: str, new_name: str) -> Model:
    """The command: move ``name`` to ``new_name``; the model under its new name."""
    if new_name == name:
        raise InvalidInputError(f"model {name!r} already has that name")
    model = lookups.model(name)
    taken = app.find(Model, model_id(new_name))
    if taken is not None and not taken.deleted:
        raise AlreadyExistsError(f"model {new_name!r} already exists")
    if taken is not None:
        raise InvalidInputError(
            f"cannot rename {name!r} to {new_name!r}: that name was used before (its model "
            "was deleted or renamed) and the ledger keeps its history and version numbers; "
            f"choose a name never used, or create {new_name!r} again and register versions there"
        )
    versions = _every_version(lookups, model)
    moved = Model.renamed_from(model, new_name)
    moved_versions = [ModelVersion.renamed_from(v, new_name) for v in versions]
    for version in versions:
        version.rename_to(new_name)
    model.rename_to(new_name)
    app.save(moved, *moved_versions, model, *versions)
    return moved
