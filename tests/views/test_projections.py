"""The read side: views follow the log exactly once, match the aggregates, rebuild the same,
and answer search, lineage, audit and point-in-time queries."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.endpoint import Resources
from ledger.errors import InvalidInputError, NotFoundError
from ledger.ledger import Ledger
from ledger.shapes import committed_endpoint, committed_version
from ledger.specs import EnvironmentSpec
from ledger.storage.following import follow_log
from projections import updater as updater_module
from projections.audit import AuditQuery
from projections.base import Change
from projections.batches import OPTIMISTIC_TRIES
from projections.registry import RegistryProjection
from projections.search import SearchQuery
from projections.updater import ViewUpdater
from projections.views import Views
from tests.aggregate_state import registry_from_aggregates
from tests.conftest import StoreFactory, wait_for

RESOURCES: Resources = {"cpus": 2.0, "gpus": 1, "memory_mb": 4096, "replicas": 3}


@pytest.fixture
def views(ledger: Ledger) -> Iterator[Views]:
    opened = Views.open(ledger.settings)
    yield opened
    opened.close()


def lifecycle_steps(ledger: Ledger, model_dir: Path) -> list[Callable[[], object]]:
    """Models, tags, aliases, an endpoint with a canary, a deletion: a bit of everything."""
    register = ledger.models.register_version
    return [
        lambda: register("iris", model_dir, flavor="sklearn", tags={"team": "vision"}),
        lambda: register("iris", model_dir, flavor="onnx", tags={"team": "vision"}),
        lambda: register("iris", model_dir, flavor="sklearn"),
        lambda: register("irises", model_dir, flavor="pytorch", tags={"team": "nlp"}),
        lambda: ledger.models.set_tags("iris", {"owner": "ml-platform"}),
        lambda: ledger.models.set_tags("iris:2", {"stage": "prod"}),
        lambda: ledger.models.set_alias("iris", "champion", 1),
        lambda: ledger.models.set_alias("iris", "champion", 2, reason="better"),
        lambda: ledger.endpoints.create("shop", "online"),
        lambda: ledger.endpoints.deploy("shop", "blue", "iris:1"),
        lambda: ledger.endpoints.deploy("shop", "green", "iris:2", resources=RESOURCES),
        lambda: ledger.endpoints.set_traffic("shop", {"blue": 90, "green": 10}),
        lambda: ledger.endpoints.report_health("shop", "green", "healthy", "CUDAExecutionProvider"),
        lambda: ledger.endpoints.set_traffic("shop", {"green": 100}),
        lambda: ledger.endpoints.set_mirror("shop", {"blue": 20}),
        lambda: ledger.endpoints.set_mirror("shop", {}),
        lambda: ledger.endpoints.undeploy("shop", "blue"),
        lambda: ledger.models.delete_version("iris:3"),
        lambda: ledger.models.archive_version("iris:1"),
        lambda: ledger.models.remove_tags("iris:2", ["stage"]),
    ]


def lifecycle(ledger: Ledger, model_dir: Path) -> None:
    for step in lifecycle_steps(ledger, model_dir):
        step()


def snapshot(views: Views) -> dict[str, Any]:
    views.updater.catch_up()
    return views.registry()


def test_views_match_the_aggregates(ledger: Ledger, views: Views, model_dir: Path) -> None:
    lifecycle(ledger, model_dir)
    expected = registry_from_aggregates(ledger)
    assert snapshot(views) == expected
    for name, model in expected["models"].items():
        listed = views.versions(name, include_deleted=True)
        assert [v["version"] for v in listed] == sorted(model["versions"], reverse=True)
        for version in listed:
            truth = model["versions"][version["version"]]
            assert version["tags"] == truth["tags"] and version["status"] == truth["status"]
            assert version["deployments"] == truth["deployments"]
            assert version["aliases"] == sorted(
                alias for alias, number in model["aliases"].items() if number == version["version"]
            )
            assert version == views.version_of(name, version["version"])
    shop = views.endpoint("shop")
    assert shop["traffic"] == {"green": 100} and shop["mirror"] == {}
    assert shop["deployments"]["green"]["resources"]["replicas"] == 3
    assert shop["deployments"]["green"]["health_detail"] == "CUDAExecutionProvider"
    iris2 = views.version("iris@champion")
    assert iris2["ref"] == "iris:2" and iris2["aliases"] == ["champion"]
    assert iris2["deployments"] == [{"endpoint": "shop", "deployment": "green"}]
    assert iris2["files"] == ledger.models.get_version("iris:2").spec["files"]
    assert views.version("iris")["ref"] == "iris:2"  # 3 is deleted
    assert [v["version"] for v in views.versions("iris")] == [2, 1]
    assert [v["version"] for v in views.versions("iris", include_deleted=True)] == [3, 2, 1]
    models = {m["name"]: m for m in views.models()}
    assert models["iris"]["live_versions"] == 2 and models["iris"]["created_by"] == "tester"


def test_a_write_answered_ahead_of_the_views_has_their_shape(
    ledger: Ledger, views: Views, model_dir: Path
) -> None:
    """What the API answers while the views lag (built from the command's result) is the
    shape the views give, but for who and when the aggregates do not hold (left blank)."""
    version = ledger.models.register_version(
        "iris", model_dir, flavor="sklearn", tags={"team": "vision"}, metrics={"auc": 0.9}
    )
    views.updater.catch_up()
    assert committed_version(version, "tester") == views.version_of("iris", 1)
    ledger.endpoints.create("shop", "online", description="the shop")
    ledger.endpoints.deploy("shop", "blue", "iris:1", resources=RESOURCES)
    ledger.endpoints.deploy("shop", "green", "iris:1")
    endpoint = ledger.endpoints.set_traffic("shop", {"blue": 100})
    views.updater.catch_up()
    seen = views.endpoint("shop")
    for deployment in seen["deployments"].values():
        deployment["deployed_at"] = deployment["deployed_by"] = ""
    assert committed_endpoint(endpoint) == {**seen, "created_by": ""}


def test_incremental_views_equal_a_rebuild(ledger: Ledger, views: Views, model_dir: Path) -> None:
    lifecycle(ledger, model_dir)
    incremental = snapshot(views)
    audit = views.audit(AuditQuery(limit=1000)).items
    assert views.updater.rebuild() == ledger.event_count()
    assert views.registry() == incremental
    assert views.audit(AuditQuery(limit=1000)).items == audit
    views.updater.rebuild(["registry"])  # one projection alone
    assert views.registry() == incremental


def test_the_view_updater_resumes_where_it_stopped_and_applies_nothing_twice(
    ledger: Ledger, store: StoreFactory, model_dir: Path
) -> None:
    lifecycle(ledger, model_dir)
    first = ViewUpdater(store.settings(), batch_size=7)
    assert first.run_batch() == 7
    assert set(first.positions().values()) == {7}
    first.close()
    second = ViewUpdater(store.settings(), batch_size=7)
    assert second.catch_up() == ledger.event_count() - 7
    assert set(second.positions().values()) == {ledger.event_count()}
    (count,) = store.sql("SELECT count(*) FROM ledger_view_audit")[0]
    assert count == ledger.event_count()
    views = Views(second.db)
    assert views.registry() == registry_from_aggregates(ledger)
    views.close()


def test_view_updaters_taking_turns_never_double_apply(
    ledger: Ledger, store: StoreFactory, model_dir: Path
) -> None:
    """Two view updaters (as two processes) alternate; each notices the other's batches."""
    updaters = [ViewUpdater(store.settings(), batch_size=3) for _ in range(2)]
    lifecycle(ledger, model_dir)
    turn = 0
    while updaters[turn % 2].run_batch():
        turn += 1
    assert turn > 2
    (count,) = store.sql("SELECT count(*) FROM ledger_view_audit")[0]
    assert count == ledger.event_count()
    views = Views(updaters[0].db)
    assert views.registry() == registry_from_aggregates(ledger)
    for updater in updaters:
        updater.close()


def test_an_updater_that_keeps_losing_the_race_takes_the_lock_and_goes_on(
    ledger: Ledger, store: StoreFactory, model_dir: Path
) -> None:
    """Another updater commits between every read and write of this one, as faster processes
    racing under load did (this one reloads the tables after each loss, the winners do not):
    after OPTIMISTIC_TRIES losses it does the batch holding the lock, and nothing is lost."""
    lifecycle(ledger, model_dir)
    loser = ViewUpdater(store.settings(), batch_size=5)
    winner = ViewUpdater(store.settings(), batch_size=1)
    apply_batch, apply = loser._apply_batch, loser._apply
    locked_calls: list[bool] = []
    races: list[int] = []

    def apply_batch_watched(limit: int, only: str | None, *, locked: bool) -> list[Change]:
        locked_calls.append(locked)
        return apply_batch(limit, only, locked=locked)

    def apply_then_lose_the_race(changes: list[Change], positions: dict[str, int]) -> Any:
        applied = apply(changes, positions)
        if not locked_calls[-1]:
            races.append(winner.run_batch())
        return applied

    loser._apply_batch = apply_batch_watched  # type: ignore[method-assign]
    loser._apply = apply_then_lose_the_race  # type: ignore[method-assign]
    assert loser.run_batch() == 5
    assert races == [1] * OPTIMISTIC_TRIES
    assert locked_calls == [False] * OPTIMISTIC_TRIES + [True]
    loser.catch_up()
    winner.catch_up()
    (count,) = store.sql("SELECT count(*) FROM ledger_view_audit")[0]
    assert count == ledger.event_count()
    assert Views(winner.db).registry() == registry_from_aggregates(ledger)
    for updater in (loser, winner):
        updater.close()


def test_a_projection_can_run_alone(ledger: Ledger, store: StoreFactory, model_dir: Path) -> None:
    lifecycle(ledger, model_dir)
    alone = ViewUpdater(store.settings(), [RegistryProjection()])
    alone.catch_up()
    assert alone.positions() == {"registry": ledger.event_count()}
    everything = ViewUpdater(store.settings())
    statuses = {s.name: s for s in everything.status()}
    assert statuses["registry"].lag_events == 0
    assert statuses["audit"].lag_events == ledger.event_count()
    assert statuses["audit"].lag_seconds > 0
    everything.catch_up()
    assert Views(everything.db).registry() == registry_from_aggregates(ledger)
    alone.close()
    everything.close()


def test_as_of_position_and_time_show_earlier_tags_aliases_and_traffic(
    ledger: Ledger, views: Views, model_dir: Path
) -> None:
    ledger.models.register_version("iris", model_dir)
    ledger.models.register_version("iris", model_dir)
    ledger.models.set_tags("iris:1", {"stage": "staging"})
    ledger.models.set_alias("iris", "champion", 1)
    ledger.endpoints.create("shop", "online")
    ledger.endpoints.deploy("shop", "blue", "iris:1")
    ledger.endpoints.deploy("shop", "green", "iris:2")
    views.updater.catch_up()
    position = views.updater.head()
    # Not a wait for anything: a clock reading strictly between the two groups of events'
    # timestamps (microseconds apart at best otherwise), so no event can be waited on.
    time.sleep(0.01)
    moment = datetime.now(UTC)
    time.sleep(0.01)
    ledger.models.set_tags("iris:1", {"stage": "prod"})
    ledger.models.set_alias("iris", "champion", 2)
    ledger.endpoints.set_traffic("shop", {"blue": 20, "green": 80})
    views.updater.catch_up()
    for at in (views.point_at(position=position), views.point_at(moment)):
        assert at.position == position
        past = views.registry(at)
        assert past["models"]["iris"]["versions"][1]["tags"] == {"stage": "staging"}
        assert past["models"]["iris"]["aliases"] == {"champion": 1}
        assert past["endpoints"]["shop"]["traffic"] == {"blue": 100}
        assert views.endpoint_as_of("shop", at)["traffic"] == {"blue": 100}
    now = views.registry(views.point_at(position=views.updater.head()))
    assert now["endpoints"]["shop"]["traffic"] == {"blue": 20, "green": 80}
    assert views.registry(views.point_at(position=0)) == {
        "position": 0, "time": None, "models": {}, "endpoints": {}
    }  # fmt: skip
    assert views.point_at(datetime(2000, 1, 1, tzinfo=UTC)).position == 0
    with pytest.raises(NotFoundError, match="did not exist at position 2"):
        views.endpoint_as_of("shop", views.point_at(position=2))
    with pytest.raises(InvalidInputError, match="between 0 and"):
        views.point_at(position=10_000)


def test_as_of_matches_the_views_as_they_were_after_every_command(
    ledger: Ledger, views: Views, model_dir: Path
) -> None:
    seen = {0: views.registry()}
    for step in lifecycle_steps(ledger, model_dir):
        step()
        views.updater.catch_up()
        seen[views.updater.head()] = views.registry()
    for rebuilt in (False, True):
        if rebuilt:
            views.updater.rebuild()  # the history table is rebuilt too
        for position, registry in seen.items():
            at = views.point_at(position=position)
            assert {k: v for k, v in views.registry(at).items() if k in registry} == registry
            # The models alone, or one of them, read from their own rows only: the same.
            assert views.models_as_of(at) == registry["models"]
            for name, model in registry["models"].items():
                assert views.model_as_of(name, at) == {
                    "position": at.position, "time": at.time, "name": name, **model}  # fmt: skip


def test_search_by_prefix_tags_alias_flavor_and_time(
    ledger: Ledger, views: Views, model_dir: Path
) -> None:
    lifecycle(ledger, model_dir)
    views.updater.catch_up()

    def refs(**criteria: Any) -> list[str]:
        return [item["ref"] for item in views.search(SearchQuery(**criteria)).items]

    assert refs(name_prefix="iris") == ["irises:1", "iris:2", "iris:1"]
    assert refs(name_prefix="iris", include_deleted=True)[1] == "iris:3"
    assert refs(tags={"team": "vision"}) == ["iris:2", "iris:1"]
    assert refs(tags={"team": "vision", "owner": "ml-platform"}) == ["iris:2", "iris:1"]
    assert refs(tags={"team": "nlp", "owner": "ml-platform"}) == []
    assert refs(alias="champion") == ["iris:2"]
    assert refs(flavor="pytorch") == ["irises:1"]
    assert refs(flavor="sklearn", include_deleted=True) == ["iris:3", "iris:1"]
    created = views.version("irises:1")["created_at"]
    assert refs(created_after=datetime.fromisoformat(created)) == ["irises:1"]
    assert refs(created_before=datetime.fromisoformat(created)) == ["iris:2", "iris:1"]
    assert refs(created_after=datetime.now(UTC) + timedelta(days=1)) == []


def test_search_pages_are_stable_while_versions_are_added(
    ledger: Ledger, views: Views, model_dir: Path
) -> None:
    for _ in range(5):
        ledger.models.register_version("pager", model_dir)
    views.updater.catch_up()
    first = views.search(SearchQuery(limit=2))
    assert [i["version"] for i in first.items] == [5, 4] and first.next_token
    ledger.models.register_version("pager", model_dir)  # new: not on later pages
    views.updater.catch_up()
    second = views.search(SearchQuery(limit=2, page_token=first.next_token))
    third = views.search(SearchQuery(limit=2, page_token=second.next_token))
    assert [i["version"] for i in second.items + third.items] == [3, 2, 1]
    assert third.next_token == ""
    for token in ("garbage", "eyJ4IjogMX0="):
        with pytest.raises(InvalidInputError, match="invalid page token"):
            views.search(SearchQuery(page_token=token))
    with pytest.raises(InvalidInputError, match="limit must be between 1 and 1000"):
        views.search(SearchQuery(limit=0))
    with pytest.raises(InvalidInputError, match="needs a timezone"):
        views.search(SearchQuery(created_after=datetime(2026, 1, 1)))


def test_audit_filters_return_exactly_the_matching_events_in_order(
    ledger: Ledger, views: Views, model_dir: Path
) -> None:
    with ledger.on_behalf_of("alice", correlation_id="req-1"):
        ledger.models.register_version("iris", model_dir, reason="first")
    # A clock reading strictly between the two groups of events' timestamps (see above).
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    with ledger.on_behalf_of("bob"):
        ledger.models.register_version("iris", model_dir)
        ledger.models.set_tags("iris:1", {"stage": "prod"}, reason="promote")
        ledger.endpoints.create("shop", "online")
    views.updater.catch_up()

    def audit(**filters: Any) -> list[tuple[str, str, str]]:
        items = views.audit(AuditQuery(**filters)).items
        positions = [i["position"] for i in items]
        assert positions == sorted(positions)
        return [(i["actor"], i["event_type"], i["name"]) for i in items]

    everything = audit()
    assert len(everything) == ledger.event_count()
    assert audit(actor="alice") == [
        ("alice", "Model.Registered", "iris"),
        ("alice", "Model.VersionAdded", "iris"),
        ("alice", "ModelVersion.Registered", "iris:1"),
    ]
    assert audit(correlation_id="req-1") == audit(actor="alice")
    assert audit(event_type="Registered") == [
        ("alice", "Model.Registered", "iris"),
        ("alice", "ModelVersion.Registered", "iris:1"),
        ("bob", "ModelVersion.Registered", "iris:2"),
    ]
    assert audit(event_type="ModelVersion.Tagged") == [("bob", "ModelVersion.Tagged", "iris:1")]
    assert audit(kind="model", name="iris") == everything[:-1]  # all but the endpoint
    assert audit(kind="model_version", name="iris:1") == [
        ("alice", "ModelVersion.Registered", "iris:1"),
        ("bob", "ModelVersion.Tagged", "iris:1"),
    ]
    assert audit(kind="endpoint") == [("bob", "Endpoint.Created", "shop")]
    assert audit(since=middle) == [e for e in everything if e[0] == "bob"]
    assert audit(until=middle) == audit(actor="alice")
    assert audit(actor="bob", since=middle, event_type="Tagged") == [
        ("bob", "ModelVersion.Tagged", "iris:1")
    ]
    tagged = views.audit(AuditQuery(event_type="ModelVersion.Tagged")).items[0]
    assert tagged["reason"] == "promote" and tagged["details"] == {"key": "stage", "value": "prod"}
    first = views.audit(AuditQuery(limit=4))
    second = views.audit(AuditQuery(limit=4, page_token=first.next_token))
    assert [i["position"] for i in first.items + second.items] == list(range(1, 8))
    assert second.next_token == ""
    with pytest.raises(InvalidInputError, match="unknown event type 'Exploded'"):
        views.audit(AuditQuery(event_type="Exploded"))
    with pytest.raises(InvalidInputError, match="needs its kind"):
        views.audit(AuditQuery(name="iris"))


def test_lineage_from_data_to_endpoint_both_ways_with_depth_limits(
    ledger: Ledger, views: Views, model_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n")
    ledger.assets.register_data("train", data)
    ledger.assets.register_environment("cpu", EnvironmentSpec(python="3.11"))
    ledger.assets.register_pipeline(
        "fit",
        {
            "environment": "cpu",
            "steps": [{"name": "train", "run": "fit:train", "inputs": {"rows": "data:train"}}],
        },
    )
    job = ledger.jobs.submit("fit")
    job_node = f"job:{job.id}"
    ledger.models.register_version(
        "clf", model_dir, flavor="sklearn",
        lineage={"job": str(job.id), "data": ["train:1"], "environment": "cpu:1"},
    )  # fmt: skip
    ledger.models.register_version(
        "clf-onnx", model_dir, flavor="onnx", lineage={"derived_from": "clf:1"}
    )
    ledger.endpoints.create("api", "online")
    ledger.endpoints.deploy("api", "live", "clf-onnx:1", environment="cpu")
    views.updater.catch_up()

    up = views.lineage("endpoint:api", direction="upstream", depth=10)
    assert up.nodes == {
        "endpoint:api": 0,
        "deployment:api/live": 1,
        "model:clf-onnx:1": 2,
        "environment:cpu:1": 2,
        "model:clf:1": 3,
        job_node: 4,
        "data:train:1": 4,
        "pipeline:fit:1": 5,
    }
    assert ("model:clf:1", "model:clf-onnx:1", "derived") in up.edges
    assert set(views.lineage("endpoint:api", depth=2).nodes) == {
        "endpoint:api", "deployment:api/live", "model:clf-onnx:1", "environment:cpu:1"
    }  # fmt: skip
    down = views.lineage("data:train:1", direction="downstream", depth=10)
    assert down.nodes == {
        "data:train:1": 0,
        job_node: 1,
        "model:clf:1": 1,
        "model:clf-onnx:1": 2,
        "deployment:api/live": 3,
        "endpoint:api": 4,
    }
    assert set(views.lineage("data:train:1", direction="downstream", depth=1).nodes) == {
        "data:train:1", job_node, "model:clf:1"
    }  # fmt: skip
    with pytest.raises(NotFoundError, match="no lineage node 'model:ghost:1'"):
        views.lineage("model:ghost:1")
    with pytest.raises(InvalidInputError, match="depth must be at least 1"):
        views.lineage("endpoint:api", depth=0)


def test_follow_applies_new_events_as_they_are_written(
    ledger: Ledger, store: StoreFactory, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: polling; PostgreSQL: LISTEN/NOTIFY wakes the updater. Its safety-net poll is
    made longer than the test may take, so the events can only arrive by a notification."""
    applied: list[int] = []
    idle = threading.Event()

    def on_commit(changes: list[Any], committed_at: float) -> None:
        applied.extend(change.position for change in changes)

    def follow_log_without_polling(catch_up: Any, listener: Any, stop: Any, wait_s: float,
                                   **options: Any) -> None:  # fmt: skip
        def catch_up_then_tell() -> object:
            caught_up = catch_up()
            idle.set()  # the follower has read the (empty) log: it waits from now on
            return caught_up

        wait_s = wait_s if store.kind == "sqlite" else 600.0
        follow_log(catch_up_then_tell, listener, stop, wait_s, **options)

    monkeypatch.setattr(updater_module, "follow_log", follow_log_without_polling)
    updater = ViewUpdater(store.settings(), on_commit=on_commit)
    stop = threading.Event()
    follower = threading.Thread(target=updater.follow, args=(stop, 0.02))
    follower.start()
    try:
        assert idle.wait(30), "the follower did not start"
        ledger.models.register_version("live", model_dir)
        wait_for(lambda: len(applied) >= 3, 60, "the follower to apply the new events")
        assert applied == [1, 2, 3]
    finally:
        stop.set()
        ledger.models.set_tags("live:1", {"wake": "up"})  # a notification ends the follower's wait
        follower.join(30)
        updater.close()
    assert not follower.is_alive()


def test_a_rebuild_that_died_half_way_is_started_again(
    ledger: Ledger, store: StoreFactory, model_dir: Path
) -> None:
    lifecycle(ledger, model_dir)
    updater = ViewUpdater(store.settings(), batch_size=5)
    updater.catch_up()
    # As a bulk rebuild leaves things when its process dies: views half empty, heartbeat set.
    store.sql("DELETE FROM ledger_view_versions")
    store.sql(
        "UPDATE ledger_view_generation SET rebuild_heartbeat_us = ?", (int(time.time() * 1e6),)
    )
    ledger.models.set_tags("iris", {"after": "crash"})
    assert updater.run_batch() == 0  # a rebuild is (apparently) under way: wait for it
    stale = int((time.time() - 3600) * 1e6)
    store.sql("UPDATE ledger_view_generation SET rebuild_heartbeat_us = ?", (stale,))
    updater.catch_up()
    assert Views(updater.db).registry() == registry_from_aggregates(ledger)
    assert store.sql("SELECT rebuild_heartbeat_us FROM ledger_view_generation") == [(0,)]
    updater.close()


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # PostgreSQL has no helper
def test_a_large_rebuild_shares_the_work_with_a_helper_process(
    ledger: Ledger, views: Views, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lifecycle(ledger, model_dir)
    incremental = snapshot(views)
    audit = views.audit(AuditQuery(limit=1000)).items
    monkeypatch.setattr(updater_module, "PARALLEL_FROM", 1)  # as if the log were large
    assert views.updater.rebuild() == ledger.event_count()
    assert views.registry() == incremental
    assert views.audit(AuditQuery(limit=1000)).items == audit
    assert set(views.updater.positions().values()) == {ledger.event_count()}


def test_search_by_tags_matches_a_brute_force_filter(ledger: Ledger, model_dir: Path) -> None:
    """Tags on versions and on models, queries of one to three tags, paged: the tag-index
    walk and the general scan both return exactly what filtering every version returns."""
    rng = random.Random(4)
    values = {"team": ["a", "b", "c"], "stage": ["dev", "prod"], "tier": ["1", "2"]}
    for number in range(60):
        name = f"m{number % 6}"
        tags = {key: rng.choice(options) for key, options in values.items() if rng.random() < 0.7}
        ledger.models.register_version(name, model_dir, tags=tags)
    ledger.models.set_tags("m1", {"team": "c"})  # a model tag: every m1 version matches team=c
    ledger.models.set_tags("m2", {"tier": "9"})
    ledger.models.delete_version("m3:1")
    views = Views.open(ledger.settings)
    registry = views.registry()["models"]

    def expected(tags: dict[str, str]) -> list[str]:
        found = [
            (version["created_at_us"], f"{name}:{number}")
            for name, model in registry.items()
            for number, version in model["versions"].items()
            if version["status"] != "deleted"
            and all(
                version["tags"].get(k) == v or model["tags"].get(k) == v for k, v in tags.items()
            )
        ]
        return [ref for _, ref in sorted(found, reverse=True)]

    queries = [{"team": "c"}, {"tier": "9"}, {"team": "a", "stage": "prod"},
               {"team": "c", "stage": "dev", "tier": "1"}, {"stage": "prod", "tier": "9"},
               {"team": "zzz"}]  # fmt: skip
    for tags in queries:
        refs, token = [], ""
        while True:
            page = views.search(SearchQuery(tags=tags, limit=4, page_token=token))
            refs += [item["ref"] for item in page.items]
            if not (token := page.next_token):
                break
        assert refs == expected(tags), tags
    views.close()


def test_a_view_whose_tables_changed_is_rebuilt_from_the_log(
    ledger: Ledger, store: StoreFactory, model_dir: Path
) -> None:
    lifecycle(ledger, model_dir)
    views = Views.open(ledger.settings)
    before = views.registry()
    views.close()
    # As if the registry's tables had been built by an older release: a column is missing.
    store.sql("UPDATE ledger_view_schemas SET fingerprint = 'older' WHERE name = 'registry'")
    store.sql("DROP INDEX ledger_view_version_tags_key_value_created_position")
    store.sql("ALTER TABLE ledger_view_version_tags DROP COLUMN created_position")
    views = Views.open(ledger.settings)
    assert views.registry() == before
    assert registry_from_aggregates(ledger) == views.registry()
    assert views.search(SearchQuery(tags={"team": "vision"})).items
    positions = views.updater.positions()
    assert len(set(positions.values())) == 1  # every projection at the head again
    views.close()
