"""`ledger export --format parquet`: the events and views round-trip, later exports write
only the new events, a stopped export resumes without duplicates, bad targets and
positions are refused."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from projections.analytics import event_rows
from projections.analytics.manifest import MANIFEST
from projections.analytics.parquet_export import export_parquet
from projections.analytics.target import ExportTarget, ExportTargetError
from projections.analytics.view_tables import exported_tables, short_name
from projections.views import Views
from tests.analytics.support import (
    ACCURACY,
    FIRST_DAY,
    SWITCH,
    add_events,
    event_keys,
    exported_events,
    feed,
    manifest_of,
    read_parquet,
)
from tests.conftest import StoreFactory


def export(store: StoreFactory, location: str, **options: Any) -> Any:
    with Views.open(store.settings()) as views:
        return export_parquet(views.db, location, **options)


def snapshot_keys(target: ExportTarget) -> list[str]:
    return sorted(target.keys("views/") + target.keys("analytics/"))


@pytest.mark.parametrize("where", ["local", "s3", "az"])
def test_the_events_and_views_read_back_equal_the_ledger(
    store: StoreFactory, shop: Ledger, where: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    location = (
        str(tmp_path / "export")
        if where == "local"
        else request.getfixturevalue(f"{'s3' if where == 's3' else 'azure'}_server").new_location()
    )
    summary = export(store, location)
    target = ExportTarget(location)
    with Views.open(store.settings()) as views:
        envelopes = feed(views)
        assert summary.position == summary.views_position == views.db.head_position()
        rows = exported_events(target)
        assert [r["position"] for r in rows] == [e["position"] for e in envelopes]
        for row, envelope in zip(rows, envelopes, strict=True):
            assert row["originator_id"] == envelope["aggregate_id"]
            assert row["version"] == envelope["aggregate_version"]
            assert (row["type"], row["subject"]) == (envelope["type"], envelope["subject"])
            assert row["timestamp"] == datetime.fromisoformat(envelope["time"])
            for field in ("actor", "reason", "correlation_id", "causation_id"):
                assert row[field] == envelope[field]
            assert json.loads(row["payload"]) == envelope["data"]
        traffic = [r for r in rows if r["type"] == "Endpoint.TrafficChanged"]
        assert {(r["entity_kind"], r["entity_name"]) for r in traffic} == {("endpoint", "shop")}
        # Every view table, as the views hold it (secrets left out).
        for table in exported_tables():
            back = read_parquet(
                target, f"views/{short_name(table)}/export={summary.views_position}/part.parquet"
            )
            stored = views.db.execute(
                f"SELECT {', '.join(back.column_names)} FROM {table.name} "
                f"ORDER BY {', '.join(table.key)}"
            )
            assert [tuple(r.values()) for r in back.to_pylist()] == [tuple(r) for r in stored]
    tokens = read_parquet(target, f"views/tokens/export={summary.views_position}/part.parquet")
    assert "token_hash" not in tokens.column_names
    manifest = manifest_of(target)
    assert manifest["position"] == summary.position and manifest["since"] == 0
    for key, count in manifest["files"].items():
        assert read_parquet(target, key).num_rows == count


def test_the_analytics_datasets_say_who_served_what_when(
    store: StoreFactory, shop: Ledger, tmp_path: Path
) -> None:
    summary = export(store, str(tmp_path / "export"))
    target = ExportTarget(str(tmp_path / "export"))

    def dataset(name: str) -> list[dict[str, Any]]:
        key = f"analytics/{name}/export={summary.views_position}/part.parquet"
        return read_parquet(target, key).to_pylist()

    versions = {(v["model"], v["version"]): dict(v["metrics"]) for v in dataset("model_versions")}
    assert {key: metrics["accuracy"] for key, metrics in versions.items()} == {
        ("iris", number): accuracy for number, accuracy in ACCURACY.items()
    }
    stretches = [
        (s["deployment"], s["version"], s["traffic"], s["valid_from"].date(),
         s["valid_to"] and s["valid_to"].date())
        for s in sorted(dataset("deployments_over_time"),
                        key=lambda s: (s["deployment"], s["from_position"]))
    ]  # fmt: skip
    first, switch = FIRST_DAY.date(), SWITCH.date()
    assert stretches == [
        ("blue", 1, 0, first, first),  # deployed, then given all traffic (health: same stretch)
        ("blue", 1, 100, first, switch),
        ("blue", 1, 0, switch, None),
        ("green", 2, 0, switch, switch),
        ("green", 2, 100, switch, None),
    ]
    changes = dataset("traffic_changes")
    assert [(c["change"], dict(c["shares"]), c["reason"]) for c in changes] == [
        ("traffic", {"blue": 100}, "first release"),
        ("traffic", {"green": 100}, "green is better"),
    ]
    assert [dict(m["aliases"]) for m in dataset("models")] == [{"champion": 1}]


def test_a_later_export_writes_only_the_new_events(
    store: StoreFactory, shop: Ledger, export_location: str
) -> None:
    first = export(store, export_location)
    target = ExportTarget(export_location)
    before = {key: target.blobs.reader(key).read() for key in event_keys(target)}
    old_snapshots = snapshot_keys(target)
    add_events(shop, 1000)
    second = export(store, export_location)

    new_keys = sorted(set(event_keys(target)) - set(before))
    assert new_keys == sorted(k for k in second.written if k.startswith("events/"))
    new_rows = [row for key in new_keys for row in read_parquet(target, key).to_pylist()]
    assert len(new_rows) == second.events == 1000
    with Views.open(store.settings()) as views:
        expected = [e["position"] for e in feed(views) if e["position"] > first.position]
    assert sorted(r["position"] for r in new_rows) == expected
    for key, data in before.items():  # the first export's part files are untouched
        assert target.blobs.reader(key).read() == data
    # The views are exported whole each time; the earlier snapshot is gone.
    assert not set(old_snapshots) & set(snapshot_keys(target))
    assert all(f"export={second.views_position}/" in key for key in snapshot_keys(target))
    assert manifest_of(target)["position"] == second.position
    assert manifest_of(target)["since"] == first.position


@pytest.mark.parametrize("stop", ["before the manifest", "between part files"])
def test_a_stopped_export_is_resumed_without_duplicates(
    store: StoreFactory,
    shop: Ledger,
    export_location: str,
    stop: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = export(store, export_location)
    target = ExportTarget(export_location)
    add_events(shop, 200)
    monkeypatch.setattr(event_rows, "FILE_ROWS", 50)
    write_json, write_parquet = ExportTarget.write_json, ExportTarget.write_parquet
    written: list[str] = []

    def dying_write_parquet(self: ExportTarget, key: str, table: Any) -> None:
        if stop == "between part files" and len(written) == 2:
            raise KeyboardInterrupt("killed")
        write_parquet(self, key, table)
        written.append(key)

    def dying_write_json(self: ExportTarget, key: str, data: Any) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(ExportTarget, "write_parquet", dying_write_parquet)
    monkeypatch.setattr(ExportTarget, "write_json", dying_write_json)
    with pytest.raises(KeyboardInterrupt):
        export(store, export_location)
    monkeypatch.setattr(ExportTarget, "write_json", write_json)
    monkeypatch.setattr(ExportTarget, "write_parquet", write_parquet)
    assert manifest_of(target)["position"] == first.position  # it claims nothing new
    stopped = [key for key in written if key.startswith("events/")]
    assert len(stopped) == (2 if stop == "between part files" else 4)

    add_events(shop, 20)
    resumed = export(store, export_location)
    assert resumed.adopted == stopped
    assert resumed.events == 220 - 50 * len(stopped)
    with Views.open(store.settings()) as views:
        assert [r["position"] for r in exported_events(target)] == [
            e["position"] for e in feed(views)
        ]
    snapshots = snapshot_keys(target)
    assert all(f"export={resumed.views_position}/" in key for key in snapshots)
    assert manifest_of(target)["position"] == resumed.position


def test_since_exports_the_events_after_a_position_and_is_checked(
    store: StoreFactory, shop: Ledger, tmp_path: Path
) -> None:
    head = export(store, str(tmp_path / "all")).position
    with pytest.raises(InvalidInputError, match=rf"--since {head + 1} is beyond the end"):
        export(store, str(tmp_path / "later"), since=head + 1)
    with pytest.raises(InvalidInputError, match="--since must be a log position"):
        export(store, str(tmp_path / "later"), since=-1)
    recent = export(store, str(tmp_path / "recent"), since=head - 3)
    assert recent.events == 3
    assert [r["position"] for r in exported_events(ExportTarget(str(tmp_path / "recent")))] == [
        head - 2, head - 1, head,
    ]  # fmt: skip
    # Going back over what a target holds would export those events twice.
    with pytest.raises(InvalidInputError, match="already holds events after position 2"):
        export(store, str(tmp_path / "all"), since=2)


def test_a_target_holding_something_else_is_refused(
    store: StoreFactory, shop: Ledger, tmp_path: Path
) -> None:
    location = str(tmp_path / "export")
    export(store, location)
    with store.fresh() as other:
        with Ledger(other) as ledger:
            ledger.endpoints.create("other")
        with Views.open(other) as views, pytest.raises(InvalidInputError, match="another ledger's"):
            export_parquet(views.db, location)
    for content, problem in (("{not json", "not JSON"), ('{"format": "x"}', "not a ledger export")):
        (tmp_path / "export" / MANIFEST).write_text(content)
        with pytest.raises(InvalidInputError, match=problem):
            export(store, location)


def test_a_target_that_cannot_be_written_is_a_clear_error(
    store: StoreFactory, shop: Ledger, tmp_path: Path, s3_server: Any
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(ExportTargetError, match=r"cannot write to .*a-file/export"):
        export(store, str(tmp_path / "a-file" / "export"))
    missing = f"s3://ledger-missing-{uuid.uuid4().hex[:12]}/export"
    with pytest.raises(ExportTargetError, match=f"cannot write to {missing}"):
        export(store, missing)
    with pytest.raises(InvalidInputError, match="unknown artifact store scheme"):
        export(store, "ftp://example.com/export")
    assert not (tmp_path / MANIFEST).exists()
