"""Property: whatever commands arrive, the endpoint and version rules hold, and a refused
command writes nothing. Hypothesis generates the command sequences."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError
from ledger.ledger import Ledger
from tests.conftest import StoreFactory

DEPLOYMENTS = ["blue", "green", "red"]  # three: a negative weight can then sum to 100
VERSIONS = [1, 2]

# Out-of-range weights as often as in-range ones.
weight = st.one_of(st.integers(-30, -1), st.integers(0, 100), st.integers(101, 130))
percentages = st.dictionaries(st.sampled_from(DEPLOYMENTS), weight, max_size=3)
# Valid-looking values too, so that sequences get past the first refusal.
splits = st.one_of(
    st.sampled_from(
        [{"blue": 100}, {"green": 100}, {"blue": 50, "green": 50}, {"blue": 40, "red": 60}]
    ),
    percentages,
)
mirrors = st.one_of(
    st.sampled_from([{"green": 20}, {"blue": 20}, {"red": 30}, {"green": 0}]), percentages
)
commands = st.lists(
    st.one_of(
        st.tuples(st.just("deploy"), st.sampled_from(DEPLOYMENTS), st.sampled_from(VERSIONS)),
        st.tuples(st.just("traffic"), splits),
        st.tuples(st.just("mirror"), mirrors),
        # Weights fitted to the deployments there are when the command runs (see `fitted`).
        st.tuples(st.sampled_from(["fitted-traffic", "fitted-mirror"]), st.lists(weight)),
        st.tuples(st.just("undeploy"), st.sampled_from(DEPLOYMENTS)),
        st.tuples(st.sampled_from(["delete", "archive"]), st.sampled_from(VERSIONS)),
    ),
    min_size=3,
    max_size=20,
)


def fitted(ledger: Ledger, kind: str, values: list[int]) -> dict[str, int]:
    """Weights that meet every other check, so that an out-of-range one (a negative weight
    beside ones over 50) is refused by the range check alone: traffic over the deployments
    there are, the last taking what makes the sum 100; a mirror to those without traffic."""
    endpoint = ledger.endpoints.get("web")
    names = sorted(endpoint.deployments)
    if kind == "fitted-mirror":
        return dict(zip([n for n in names if not endpoint.traffic.get(n)], values, strict=False))
    weights = dict(zip(names[:-1], values, strict=False))
    return weights | ({names[-1]: 100 - sum(weights.values())} if names else {})


def run(ledger: Ledger, command: tuple[Any, ...]) -> None:
    kind, arg, *rest = command
    if kind.startswith("fitted-"):
        kind, arg = kind.removeprefix("fitted-"), fitted(ledger, kind, arg)
    if kind == "deploy":
        ledger.endpoints.deploy("web", arg, f"m:{rest[0]}")
    elif kind == "traffic":
        ledger.endpoints.set_traffic("web", arg)
    elif kind == "mirror":
        ledger.endpoints.set_mirror("web", arg)
    elif kind == "undeploy":
        ledger.endpoints.undeploy("web", arg)
    elif kind == "delete":
        ledger.models.delete_version(f"m:{arg}")
    else:
        ledger.models.archive_version(f"m:{arg}")


def state(ledger: Ledger) -> dict[str, Any]:
    endpoint = ledger.endpoints.get("web")
    return {
        "deployments": endpoint.deployments,
        "traffic": endpoint.traffic,
        "mirror": endpoint.mirror,
        "versions": {
            v: (
                ledger.models.get_version(f"m:{v}").status,
                ledger.models.get_version(f"m:{v}").deployments,
            )
            for v in VERSIONS
        },
    }


def check_invariants(ledger: Ledger) -> None:
    endpoint = ledger.endpoints.get("web")
    assert sum(endpoint.traffic.values()) == (100 if endpoint.deployments else 0)
    assert set(endpoint.traffic) <= set(endpoint.deployments)
    assert set(endpoint.mirror) <= set(endpoint.deployments)
    assert not set(endpoint.traffic) & set(endpoint.mirror)
    assert all(0 < w <= 100 for w in [*endpoint.traffic.values(), *endpoint.mirror.values()])
    # Both sides of every deployment agree: the endpoint's and the model version's.
    served = {(d["version"], name) for name, d in endpoint.deployments.items()}
    marked = {
        (v, ref["deployment"])
        for v in VERSIONS
        for ref in ledger.models.get_version(f"m:{v}").deployments
    }
    assert served == marked
    for version, _ in served:
        assert ledger.models.get_version(f"m:{version}").status == "ready"


# Deployments there are before the sequence runs (blue v1, green v2, red v1: the first ones):
# most rules only matter with several.
INITIAL = list(zip(DEPLOYMENTS, [1, 2, 1], strict=True))


@given(st.integers(0, len(INITIAL)), commands)
# Negative weights that pass every other check: they sum to 100, or mirror to a deployment
# without live traffic.
@example(3, [("traffic", {"blue": -20, "green": 60, "red": 60}), ("mirror", {"green": -5})])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_rules_hold_under_any_command_sequence(
    store: StoreFactory, deployed: int, sequence: list[tuple[Any, ...]]
) -> None:
    with store.fresh() as fresh:  # a store of its own for every example
        ledger = Ledger(fresh)
        reopened: Ledger | None = None
        try:
            model_dir = fresh.home / "model"
            model_dir.mkdir()
            (model_dir / "w.bin").write_bytes(b"w")
            for _ in VERSIONS:
                ledger.models.register_version("m", model_dir)
            ledger.endpoints.create("web")
            for name, version in INITIAL[:deployed]:
                ledger.endpoints.deploy("web", name, f"m:{version}")
            for command in sequence:
                before = ledger.event_count()
                try:
                    run(ledger, command)
                except LedgerError:
                    assert ledger.event_count() == before, f"{command} was refused, wrote events"
                check_invariants(ledger)
            reopened = Ledger(fresh)
            assert state(reopened) == state(ledger)
            assert reopened.verify().ok
        finally:
            for app in (ledger, reopened):
                if app is not None:
                    app.close()
