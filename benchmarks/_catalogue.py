"""The registry catalogue the HTTP benchmarks share: models of 100 versions, each version tagged
team, stage and run from a seeded generator, filled into a fresh ledger store (and, through
benchmarks/_mlflow.py, into MLflow's) so that every system holds the same data."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import Progress

from _common import analyze_schema, scratch_schema, unique_name
from ledger.domain import EventMeta, Model, ModelVersion, acting
from ledger.domain.model import VersionSpec
from ledger.ledger import Ledger
from ledger.settings import Settings
from projections.updater import ViewUpdater

VERSIONS_PER_MODEL = 100
TEAMS = 20
STAGES = ("dev", "staging", "prod")
STORE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


@contextmanager
def ledger_store(kind: str, pg_url: str, prefix: str) -> Iterator[Settings]:
    """Settings of a fresh ledger store (a SQLite home, or a PostgreSQL schema named after
    ``prefix``), removed afterwards."""
    home = Path(tempfile.mkdtemp())
    try:
        if kind == "postgres":
            with scratch_schema(pg_url, unique_name(prefix), create=False) as schema:
                yield Settings(store=pg_url, pg_schema=schema, home=home)
        else:
            yield Settings(home=home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def catalogue(first_model: int, end_model: int) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """Each model's name and its versions' tags: the same data for every system.

    Each model has its own seeded generator, so a catalogue filled in steps (10k, then
    up to 100k) holds the same tags as one filled at once.
    """
    for m in range(first_model, end_model):
        rng = random.Random(m)
        tags = [
            {
                "team": f"team-{rng.randrange(TEAMS)}",
                "stage": rng.choice(STAGES),
                "run": f"{rng.getrandbits(64):016x}",
            }
            for _ in range(VERSIONS_PER_MODEL)
        ]
        yield f"model-{m:05d}", tags


def fill(settings: Settings, models: range, progress: Progress) -> None:
    """The catalogue's ``models`` into the ledger, saved a model at a time.

    The versions are built as the register command builds them, with one stored
    file shared by all (hashing files is not what this benchmark measures).
    """
    task = progress.add_task(
        f"ledger: {len(models) * VERSIONS_PER_MODEL:,} versions", total=len(models)
    )
    ledger = Ledger(settings)
    source = Path(tempfile.mkdtemp()) / "model.onnx"
    source.write_bytes(b"weights" * 100)
    digest, size = ledger.artifacts.put_file(source)
    meta = EventMeta(actor="bench", reason="fill", correlation_id="bench")
    for name, version_tags in catalogue(models.start, models.stop):
        with acting(meta):
            model = Model.register(name)
            aggregates: list[Any] = [model]
            for tags in version_tags:
                spec: VersionSpec = {
                    "files": [{"path": "model.onnx", "sha256": digest, "size": size}],
                    "flavor": "onnx",
                    "signature": {},
                    "tags": tags,
                    "metrics": {},
                    "description": "",
                    "lineage": {},
                }
                aggregates.append(ModelVersion.register(name, model.add_version(), spec))
        ledger.save(*aggregates)
        progress.advance(task)
    ledger.close()
    updater = ViewUpdater(settings)
    views = progress.add_task("ledger: bringing the views up to date", total=None)
    updater.catch_up(lambda done, total: progress.update(views, completed=done, total=total))
    updater.close()
    if settings.store_location.kind == "postgres":
        analyze_schema(settings.store, settings.pg_schema)
