"""Version numbers: sequential per model, never reused or skipped, under concurrency."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ledger.ledger import Ledger
from projections.views import Views
from tests.aggregate_state import model_versions
from tests.conftest import StoreFactory


def test_registering_a_name_three_times_gives_versions_1_2_3(
    ledger: Ledger, model_dir: Path
) -> None:
    refs = [ledger.models.register_version("iris", model_dir).ref for _ in range(3)]
    assert refs == ["iris:1", "iris:2", "iris:3"]
    assert ledger.models.get("iris").latest_version == 3
    assert [v.number for v in model_versions(ledger, "iris")] == [3, 2, 1]


def test_eight_writers_fifty_registrations_each_give_exactly_1_to_400(
    open_ledger: Callable[..., Ledger], model_dir: Path
) -> None:
    writers = [open_ledger() for _ in range(8)]  # separate apps: separate caches, real races
    registered: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def register(app: Ledger) -> None:
        try:
            for _ in range(50):
                number = app.models.register_version("contended", model_dir).number
                with lock:
                    registered.append(number)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=register, args=(app,)) for app in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sorted(registered) == list(range(1, 401))
    reader = open_ledger()
    assert reader.models.get("contended").latest_version == 400
    stored = [v.number for v in model_versions(reader, "contended", limit=1000)]
    assert stored == list(range(400, 0, -1))


def test_versions_resolve_by_number_alias_and_latest(ledger: Ledger, model_dir: Path) -> None:
    for _ in range(3):
        ledger.models.register_version("iris", model_dir)
    ledger.models.set_alias("iris", "champion", 2, reason="best so far")
    assert ledger.models.get_version("iris@champion").number == 2
    assert ledger.models.get_version("iris").number == 3
    ledger.models.set_alias("iris", "champion", 3)
    assert ledger.models.get_version("iris@champion").number == 3
    ledger.models.delete_version("iris:3")
    # Deleting a version drops the aliases that pointed at it; "latest" skips it.
    assert ledger.models.get("iris").aliases == {}
    assert ledger.models.get_version("iris").number == 2
    with pytest.raises(NotFoundError, match="no alias 'champion'"):
        ledger.models.get_version("iris@champion")


def test_bad_names_and_references_are_refused(ledger: Ledger, model_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="invalid model name"):
        ledger.models.register_version("bad name!", model_dir)
    with pytest.raises(InvalidInputError, match="unknown flavor"):
        ledger.models.register_version("iris", model_dir, flavor="tensorflow")
    with pytest.raises(InvalidInputError, match="version must be a number"):
        ledger.models.get_version("iris:zero")
    with pytest.raises(NotFoundError, match="model 'ghost' does not exist"):
        ledger.models.get_version("ghost:1")
    assert ledger.event_count() == 0


def test_lineage_must_name_known_entities(ledger: Ledger, model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="data asset 'train' does not exist"):
        ledger.models.register_version("iris", model_dir, lineage={"data": ["train:1"]})
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    ledger.assets.register_data("train", data)
    version = ledger.models.register_version("iris", model_dir, lineage={"data": ["train"]})
    assert version.spec["lineage"] == {"data": ["train:1"]}  # pinned to the exact version
    ledger.models.set_alias("iris", "champion", 1)
    derived = ledger.models.register_version(
        "iris-onnx", model_dir, flavor="onnx", lineage={"derived_from": "iris@champion"}
    )
    assert derived.spec["lineage"] == {"derived_from": "iris:1"}


def test_metrics_must_be_numbers(ledger: Ledger, model_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="metric 'auc' must be a finite number"):
        ledger.models.register_version("iris", model_dir, metrics={"auc": "high"})  # type: ignore[dict-item]
    with pytest.raises(InvalidInputError, match="metric 'loss' must be a finite number"):
        ledger.models.register_version("iris", model_dir, metrics={"loss": float("nan")})
    assert ledger.models.register_version("iris", model_dir, metrics={"auc": 1}).spec[
        "metrics"
    ] == {"auc": 1.0}


def test_snapshots_bound_the_cost_of_loading_a_long_lived_model(
    store: StoreFactory, open_ledger: Callable[..., Ledger], model_dir: Path
) -> None:
    writer = open_ledger()
    for _ in range(250):
        writer.models.register_version("busy", model_dir)
    model_id = writer.models.get("busy").id
    assert writer.snapshots is not None
    (snapshot,) = writer.snapshots.get(model_id, desc=True, limit=1)
    assert snapshot.originator_version == 200
    # A new process (cold cache) replays the snapshot plus at most 100 events.
    fresh = open_ledger()
    assert fresh.models.get("busy").latest_version == 250
    assert len(list(fresh.events.get(model_id, gt=snapshot.originator_version))) <= 100


REGISTER_IN_A_PROCESS = """
import sys
from pathlib import Path
from ledger.ledger import Ledger
ledger = Ledger()
print(*(ledger.models.register_version("shared", Path(sys.argv[1])).number for _ in range(40)))
"""


def test_writers_in_separate_processes_never_collide(
    store: StoreFactory, open_ledger: Callable[..., Ledger], model_dir: Path
) -> None:
    env = {**os.environ, **store.env()}
    processes = [  # started together on a store none of them has created yet
        subprocess.Popen(
            [sys.executable, "-c", REGISTER_IN_A_PROCESS, str(model_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    numbers = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        numbers += [int(n) for n in out.split()]
    assert sorted(numbers) == list(range(1, 121))
    assert open_ledger().verify().ok


def test_a_model_created_without_versions_then_described_and_created_again(
    ledger: Ledger, model_dir: Path
) -> None:
    ledger.models.create_model("empty", description="first", tags={"team": "ml"})
    with pytest.raises(AlreadyExistsError, match="'empty' already exists"):
        ledger.models.create_model("empty")
    ledger.models.register_version("empty", model_dir, description="v1")
    ledger.models.describe("empty", "second")
    ledger.models.describe("empty:1", "the first version")
    with Views.open(ledger.settings) as views:
        model, version = views.model("empty"), views.version("empty:1")
    assert (model["description"], model["tags"], model["latest_version"]) == (
        "second",
        {"team": "ml"},
        1,
    )
    assert version["description"] == "the first version"
    with pytest.raises(NotFoundError):
        ledger.models.describe("missing", "x")
