"""The replicas' request collector on its own (no Ray): sampling, hourly files by event
time, the columns, atomic writes and the window listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from executors.monitoring.collector import Collector, collected_files
from tests.conftest import wait_for

START = datetime(2026, 3, 1, 10, 59, 59, 900_000, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Recording(Collector):
    """Remembers each file written, with its table, as ``_wrote`` is told of it."""

    written: list[tuple[Path, int]]

    def _wrote(self, path: Path, table: pa.Table) -> None:
        super()._wrote(path, table)
        self.written = [*getattr(self, "written", []), (path, table.num_rows)]


def _collector(tmp_path: Path, clock: Clock, cls: type[Collector] = Collector) -> Collector:
    collector = cls(tmp_path, "shop", "blue", "linear:2", "r1", flush_s=60,
                    clock=clock, background=False)  # fmt: skip
    collector.rate = 1.0
    return collector


def _offer(collector: Collector, correlation_id: str, rows: int) -> None:
    features = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)
    outputs = {
        "label": np.arange(rows, dtype=np.int64),
        "probabilities": np.full((rows, 2), 0.5, dtype=np.float32),
    }
    assert collector.offer(correlation_id, {"X": features}, outputs)


def test_collected_rows_land_in_the_hour_of_their_event_time_even_when_late(
    tmp_path: Path,
) -> None:
    clock = Clock()
    collector = _collector(tmp_path, clock, Recording)
    _offer(collector, "before", 2)  # 10:59:59.9
    clock.now = START + timedelta(milliseconds=200)  # 11:00:00.1
    _offer(collector, "after", 1)
    first = collector.flush()
    assert [p.parent.name for p in first] == ["hour=2026-03-01T10", "hour=2026-03-01T11"]
    clock.now = START - timedelta(minutes=5)  # a late row: scored before the last flush
    _offer(collector, "late", 1)
    (late,) = collector.flush()
    assert late.parent.name == "hour=2026-03-01T10" and late.name == "r1-000003.parquet"
    assert late.parent.parent == tmp_path / "collected" / "endpoint=shop" / "deployment=blue"
    assert [(p, rows) for p, rows in collector.written] == [(first[0], 2), (first[1], 1), (late, 1)]

    table = pq.read_table(first[0])
    assert table.column_names == ["correlation_id", "event_time", "model", "x0", "x1", "x2",
                                  "label", "probabilities_0", "probabilities_1"]  # fmt: skip
    assert table.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert table.column("correlation_id").to_pylist() == ["before", "before"]
    assert table.column("event_time").to_pylist() == [START, START]
    assert table.column("model").to_pylist() == ["linear:2"] * 2
    assert table.column("x2").to_pylist() == [2.0, 5.0]
    assert table.column("label").to_pylist() == [0, 1]

    ten = datetime(2026, 3, 1, 10, 30)  # naive: UTC
    assert collected_files(tmp_path, "shop", "blue", ten, ten + timedelta(minutes=30)) == [
        first[0],
        late,
    ]
    assert collected_files(tmp_path, "shop", "blue", ten, ten + timedelta(hours=1)) == [
        first[0],
        late,
        first[1],
    ]
    assert collected_files(tmp_path, "shop", "green", ten, ten + timedelta(hours=1)) == []


def test_nothing_is_sampled_at_rate_zero_and_a_half_written_file_is_never_listed(
    tmp_path: Path,
) -> None:
    clock = Clock()
    collector = _collector(tmp_path, clock)
    collector.rate = 0.0
    assert not collector.offer("off", {"X": np.ones((1, 3))}, {"label": np.ones(1)})
    assert collector.flush() == []
    assert not (tmp_path / "collected").exists()
    collector.rate = 1.0
    _offer(collector, "kept", 1)
    (written,) = collector.flush()
    # A replica that died mid-write leaves its temporary file: readers never see it.
    (written.parent / ".r9-000001.parquet.partial").write_bytes(b"PAR1 half")
    hour = datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert collected_files(tmp_path, "shop", "blue", hour, hour + timedelta(hours=1)) == [written]


def test_the_background_flusher_writes_and_closing_writes_what_is_left(tmp_path: Path) -> None:
    collector = Collector(tmp_path, "shop", "blue", "linear:2", "r1", flush_s=0.5)
    collector.rate = 1.0
    _offer(collector, "first", 1)
    wait_for(lambda: bool(list(tmp_path.rglob("*.parquet"))), 10, "the first flush")
    _offer(collector, "last", 1)  # before the next flush: written when the replica stops
    collector.close()
    ids = sorted(
        pq.read_table(path).column("correlation_id")[0].as_py()
        for path in tmp_path.rglob("*.parquet")
    )
    assert ids == ["first", "last"]


def test_records_of_another_shape_in_one_flush_are_kept_side_by_side(tmp_path: Path) -> None:
    collector = _collector(tmp_path, Clock())
    _offer(collector, "three", 2)  # 3 features
    wider = np.ones((1, 4), dtype=np.float32)  # a request with a fourth feature
    assert collector.offer("four", {"X": wider}, {"label": np.array([1])})
    (written,) = collector.flush()
    table = pq.read_table(written)
    assert table.column("correlation_id").to_pylist() == ["three", "three", "four"]
    assert table.column("x3").to_pylist() == [None, None, 1.0]
    assert table.column("probabilities_1").to_pylist() == [0.5, 0.5, None]
