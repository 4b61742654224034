"""Concurrent writers, as several `ledger serve` processes or threads would be: experiment ids
are never reused or skipped, a name is taken once, and no logged value is lost."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ledger.domain.run import Metric
from ledger.errors import AlreadyExistsError
from ledger.ledger import Ledger
from projections.views import Views
from tests.conftest import StoreFactory

WRITERS = 4


def _create(ledger: Ledger, name: str) -> str:
    try:
        return ledger.experiments.create(name).experiment_id
    except AlreadyExistsError:
        return ""


def test_concurrent_creators_number_experiments_densely_and_take_a_name_once(
    store: StoreFactory, open_ledger: Callable[..., Ledger]
) -> None:
    writers = [open_ledger() for _ in range(WRITERS)]
    names = [f"e{n}" for n in range(12)] + ["shared"] * WRITERS
    with ThreadPoolExecutor(WRITERS) as pool:
        ids = list(pool.map(lambda n: _create(writers[n % WRITERS], names[n]), range(len(names))))
    given = [experiment_id for experiment_id in ids if experiment_id]
    assert sorted(map(int, given)) == list(range(1, 14))  # 12 names and "shared" once
    assert sum(1 for name, got in zip(names, ids, strict=True) if name == "shared" and got) == 1
    views = Views.open(store.settings())
    try:
        by_name = {e["name"]: e["experiment_id"] for e in views.mlflow_search_experiments().items}
    finally:
        views.close()
    assert len(by_name) == 14 and by_name["Default"] == "0"


def test_concurrent_batches_to_one_run_lose_nothing(
    store: StoreFactory, open_ledger: Callable[..., Ledger]
) -> None:
    writers = [open_ledger() for _ in range(WRITERS)]
    run_id = writers[0].runs.create("0").run_id

    def log(writer: int) -> None:
        for step in range(5):
            writers[writer].runs.log_batch(
                run_id,
                metrics=[Metric("loss", writer + step / 10, timestamp=step, step=step)],
                params=[(f"w{writer}.s{step}", "x")],
            )

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(log, range(WRITERS)))
    views = Views.open(store.settings())
    try:
        run = views.mlflow_run(run_id)
        history = views.mlflow_metric_history(run_id, "loss").items
    finally:
        views.close()
    assert len(run["params"]) == WRITERS * 5
    assert sorted(m["value"] for m in history) == sorted(
        w + s / 10 for w in range(WRITERS) for s in range(5)
    )
    assert run["metrics"]["loss"] == WRITERS - 1 + 0.4  # step 4, the largest value
