"""Property: whatever commands arrive, the endpoint and version rules hold, and a refused
command writes nothing. Hypothesis generates the command sequences."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.errors import LedgerError
from tests.conftest import StoreFactory

DEPLOYMENTS = ["blue", "green"]
VERSIONS = [1, 2]

percentages = st.dictionaries(st.sampled_from(DEPLOYMENTS), st.integers(-10, 110), max_size=2)
# Valid-looking values too, so that sequences get past the first refusal.
splits = st.one_of(
    st.sampled_from([{"blue": 100}, {"green": 100}, {"blue": 50, "green": 50}]), percentages
)
mirrors = st.one_of(st.sampled_from([{"green": 20}, {"blue": 20}, {"green": 0}]), percentages)
commands = st.lists(
    st.one_of(
        st.tuples(st.just("deploy"), st.sampled_from(DEPLOYMENTS), st.sampled_from(VERSIONS)),
        st.tuples(st.just("traffic"), splits),
        st.tuples(st.just("mirror"), mirrors),
        st.tuples(st.just("undeploy"), st.sampled_from(DEPLOYMENTS)),
        st.tuples(st.just("delete"), st.sampled_from(VERSIONS)),
        st.tuples(st.just("archive"), st.sampled_from(VERSIONS)),
    ),
    min_size=3,
    max_size=20,
)


def run(ledger: Ledger, command: tuple[Any, ...]) -> None:
    kind, arg, *rest = command
    if kind == "deploy":
        ledger.deploy("web", arg, f"m:{rest[0]}")
    elif kind == "traffic":
        ledger.set_traffic("web", arg)
    elif kind == "mirror":
        ledger.set_mirror("web", arg)
    elif kind == "undeploy":
        ledger.undeploy("web", arg)
    elif kind == "delete":
        ledger.delete_model_version(f"m:{arg}")
    else:
        ledger.archive_model_version(f"m:{arg}")


def state(ledger: Ledger) -> dict[str, Any]:
    endpoint = ledger.get_endpoint("web")
    return {
        "deployments": endpoint.deployments,
        "traffic": endpoint.traffic,
        "mirror": endpoint.mirror,
        "versions": {
            v: (
                ledger.get_model_version(f"m:{v}").status,
                ledger.get_model_version(f"m:{v}").deployments,
            )
            for v in VERSIONS
        },
    }


def check_invariants(ledger: Ledger) -> None:
    endpoint = ledger.get_endpoint("web")
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
        for ref in ledger.get_model_version(f"m:{v}").deployments
    }
    assert served == marked
    for version, _ in served:
        assert ledger.get_model_version(f"m:{version}").status == "ready"


@given(commands)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_rules_hold_under_any_command_sequence(
    store: StoreFactory, sequence: list[tuple[Any, ...]]
) -> None:
    with store.fresh() as fresh:  # a store of its own for every example
        ledger = Ledger(fresh)
        reopened: Ledger | None = None
        try:
            model_dir = fresh.home / "model"
            model_dir.mkdir()
            (model_dir / "w.bin").write_bytes(b"w")
            for _ in VERSIONS:
                ledger.register_model_version("m", model_dir)
            ledger.create_endpoint("web")
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
