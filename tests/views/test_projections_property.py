"""Property: after any sequence of commands, the views built incrementally (catching up at
arbitrary points) equal the views rebuilt from scratch, equal the state of the aggregates,
and as-of the head equals now. Hypothesis generates the sequences."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError
from ledger.ledger import Ledger
from projections.audit import AuditQuery
from projections.views import Views
from tests.aggregate_state import registry_from_aggregates
from tests.conftest import StoreFactory

MODELS = ["a", "b"]
VERSIONS = [1, 2, 3]
DEPLOYMENTS = ["blue", "green"]
ENDPOINTS = ["web", "api"]
refs = st.builds(lambda m, v: f"{m}:{v}", st.sampled_from(MODELS), st.sampled_from(VERSIONS))
words = st.sampled_from(["x", "y", "z"])
shares = st.sampled_from([{"blue": 100}, {"green": 100}, {"blue": 40, "green": 60}, {}])

commands = st.lists(
    st.one_of(
        st.tuples(
            st.just("register"), st.sampled_from(MODELS), st.sampled_from(["onnx", "custom"])
        ),
        st.tuples(st.just("tag"), st.one_of(refs, st.sampled_from(MODELS)), words, words),
        st.tuples(st.just("untag"), st.one_of(refs, st.sampled_from(MODELS)), words),
        st.tuples(st.just("alias"), st.sampled_from(MODELS), words, st.sampled_from(VERSIONS)),
        st.tuples(st.just("unalias"), st.sampled_from(MODELS), words),
        st.tuples(st.just("status"), st.sampled_from(["archive", "restore", "delete"]), refs),
        st.tuples(
            st.just("deploy"), st.sampled_from(ENDPOINTS), st.sampled_from(DEPLOYMENTS), refs
        ),
        st.tuples(st.just("traffic"), st.sampled_from(ENDPOINTS), shares),
        st.tuples(st.just("mirror"), st.sampled_from(ENDPOINTS), shares),
        st.tuples(st.just("health"), st.sampled_from(ENDPOINTS), st.sampled_from(DEPLOYMENTS)),
        st.tuples(st.just("undeploy"), st.sampled_from(ENDPOINTS), st.sampled_from(DEPLOYMENTS)),
        st.tuples(st.just("drop-endpoint"), st.sampled_from(ENDPOINTS)),
        st.tuples(st.just("catch-up")),
    ),
    min_size=5,
    max_size=40,
)


def run(ledger: Ledger, views: Views, model_dir: Path, command: tuple[Any, ...]) -> None:
    kind, *args = command
    if kind == "register":
        ledger.models.register_version(args[0], model_dir, flavor=args[1])
    elif kind == "tag":
        ledger.models.set_tags(args[0], {args[1]: args[2]})
    elif kind == "untag":
        ledger.models.remove_tags(args[0], [args[1]])
    elif kind == "alias":
        ledger.models.set_alias(args[0], args[1], args[2])
    elif kind == "unalias":
        ledger.models.remove_alias(args[0], args[1])
    elif kind == "status":
        getattr(ledger.models, f"{args[0]}_version")(args[1])
    elif kind == "deploy":
        ledger.endpoints.deploy(args[0], args[1], args[2])
    elif kind == "traffic":
        ledger.endpoints.set_traffic(args[0], args[1])
    elif kind == "mirror":
        ledger.endpoints.set_mirror(args[0], args[1])
    elif kind == "health":
        ledger.endpoints.report_health(args[0], args[1], "degraded", "slow")
    elif kind == "undeploy":
        ledger.endpoints.undeploy(args[0], args[1])
    elif kind == "drop-endpoint":
        ledger.endpoints.delete(args[0])
    else:
        views.updater.catch_up()


@given(commands)
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_incremental_views_equal_rebuilt_views_equal_the_aggregates(
    store: StoreFactory, sequence: list[tuple[Any, ...]]
) -> None:
    with store.fresh() as fresh:  # a store of its own for every example
        check_views(Ledger(fresh), sequence)


def check_views(ledger: Ledger, sequence: list[tuple[Any, ...]]) -> None:
    views = Views.open(ledger.settings)
    try:
        model_dir = ledger.settings.home / "model"
        model_dir.mkdir()
        (model_dir / "w.bin").write_bytes(b"w")
        # A registry to act on, so that generated commands mostly pass the rules.
        for model in MODELS:
            for _ in VERSIONS:
                ledger.models.register_version(model, model_dir)
        for endpoint in ENDPOINTS:
            ledger.endpoints.create(endpoint, "online")
        ledger.endpoints.deploy("web", "blue", "a:1")
        ledger.endpoints.deploy("web", "green", "a:2")
        views.updater.catch_up()
        for command in sequence:
            with suppress(LedgerError):  # refused: wrote nothing (see test_rules_property)
                run(ledger, views, model_dir, command)
        views.updater.catch_up()
        incremental = views.registry()
        audit = views.audit(AuditQuery(limit=1000)).items
        assert incremental == registry_from_aggregates(ledger)
        head = views.point_at(position=views.updater.head())
        assert {k: v for k, v in views.registry(head).items() if k in incremental} == incremental
        views.updater.rebuild()
        assert views.registry() == incremental
        assert views.audit(AuditQuery(limit=1000)).items == audit
        assert len(audit) == ledger.event_count()
    finally:
        views.close()
        ledger.close()
