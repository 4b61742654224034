"""The domain rules on the aggregates themselves, without a store.

These pin details that the store-level tests pass over and that mutation testing
(scripts/mutation.sh) showed could change unnoticed: the ids of named entities,
the boundaries of resource limits, and rules that must not record an event twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.utils import get_topic, resolve_topic

from ledger.domain.base import EventMeta, acting
from ledger.domain.data_asset import DataAsset
from ledger.domain.endpoint import Endpoint, Resources, endpoint_id, validate_resources
from ledger.domain.environment import Environment
from ledger.domain.model import (
    FLAVORS,
    Model,
    ModelVersion,
    VersionSpec,
    model_id,
    model_version_id,
)
from ledger.domain.pipeline import Pipeline
from ledger.domain.versioned import VersionedAsset
from ledger.errors import InvalidInputError, RuleViolationError


@pytest.fixture(autouse=True)
def meta() -> Iterator[EventMeta]:
    with acting(EventMeta(actor="tester")) as current:
        yield current


def resources(**changes: int) -> Resources:
    base: Resources = {"cpus": 1, "gpus": 0, "memory_mb": 1, "replicas": 1}
    return {**base, **changes}  # type: ignore[typeddict-item]


def spec(**changes: Any) -> VersionSpec:
    base: dict[str, Any] = {
        "files": [],
        "flavor": "onnx",
        "signature": {},
        "tags": {},
        "metrics": {},
        "description": "",
        "lineage": {},
    }
    return {**base, **changes}  # type: ignore[typeddict-item]


def endpoint(*deployments: str, kind: str = "online") -> Endpoint:
    created = Endpoint.create("ep", kind)
    for name in deployments:
        created.add_deployment(name, "m", 1, "py:1", resources())
    created.collect_events()
    return created


def test_ids_of_named_entities_are_stable_and_namespaced() -> None:
    # Existing stores address aggregates by these ids: they must never change.
    assert endpoint_id("x") == uuid.UUID("4cc352d2-15c3-5654-a998-2a9d766ad497")
    assert model_id("x") == uuid.UUID("badebd79-75e7-5c55-867a-661aa3c598bd")
    assert model_version_id("x", 1) == uuid.UUID("1e60c37d-1c75-50bf-ab2c-1d9ca7526db8")


@pytest.mark.parametrize(
    ("field", "value"), [("cpus", 0), ("gpus", -1), ("memory_mb", 0), ("replicas", 0)]
)
def test_resources_just_outside_their_bounds_are_refused(field: str, value: int) -> None:
    with pytest.raises(InvalidInputError, match=f"resources: {field}"):
        validate_resources(resources(**{field: value}))


def test_resources_at_their_bounds_are_accepted() -> None:
    validate_resources(resources(cpus=1, gpus=0, memory_mb=1, replicas=1))


def test_an_endpoint_records_what_it_was_created_and_deployed_with() -> None:
    created = Endpoint.create("ep", "batch")
    assert (created.name, created.kind, created.description) == ("ep", "batch", "")
    created.add_deployment("a", "m", 3, "py:2", resources(cpus=2))
    assert created.deployments["a"] == {
        "model": "m",
        "version": 3,
        "environment": "py:2",
        "resources": resources(cpus=2),
        "health": "pending",
        "health_detail": "",
    }


def test_a_batch_endpoint_moves_all_traffic_to_another_default() -> None:
    batch = endpoint("a", "b", kind="batch")
    batch.set_traffic({"b": 100})
    assert batch.traffic == {"b": 100}
    with pytest.raises(InvalidInputError) as refused:
        batch.set_traffic({"a": 50, "b": 50})
    assert str(refused.value) == (
        "a batch endpoint sends all traffic to one default deployment (name=100)"
    )


def test_weights_are_whole_percentages_up_to_100() -> None:
    two = endpoint("a", "b")
    with pytest.raises(
        InvalidInputError, match="mirror for 'b' must be between 0 and 100, got 101"
    ):
        two.set_mirror({"b": 101})
    two.set_mirror({"b": 100})
    assert two.mirror == {"b": 100}
    with pytest.raises(RuleViolationError) as refused:
        two.set_traffic({"a": 0, "b": 100})
    assert str(refused.value) == (
        "deployment 'b' receives mirrored traffic; clear its mirror before giving it live traffic"
    )


def test_health_is_recorded_with_an_empty_detail_by_default() -> None:
    one = endpoint("a")
    one.report_health("a", "healthy")
    assert (one.deployments["a"]["health"], one.deployments["a"]["health_detail"]) == (
        "healthy",
        "",
    )


@pytest.mark.parametrize(
    ("command", "label"),
    [
        (lambda e: e.set_traffic({"a": 100, "x": 0}), "traffic"),
        (lambda e: e.set_mirror({"x": 10}), "mirror"),
        (lambda e: e.report_health("x", "healthy"), "health"),
        (lambda e: e.remove_deployment("x"), "undeploy"),
    ],
)
def test_an_unknown_deployment_is_named_with_the_operation_and_the_known_ones(
    command: Any, label: str
) -> None:
    two = endpoint("a", "b")
    with pytest.raises(InvalidInputError) as refused:
        command(two)
    assert str(refused.value) == (
        f"{label}: endpoint 'ep' has no deployment 'x' (deployments: a, b)"
    )


def test_an_endpoint_without_deployments_says_so() -> None:
    with pytest.raises(
        InvalidInputError, match=r"has no deployment 'x', 'y' \(deployments: none\)"
    ):
        endpoint().set_mirror({"x": 1, "y": 1})


def test_setting_an_alias_or_tag_again_records_nothing() -> None:
    model = Model.register("m")
    assert (model.name, model.description, model.tags, model.aliases) == ("m", "", {}, {})
    model.set_alias("prod", 1)
    model.set_tag("k", "v")
    assert model.tags == {"k": "v"}
    model.collect_events()
    model.set_alias("prod", 1)
    model.set_tag("k", "v")
    assert model.collect_events() == []
    model.set_alias("prod", 2)
    assert model.aliases == {"prod": 2}


def test_archiving_twice_records_one_event_and_a_deleted_version_refuses_everything() -> None:
    version = ModelVersion.register("m", 1, spec())
    version.archive()
    version.collect_events()
    version.archive()
    assert version.collect_events() == []
    version.restore()
    assert version.status == "ready"
    version.collect_events()
    version.restore()  # restoring a ready version records nothing
    version.set_tag("k", "v")
    version.set_tag("k", "v")
    assert version.tags == {"k": "v"}
    assert len(version.collect_events()) == 1
    version.delete()
    commands = {
        "archive": version.archive,
        "restore": version.restore,
        "delete": version.delete,
        "tag": lambda: version.set_tag("k", "w"),
        "untag": lambda: version.remove_tag("k"),
    }
    for action, command in commands.items():
        with pytest.raises(RuleViolationError, match=f"^cannot {action} model version m:1: "):
            command()


@pytest.mark.parametrize("action", ["archive", "delete"])
def test_a_deployed_version_names_its_users_when_refusing(action: str) -> None:
    version = ModelVersion.register("m", 1, spec())
    version.attach_deployment("ep", "a")
    version.attach_deployment("ep", "b")
    with pytest.raises(RuleViolationError) as refused:
        getattr(version, action)()
    assert str(refused.value) == (
        f"cannot {action} model version m:1: it is used by deployment 'a' of endpoint 'ep', "
        "deployment 'b' of endpoint 'ep'; move its traffic away and undeploy it first"
    )


def test_an_unknown_flavor_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError) as refused:
        ModelVersion.register("m", 1, spec(flavor="pickle"))
    assert str(refused.value) == f"unknown flavor 'pickle'; expected one of {', '.join(FLAVORS)}"


def test_removing_a_tag_records_it_and_an_unknown_one_is_refused() -> None:
    model = Model.register("m")
    version = ModelVersion.register("m", 1, spec(tags={"k": "v", "keep": "1"}))
    model.set_tag("k", "v")
    for tagged, name in ((model, "model m"), (version, "model version m:1")):
        tagged.collect_events()
        tagged.remove_tag("k")
        assert "k" not in tagged.tags
        assert len(tagged.collect_events()) == 1
        with pytest.raises(InvalidInputError, match=f"^{name} has no tag 'k'$"):
            tagged.remove_tag("k")
    assert version.tags == {"keep": "1"}


@pytest.mark.parametrize(
    ("asset", "module"),
    [(Environment, "environment"), (DataAsset, "data_asset"), (Pipeline, "pipeline")],
)
def test_each_kind_of_versioned_asset_records_events_under_its_own_topics(
    asset: type[VersionedAsset], module: str
) -> None:
    # Logs already written hold these topics: they must keep resolving to the same classes.
    for name in ("Created", "VersionRegistered"):
        event_class = getattr(asset, name)
        topic = f"ledger.domain.{module}:{asset.__name__}.{name}"
        assert get_topic(event_class) == topic
        assert resolve_topic(topic) is event_class
        assert issubclass(event_class, asset.Event)
        assert issubclass(event_class, getattr(VersionedAsset, name))
    created = asset._create(asset.Created, id=uuid.uuid4(), name="x", origin="")
    created.add_version("d" * 64, {"k": 1})
    assert [type(e) for e in created.collect_events()] == [asset.Created, asset.VersionRegistered]
    assert created.latest == {"version": 1, "digest": "d" * 64, "content": {"k": 1}}
