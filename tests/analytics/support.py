"""A small ledger to export, written with known event times, and reading an export back.

- model ``iris``: version 1 (accuracy 0.91) and 2 (accuracy 0.95), on 2026-03-01;
- online endpoint ``shop``: deployment blue (iris:1) takes all traffic on 2026-03-01; on
  2026-03-03 at 10:00 UTC deployment green (iris:2) is created and takes all of it.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ledger.ledger import Ledger
from ledger.storage.decoding import EventDecoder
from ledger.storage.feed import read_feed
from projections.analytics.manifest import MANIFEST, parse_event_key
from projections.analytics.target import ExportTarget
from projections.views import Views

FIRST_DAY = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SWITCH = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # green takes all of shop's traffic
ACCURACY = {1: 0.91, 2: 0.95}


class Clock:
    """Event times under a test's control: each event 1 ms after the one before, from the
    moment last set (stands in for eventsourcing's ``datetime_now_with_tzinfo``)."""

    def __init__(self) -> None:
        self.moment = FIRST_DAY

    def set(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        self.moment += timedelta(milliseconds=1)
        return self.moment


def seed_shop(ledger: Ledger, clock: Clock, folder: Path) -> None:
    clock.set(FIRST_DAY)
    for number, accuracy in ACCURACY.items():
        files = folder / f"iris-{number}"
        files.mkdir(parents=True, exist_ok=True)
        (files / "model.json").write_text(f'{{"weights": [{number}]}}')
        ledger.models.register_version(
            "iris", files, flavor="sklearn", metrics={"accuracy": accuracy, "f1": accuracy - 0.02},
            tags={"team": "shop"}, reason=f"training run {number}",
        )  # fmt: skip
    ledger.models.set_alias("iris", "champion", 1, reason="first one")
    ledger.endpoints.create("shop", description="the web shop", reason="launch")
    ledger.endpoints.deploy("shop", "blue", "iris:1", reason="first release")
    ledger.endpoints.set_traffic("shop", {"blue": 100}, reason="first release")
    ledger.endpoints.report_health("shop", "blue", "healthy", "2/2 replicas")
    clock.set(SWITCH)
    ledger.endpoints.deploy("shop", "green", "iris:2", reason="retrained")
    ledger.endpoints.set_traffic("shop", {"green": 100}, reason="green is better")
    ledger.endpoints.report_health("shop", "green", "healthy", "2/2 replicas")


def add_events(ledger: Ledger, count: int) -> None:
    """``count`` (a multiple of 20) more events: tags set on model iris, 20 per command."""
    for round_ in range(count // 20):
        ledger.models.set_tags("iris", {f"k{i}": f"v{round_}" for i in range(20)})


def read_parquet(target: ExportTarget, key: str) -> pa.Table:
    with target.blobs.reader(key) as stream:
        return pq.read_table(io.BytesIO(stream.read()))


def event_keys(target: ExportTarget) -> list[str]:
    return sorted(k for k in target.keys("events/") if parse_event_key(k))


def exported_events(target: ExportTarget) -> list[dict[str, Any]]:
    """Every event in the export's part files, in log order (duplicates kept)."""
    rows = [row for key in event_keys(target) for row in read_parquet(target, key).to_pylist()]
    return sorted(rows, key=lambda row: row["position"])


def manifest_of(target: ExportTarget) -> dict[str, Any]:
    data = target.read_json(MANIFEST)
    assert isinstance(data, dict)
    return data


def feed(views: Views) -> list[dict[str, Any]]:
    """The whole log as the event feed serves it."""
    envelopes: list[dict[str, Any]] = []
    while batch := read_feed(views.db, EventDecoder(), len(envelopes), 1000):
        envelopes += batch
    return envelopes
