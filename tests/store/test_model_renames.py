"""Deleting and renaming a model (both stores): one atomic save with all its versions,
numbers never reused, deployed versions holding it, both names' histories kept, and the
views (incremental, rebuilt, as of a past position) equal to the aggregates."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.artifact_audit import referenced_files
from ledger.domain.model import Model, ModelVersion, model_id, model_version_id
from ledger.errors import AlreadyExistsError, InvalidInputError, NotFoundError, RuleViolationError
from ledger.ledger import Ledger
from projections.audit import AuditQuery
from projections.views import Views
from tests.aggregate_state import registry_from_aggregates


def _iris(ledger: Ledger, model_dir: Path) -> None:
    """iris: 1 archived, 2 tagged and aliased, 3 deleted, 4 ready; the model tagged."""
    ledger.models.create_model("iris", description="flowers", tags={"team": "ml"})
    for _ in range(4):
        ledger.models.register_version("iris", model_dir, tags={"k": "v"})
    ledger.models.archive_version("iris:1")
    ledger.models.set_tags("iris:2", {"stage": "prod"})
    ledger.models.describe("iris:2", "the best")
    ledger.models.set_alias("iris", "champ", 2)
    ledger.models.delete_version("iris:3")


def _version(ledger: Ledger, name: str, number: int) -> ModelVersion:
    """The version's aggregate, whatever became of its model."""
    found = ledger.find(ModelVersion, model_version_id(name, number))
    assert found is not None
    return found


def _views_equal_aggregates_and_a_rebuild(ledger: Ledger) -> dict[str, object]:
    with Views.open(ledger.settings) as views:
        incremental = views.registry()
        assert incremental == registry_from_aggregates(ledger)
        views.updater.rebuild(["registry"])
        assert views.registry() == incremental
        return incremental


def test_rename_moves_every_version_as_it_was(ledger: Ledger, model_dir: Path) -> None:
    _iris(ledger, model_dir)
    before = ledger.event_count()
    moved = ledger.models.rename_model("iris", "flora", reason="a better name")
    assert (moved.name, moved.latest_version, moved.description) == ("flora", 4, "flowers")
    assert (moved.tags, moved.aliases) == ({"team": "ml"}, {"champ": 2})
    statuses = [ledger.models.get_version(f"flora:{n}").status for n in range(1, 5)]
    assert statuses == ["archived", "ready", "deleted", "ready"]
    second = ledger.models.get_version("flora@champ")
    assert (second.number, second.description) == (2, "the best")
    assert second.tags == {"k": "v", "stage": "prod"}
    old = _version(ledger, "iris", 2)
    assert second.spec == old.spec and old.status == "deleted"  # its files, as registered
    with pytest.raises(NotFoundError, match="renamed to 'flora'"):
        ledger.models.get("iris")
    with pytest.raises(NotFoundError, match="renamed to 'flora'"):
        ledger.models.set_tags("iris:4", {"x": "y"})
    # One command: every event of the rename shares one correlation id.
    events = ledger.recorder.select_notifications(before + 1, 100)
    assert len(events) == 2 + 2 * 4
    incremental = _views_equal_aggregates_and_a_rebuild(ledger)
    assert set(incremental["models"]) == {"flora"}  # type: ignore[call-overload]

    with Views.open(ledger.settings) as views:
        past = views.registry(views.point_at(position=before))
        assert set(past["models"]) == {"iris"}  # the history keeps the old name
        trail = views.audit(AuditQuery(kind="model", name="iris", limit=100)).items
        assert [row["event_type"] for row in trail[-5:]] == ["Model.Renamed"] + [
            "ModelVersion.Renamed"
        ] * 4
        assert len({row["correlation_id"] for row in trail[-5:]}) == 1
        assert trail[-1]["reason"] == "a better name"
        lineage = views.lineage("model:flora:2", direction="upstream")
        assert ("model:iris:2", "model:flora:2", "renamed") in lineage.edges
    owners = {ref.owner for ref in referenced_files(ledger)}
    assert owners == {"model flora:1", "model flora:2", "model flora:4"}


def test_rename_refusals_write_nothing(ledger: Ledger, model_dir: Path) -> None:
    _iris(ledger, model_dir)
    ledger.models.create_model("wine")
    ledger.endpoints.create("shop", "online")
    before = ledger.event_count()
    with pytest.raises(AlreadyExistsError):
        ledger.models.rename_model("iris", "wine")
    with pytest.raises(InvalidInputError, match="already has that name"):
        ledger.models.rename_model("iris", "iris")
    with pytest.raises(InvalidInputError, match="invalid model name"):
        ledger.models.rename_model("iris", "no spaces")
    with pytest.raises(NotFoundError):
        ledger.models.rename_model("nope", "other")
    assert ledger.event_count() == before
    ledger.models.rename_model("wine", "vino")
    ledger.models.delete_model("vino")
    before = ledger.event_count()
    for used in ("wine", "vino"):  # renamed away, deleted: names with a history
        with pytest.raises(InvalidInputError, match="was used before"):
            ledger.models.rename_model("iris", used)
    assert ledger.event_count() == before
    ledger.endpoints.deploy("shop", "blue", "iris:4")
    before = ledger.event_count()
    with pytest.raises(RuleViolationError, match="cannot rename model version iris:4"):
        ledger.models.rename_model("iris", "flora")
    assert ledger.event_count() == before


def test_delete_ends_every_version_and_the_name_starts_again_after_them(
    ledger: Ledger, model_dir: Path
) -> None:
    _iris(ledger, model_dir)
    ledger.endpoints.create("shop", "online")
    ledger.endpoints.deploy("shop", "blue", "iris:2")
    before = ledger.event_count()
    with pytest.raises(RuleViolationError, match="deployment 'blue'"):
        ledger.models.delete_model("iris")
    assert ledger.event_count() == before
    ledger.endpoints.undeploy("shop", "blue")

    ledger.models.delete_model("iris", reason="retired")
    assert [_version(ledger, "iris", n).status for n in range(1, 5)] == ["deleted"] * 4
    found = ledger.find(Model, model_id("iris"))
    assert found is not None and found.deleted and (found.tags, found.aliases) == ({}, {})
    with pytest.raises(NotFoundError, match="it was deleted"):
        ledger.models.set_alias("iris", "champ", 2)
    with pytest.raises(NotFoundError, match="'iris' does not exist"):
        ledger.models.delete_model("iris")
    with pytest.raises(NotFoundError, match="registered model 'iris' does not exist"):
        ledger.models.register_stored_files("iris", lambda store: [], must_exist=True)
    _views_equal_aggregates_and_a_rebuild(ledger)
    assert referenced_files(ledger) == []

    again = ledger.models.create_model("iris", description="second life")
    assert (again.latest_version, again.description, again.tags) == (4, "second life", {})
    assert ledger.models.register_version("iris", model_dir).number == 5
    registry = _views_equal_aggregates_and_a_rebuild(ledger)
    versions = registry["models"]["iris"]["versions"]  # type: ignore[index]
    assert [v["status"] for v in versions.values()] == ["deleted"] * 4 + ["ready"]
    # Registering into a deleted model creates it again, as registering always does.
    ledger.models.delete_model("iris")
    assert ledger.models.register_version("iris", model_dir).number == 6
    _views_equal_aggregates_and_a_rebuild(ledger)
