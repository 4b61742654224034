"""Deployments keep their versions in use; traffic rules refuse bad splits, writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.domain.endpoint import Endpoint, sampling_rate_of
from ledger.errors import InvalidInputError, RuleViolationError
from ledger.ledger import Ledger


@pytest.fixture
def blue_green(ledger: Ledger, model_dir: Path) -> Ledger:
    """Endpoint `shop` with blue (v1, 100%) and green (v2, 0%)."""
    ledger.models.register_version("ranker", model_dir)
    ledger.models.register_version("ranker", model_dir)
    ledger.endpoints.create("shop", "online")
    ledger.endpoints.deploy("shop", "blue", "ranker:1")
    ledger.endpoints.deploy("shop", "green", "ranker:2")
    return ledger


def test_first_deployment_takes_all_traffic_later_ones_none(blue_green: Ledger) -> None:
    endpoint = blue_green.endpoints.get("shop")
    assert endpoint.traffic == {"blue": 100}
    assert set(endpoint.deployments) == {"blue", "green"}
    assert blue_green.models.get_version("ranker:2").deployments == [
        {"endpoint": "shop", "deployment": "green"}
    ]


@pytest.mark.parametrize("action", ["delete", "archive"])
def test_deployed_version_cannot_be_deleted_or_archived(blue_green: Ledger, action: str) -> None:
    before = blue_green.event_count()
    command = getattr(blue_green.models, f"{action}_version")
    with pytest.raises(RuleViolationError) as refusal:
        command("ranker:1", reason="cleanup")
    assert "deployment 'blue' of endpoint 'shop'" in str(refusal.value)
    assert blue_green.event_count() == before
    assert blue_green.models.get_version("ranker:1").status == "ready"


def test_version_can_be_deleted_once_its_traffic_is_gone_and_it_is_undeployed(
    blue_green: Ledger,
) -> None:
    with pytest.raises(RuleViolationError, match="still receives 100% live traffic"):
        blue_green.endpoints.undeploy("shop", "blue")
    blue_green.endpoints.set_traffic("shop", {"blue": 0, "green": 100})
    blue_green.endpoints.undeploy("shop", "blue", reason="retired")
    assert blue_green.models.get_version("ranker:1").deployments == []
    blue_green.models.delete_version("ranker:1", reason="superseded")
    assert blue_green.models.get_version("ranker:1").status == "deleted"
    assert set(blue_green.endpoints.get("shop").deployments) == {"green"}
    # The only deployment left holds all traffic, with nowhere to shift it: it may go.
    blue_green.endpoints.undeploy("shop", "green", reason="endpoint retired")
    endpoint = blue_green.endpoints.get("shop")
    assert endpoint.deployments == {} and endpoint.traffic == {}
    blue_green.endpoints.delete("shop")


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"blue": 60, "green": 30}, "must sum to 100, got 90"),
        ({"blue": 50, "green": 60}, "must sum to 100, got 110"),
        ({"blue": 50, "red": 50}, "has no deployment 'red'"),
        ({"blue": 110, "green": -10}, "between 0 and 100"),
        ({"blue": 50.5, "green": 49.5}, "whole percentage"),
    ],
)
def test_bad_traffic_is_refused_and_nothing_written(
    blue_green: Ledger, weights: dict[str, int], message: str
) -> None:
    before = blue_green.event_count()
    with pytest.raises(InvalidInputError, match=message):
        blue_green.endpoints.set_traffic("shop", weights)
    assert blue_green.event_count() == before
    assert blue_green.endpoints.get("shop").traffic == {"blue": 100}


def test_negative_weights_are_refused_even_when_the_rest_adds_up(blue_green: Ledger) -> None:
    blue_green.endpoints.deploy("shop", "red", "ranker:2")
    before = blue_green.event_count()
    with pytest.raises(InvalidInputError, match="traffic for 'blue' must be between 0 and 100"):
        blue_green.endpoints.set_traffic(
            "shop", {"blue": -20, "green": 60, "red": 60}
        )  # sums to 100
    with pytest.raises(InvalidInputError, match="mirror for 'green' must be between 0 and 100"):
        blue_green.endpoints.set_mirror("shop", {"green": -5})  # green has no live traffic
    assert blue_green.event_count() == before
    endpoint = blue_green.endpoints.get("shop")
    assert (endpoint.traffic, endpoint.mirror) == ({"blue": 100}, {})


def test_mirror_goes_only_to_a_deployment_without_live_traffic(blue_green: Ledger) -> None:
    before = blue_green.event_count()
    with pytest.raises(RuleViolationError, match="it has 100% live traffic"):
        blue_green.endpoints.set_mirror("shop", {"blue": 20})
    assert blue_green.event_count() == before

    endpoint = blue_green.endpoints.set_mirror("shop", {"green": 20}, reason="shadow test")
    assert endpoint.mirror == {"green": 20}
    # A mirrored deployment cannot get live traffic, nor be removed, until the mirror stops.
    with pytest.raises(RuleViolationError, match="receives mirrored traffic"):
        blue_green.endpoints.set_traffic("shop", {"blue": 50, "green": 50})
    with pytest.raises(RuleViolationError, match="20% mirrored traffic"):
        blue_green.endpoints.undeploy("shop", "green")
    blue_green.endpoints.set_mirror("shop", {"green": 0})
    assert blue_green.endpoints.set_traffic("shop", {"blue": 50, "green": 50}).traffic == {
        "blue": 50,
        "green": 50,
    }


def test_endpoint_rules(ledger: Ledger, model_dir: Path) -> None:
    ledger.models.register_version("ranker", model_dir)
    ledger.endpoints.create("batchy", "batch")
    with pytest.raises(RuleViolationError, match="already exists"):
        ledger.endpoints.create("batchy", "online")
    with pytest.raises(InvalidInputError, match="kind must be one of"):
        ledger.endpoints.create("weird", "streaming")
    ledger.endpoints.deploy("batchy", "nightly", "ranker:1")
    ledger.endpoints.deploy("batchy", "weekly", "ranker:1")
    with pytest.raises(InvalidInputError, match="one default deployment"):
        ledger.endpoints.set_traffic("batchy", {"nightly": 50, "weekly": 50})
    with pytest.raises(InvalidInputError, match="do not mirror"):
        ledger.endpoints.set_mirror("batchy", {"weekly": 10})
    with pytest.raises(RuleViolationError, match="already has a deployment 'nightly'"):
        ledger.endpoints.deploy("batchy", "nightly", "ranker:1")
    with pytest.raises(InvalidInputError, match="replicas must be at least 1"):
        ledger.endpoints.deploy(
            "batchy",
            "broken",
            "ranker:1",
            resources={"cpus": 1, "gpus": 0, "memory_mb": 512, "replicas": 0},
        )
    with pytest.raises(RuleViolationError, match="still has deployments nightly, weekly"):
        ledger.endpoints.delete("batchy")
    ledger.endpoints.undeploy("batchy", "weekly")
    ledger.models.register_version("ranker", model_dir)
    ledger.models.archive_version("ranker:2")
    with pytest.raises(RuleViolationError, match="it is archived"):
        ledger.endpoints.deploy("batchy", "archived", "ranker:2")


def test_health_reports_are_recorded(blue_green: Ledger) -> None:
    blue_green.endpoints.report_health("shop", "green", "healthy", "provider=CPUExecutionProvider")
    deployment = blue_green.endpoints.get("shop").deployments["green"]
    assert (deployment["health"], deployment["health_detail"]) == (
        "healthy",
        "provider=CPUExecutionProvider",
    )
    with pytest.raises(InvalidInputError, match="health must be one of"):
        blue_green.endpoints.report_health("shop", "green", "fine")


def test_sampling_rate_is_recorded_changed_live_and_validated(
    ledger: Ledger, model_dir: Path
) -> None:
    """A deployment collects from the start (``sampling_rate`` on deploy) or from a later
    change; deployments without one collect nothing; bad rates are refused, writing nothing."""
    ledger.models.register_version("ranker", model_dir)
    ledger.endpoints.create("shop", "online")
    ledger.endpoints.deploy("shop", "blue", "ranker:1")
    green = ledger.endpoints.deploy("shop", "green", "ranker:1", sampling_rate=0.25)
    assert "sampling_rate" not in green.deployments["blue"]  # as recorded before collection
    assert sampling_rate_of(green.deployments["blue"]) == 0.0
    assert sampling_rate_of(green.deployments["green"]) == 0.25

    changed = ledger.endpoints.set_sampling_rate("shop", "blue", 1, reason="watch blue")
    assert sampling_rate_of(changed.deployments["blue"]) == 1.0
    events = ledger.events_of(changed.id)
    collection = [e for e in events if isinstance(e, Endpoint.DataCollectionChanged)]
    assert [(e.deployment, e.sampling_rate, e.reason) for e in collection] == [
        ("green", 0.25, ""),
        ("blue", 1.0, "watch blue"),
    ]
    before = ledger.event_count()
    ledger.endpoints.set_sampling_rate("shop", "blue", 1.0)  # unchanged: nothing written
    for bad in (1.5, -0.1, float("nan"), True):
        with pytest.raises(InvalidInputError, match="sampling rate must be between 0 and 1"):
            ledger.endpoints.set_sampling_rate("shop", "blue", bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="sampling rate must be between 0 and 1"):
            ledger.endpoints.deploy("shop", "red", "ranker:1", sampling_rate=bad)
    with pytest.raises(InvalidInputError, match="has no deployment 'ghost'"):
        ledger.endpoints.set_sampling_rate("shop", "ghost", 0.5)
    assert ledger.event_count() == before
    ledger.endpoints.create("nightly", "batch")
    ledger.endpoints.deploy("nightly", "default", "ranker:1")
    before_batch = ledger.event_count()
    with pytest.raises(InvalidInputError, match="batch endpoints do not collect"):
        ledger.endpoints.set_sampling_rate("nightly", "default", 0.5)
    assert ledger.event_count() == before_batch
    assert sampling_rate_of(ledger.endpoints.get("shop").deployments["blue"]) == 1.0
