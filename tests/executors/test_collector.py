"""The replicas' request collector on its own (no Ray): sampling, hourly objects by event
time, the columns, whole writes and the window listing, in a local directory and in
object stores (moto's S3, Azurite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pytest

from executors.monitoring.collector import Collector, collected_files, read_collected
from ledger.artifacts.store import ArtifactStore
from tests.conftest import wait_for

START = datetime(2026, 3, 1, 10, 59, 59, 900_000, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Recording(Collector):
    """Remembers each object written, with its table, as ``_wrote`` is told of it."""

    written: list[tuple[str, int]]

    def _wrote(self, key: str, table: pa.Table) -> None:
        super()._wrote(key, table)
        self.written = [*getattr(self, "written", []), (key, table.num_rows)]


@pytest.fixture
def location(artifact_location: str, tmp_path: Path) -> str:
    """Where the collector writes: a local directory, or a bucket on S3 or Azurite."""
    return artifact_location or str(tmp_path / "artifacts")


def _collector(location: str, clock: Clock, cls: type[Collector] = Collector) -> Collector:
    collector = cls(location, "shop", "blue", "linear:2", "r1", flush_s=60,
                    clock=clock, background=False)  # fmt: skip
    collector.rate = 1.0
    return collector


def _keys(location: str) -> list[str]:
    return sorted(o.key for o in ArtifactStore(location).blobs.listing("collected/"))


def _offer(collector: Collector, correlation_id: str, rows: int) -> None:
    features = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)
    outputs = {
        "label": np.arange(rows, dtype=np.int64),
        "probabilities": np.full((rows, 2), 0.5, dtype=np.float32),
    }
    assert collector.offer(correlation_id, {"X": features}, outputs)


def test_collected_rows_land_in_the_hour_of_their_event_time_even_when_late(
    location: str,
) -> None:
    clock = Clock()
    collector = _collector(location, clock, Recording)
    _offer(collector, "before", 2)  # 10:59:59.9
    clock.now = START + timedelta(milliseconds=200)  # 11:00:00.1
    _offer(collector, "after", 1)
    first = collector.flush()
    assert [PurePosixPath(k).parent.name for k in first] == [
        "hour=2026-03-01T10",
        "hour=2026-03-01T11",
    ]
    clock.now = START - timedelta(minutes=5)  # a late row: scored before the last flush
    _offer(collector, "late", 1)
    (late,) = collector.flush()
    assert late == "collected/endpoint=shop/deployment=blue/hour=2026-03-01T10/r1-000003.parquet"
    assert [(k, rows) for k, rows in collector.written] == [(first[0], 2), (first[1], 1), (late, 1)]
    sketches = [k.replace(".parquet", ".sketch") for k in (*first, late)]
    assert _keys(location) == sorted([*first, late, *sketches])

    table = read_collected(collector.blobs, first[0])
    assert table.column_names == ["correlation_id", "event_time", "model", "x0", "x1", "x2",
                                  "label", "probabilities_0", "probabilities_1"]  # fmt: skip
    assert table.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert table.column("correlation_id").to_pylist() == ["before", "before"]
    assert table.column("event_time").to_pylist() == [START, START]
    assert table.column("model").to_pylist() == ["linear:2"] * 2
    assert table.column("x2").to_pylist() == [2.0, 5.0]
    assert table.column("label").to_pylist() == [0, 1]

    ten = datetime(2026, 3, 1, 10, 30)  # naive: UTC
    half_hour, hour = ten + timedelta(minutes=30), ten + timedelta(hours=1)
    assert collected_files(location, "shop", "blue", ten, half_hour) == [first[0], late]
    assert collected_files(location, "shop", "blue", ten, hour) == [first[0], late, first[1]]
    assert collected_files(location, "shop", "green", ten, hour) == []


def test_nothing_is_sampled_at_rate_zero_and_only_collected_objects_are_listed(
    location: str,
) -> None:
    clock = Clock()
    collector = _collector(location, clock)
    collector.rate = 0.0
    assert not collector.offer("off", {"X": np.ones((1, 3))}, {"label": np.ones(1)})
    assert collector.flush() == []
    assert _keys(location) == []
    collector.rate = 1.0
    _offer(collector, "kept", 1)
    (written,) = collector.flush()
    # Strangers in an hour's folder (another tool's temporary file, a marker): not listed.
    folder = written.rsplit("/", 1)[0]
    for stranger in (".r9-000001.parquet.partial", "_SUCCESS", "r9-000001.parquet.tmp"):
        collector.blobs.write(f"{folder}/{stranger}", [b"PAR1 half"])
    hour = datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert collected_files(location, "shop", "blue", hour, hour + timedelta(hours=1)) == [written]


def test_the_background_flusher_writes_and_closing_writes_what_is_left(location: str) -> None:
    collector = Collector(location, "shop", "blue", "linear:2", "r1", flush_s=0.5)
    collector.rate = 1.0
    _offer(collector, "first", 1)
    wait_for(lambda: any(k.endswith(".parquet") for k in _keys(location)), 10, "the first flush")
    _offer(collector, "last", 1)  # before the next flush: written when the replica stops
    collector.close()
    ids = sorted(
        read_collected(collector.blobs, key).column("correlation_id")[0].as_py()
        for key in _keys(location)
        if key.endswith(".parquet")
    )
    assert ids == ["first", "last"]


def test_a_store_that_cannot_be_written_loses_the_flush_and_collecting_goes_on(
    s3_server: object, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = "s3://ledger-no-such-bucket/artifacts"  # never created: every write fails
    collector = _collector(gone, Clock())
    _offer(collector, "refused", 1)
    with pytest.raises(Exception, match=r"(?i)bucket"):
        collector.flush()  # the store refuses the write
    _offer(collector, "lost", 1)
    collector.close()  # on the flusher's path the failure is logged, not raised
    assert "collected requests lost" in capsys.readouterr().err
    assert not collector._pending  # taken, and lost: not kept to grow forever
    _offer(collector, "next", 1)
    assert len(collector._pending) == 1  # sampling goes on


def test_records_of_another_shape_in_one_flush_are_kept_side_by_side(location: str) -> None:
    collector = _collector(location, Clock())
    _offer(collector, "three", 2)  # 3 features
    wider = np.ones((1, 4), dtype=np.float32)  # a request with a fourth feature
    assert collector.offer("four", {"X": wider}, {"label": np.array([1])})
    (written,) = collector.flush()
    table = read_collected(collector.blobs, written)
    assert table.column("correlation_id").to_pylist() == ["three", "three", "four"]
    assert table.column("x3").to_pylist() == [None, None, 1.0]
    assert table.column("probabilities_1").to_pylist() == [0.5, 0.5, None]
