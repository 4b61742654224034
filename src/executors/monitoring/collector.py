"""Production data collection: a replica's sampled requests, written as Parquet.

On the request path a replica only draws a random number and, for a sampled request,
appends a reference to its inputs and outputs to a ``deque`` (no I/O, no lock). A
background thread flushes that buffer every ``flush_s`` seconds, and once more when the
replica stops, into one Parquet file per hour of event time that the flush holds rows for:

    <artifacts root>/collected/endpoint=<E>/deployment=<D>/hour=<YYYY-MM-DDTHH>/
        <replica>-<seq>.parquet

Beside each file, ``<replica>-<seq>.sketch``: the mergeable sketch of its features and
outputs (ledger.drift), so a monitor reads sketches, not rows.

Columns: ``correlation_id``, ``event_time`` (timestamp[us, UTC], when the request was
scored), ``model`` (NAME:VERSION), the features (``x0..x{n-1}`` for a model with one input;
``<input>`` or ``<input>_j`` with several), then the outputs (``<output>``, or
``<output>_j`` for the j-th column of a 2-D one). A file is written under a temporary name
and renamed: a crash mid-write leaves no partial ``.parquet`` behind.
"""

from __future__ import annotations

import os
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from executors.batch_dataset import prediction_columns
from ledger.drift.sketches import TableSketch
from ledger.logging import get_logger

COLLECTED = "collected"
META_COLUMNS = ("correlation_id", "event_time", "model")  # the rest: features, outputs
SKETCH_SUFFIX = ".sketch"
HOUR_FORMAT = "%Y-%m-%dT%H"
EVENT_TIME = pa.timestamp("us", tz="UTC")
log = get_logger(__name__)


@dataclass(frozen=True)
class Sampled:
    """One sampled request, as the replica scored it."""

    event_time: datetime
    correlation_id: str
    inputs: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]


def utc_now() -> datetime:
    return datetime.now(UTC)


def deployment_dir(artifacts_root: Path, endpoint: str, deployment: str) -> Path:
    """Where a deployment's collected files lie (one folder per hour below)."""
    return Path(artifacts_root) / COLLECTED / f"endpoint={endpoint}" / f"deployment={deployment}"


def hour_of(moment: datetime) -> datetime:
    """The UTC hour holding ``moment`` (a naive time is taken as UTC)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def collected_files(
    artifacts_root: Path, endpoint: str, deployment: str, start: datetime, end: datetime
) -> list[Path]:
    """The collected files of the hours that overlap ``[start, end)``, in time order
    (their rows may still need filtering on ``event_time`` at the window's edges)."""
    first, stop = hour_of(start), end.replace(tzinfo=UTC) if end.tzinfo is None else end
    files: list[Path] = []
    base = deployment_dir(artifacts_root, endpoint, deployment)
    for folder in sorted(base.glob("hour=*")):
        try:
            hour = datetime.strptime(folder.name[5:], HOUR_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            continue  # not one of ours
        if first <= hour < stop:
            files.extend(sorted(folder.glob("*.parquet")))
    return files


def sketch_path(collected: Path) -> Path:
    """Where the sketch of a collected file lies."""
    return collected.with_suffix(SKETCH_SUFFIX)


def write_sketch(collected: Path, sketch: TableSketch) -> None:
    """Store ``sketch`` beside the collected file (written whole, then renamed)."""
    target = sketch_path(collected)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(sketch.to_bytes())
    os.replace(partial, target)


def feature_columns(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Columns of a request's inputs: ``x0..x{n-1}`` for a model with one input, else
    ``<input>`` (1-D) or ``<input>_j`` (2-D) for each."""
    if len(inputs) == 1:
        (values,) = inputs.values()
        values = values.reshape(len(values), -1)
        return {f"x{j}": values[:, j] for j in range(values.shape[1])}
    return prediction_columns({n: v.reshape(len(v), -1) if v.ndim > 2 else v
                               for n, v in inputs.items()})  # fmt: skip


def sampled_table(model: str, records: list[Sampled]) -> pa.Table:
    """One table of ``records``: a row per input row, in the collected columns' order.

    Records of one schema (a replica's usually are) are stacked column by column with
    numpy; a flush of mixed schemas is put together record by record."""
    per_record = [record_columns(record) for record in records]
    names = list(per_record[0]) if per_record else []
    if any(list(columns) != names for columns in per_record):
        return pa.concat_tables(
            [_table(model, [r], [c]) for r, c in zip(records, per_record, strict=True)],
            promote_options="permissive",
        )
    return _table(model, records, per_record)


def record_columns(record: Sampled) -> dict[str, np.ndarray]:
    """A record's features, then its outputs, as one 1-D array per column."""
    outputs = {n: v.reshape(len(v), -1) if v.ndim > 2 else v for n, v in record.outputs.items()}
    return feature_columns(record.inputs) | prediction_columns(outputs)


def _table(model: str, records: list[Sampled], columns: list[dict[str, np.ndarray]]) -> pa.Table:
    """Records of the same columns as one table."""
    counts = [len(next(iter(c.values()))) if c else 0 for c in columns]
    head = {
        "correlation_id": pa.array(np.repeat([r.correlation_id for r in records], counts)),
        "event_time": pa.array(np.repeat([r.event_time for r in records], counts), EVENT_TIME),
        "model": pa.array([model] * sum(counts), pa.string()),
    }
    body = {name: pa.array(np.concatenate([c[name] for c in columns])) for name in columns[0]}
    return pa.table(head | body)


class Collector:
    """Samples a replica's requests at ``rate`` and writes them in the background."""

    def __init__(
        self,
        artifacts_root: Path,
        endpoint: str,
        deployment: str,
        model: str,
        replica: str,
        *,
        flush_s: float,
        clock: Callable[[], datetime] = utc_now,
        background: bool = True,
    ) -> None:
        self.directory = deployment_dir(artifacts_root, endpoint, deployment)
        self.model = model
        self.replica = replica
        self.rate = 0.0
        self._clock = clock
        self._pending: deque[Sampled] = deque()
        self._sequence = 0
        self._flushing = threading.Lock()  # the flusher and a stop never write at once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._run, args=(flush_s,), name="ledger-collector", daemon=True
            )
            self._thread.start()

    def offer(
        self,
        correlation_id: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
    ) -> bool:
        """On the request path: keep the request if it is sampled. Whether it was."""
        if self.rate <= 0.0 or random.random() >= self.rate:
            return False
        self._pending.append(Sampled(self._clock(), correlation_id, inputs, outputs))
        return True

    def flush(self) -> list[Path]:
        """Write what was sampled so far: one file per hour of event time."""
        with self._flushing:
            records = []
            while self._pending:  # appends go on meanwhile: popleft takes each once
                records.append(self._pending.popleft())
            written = []
            by_hour = groupby(sorted(records, key=lambda r: r.event_time),
                              key=lambda r: hour_of(r.event_time))  # fmt: skip
            for hour, group in by_hour:
                written.append(self._write(hour, list(group)))
            return written

    def _write(self, hour: datetime, records: list[Sampled]) -> Path:
        table = sampled_table(self.model, records)
        folder = self.directory / f"hour={hour.strftime(HOUR_FORMAT)}"
        folder.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        path = folder / f"{self.replica}-{self._sequence:06d}.parquet"
        partial = folder / f".{path.name}.partial"
        pq.write_table(table, partial)
        os.replace(partial, path)  # readers never see half a file
        self._wrote(path, table)
        return path

    def _wrote(self, path: Path, table: pa.Table) -> None:
        """Beside each file, the sketch of its features and outputs: a window's profile is
        then the merge of its files' sketches, with no raw row read again."""
        write_sketch(path, TableSketch.of_table(table.drop_columns(list(META_COLUMNS))))
        log.debug("collected requests written", path=str(path), rows=table.num_rows)

    def _run(self, flush_s: float) -> None:
        while not self._stop.wait(flush_s):
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception as error:  # a failed write (a full disk) must not stop collecting
            log.warning("collected requests lost: not written", directory=str(self.directory),
                        error=f"{type(error).__name__}: {error}")  # fmt: skip

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self._flush_logged()
