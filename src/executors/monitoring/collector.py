"""Production data collection: a replica's sampled requests, written as Parquet.

On the request path a replica only draws a random number and, for a sampled request,
appends a reference to its inputs and outputs to a ``deque`` (no I/O, no lock). A
background thread flushes that buffer every ``flush_s`` seconds, and once more when the
replica stops, into one Parquet object per hour of event time that the flush holds rows
for, in the artifact store (a local directory or an object store by URL):

    collected/endpoint=<E>/deployment=<D>/hour=<YYYY-MM-DDTHH>/<replica>-<seq>.parquet

Beside each, ``<replica>-<seq>.sketch``: the mergeable sketch of its features and
outputs (ledger.drift), so a monitor reads sketches, not rows.

Columns: ``correlation_id``, ``event_time`` (timestamp[us, UTC], when the request was
scored), ``model`` (NAME:VERSION), the features (``x0..x{n-1}`` for a model with one input;
``<input>`` or ``<input>_j`` with several), then the outputs (``<output>``, or
``<output>_j`` for the j-th column of a 2-D one). A flush is small: its Parquet file is
made in memory and written as one object; objects are written whole (atomic), so a crash
mid-write leaves no partial object behind.
"""

from __future__ import annotations

import io
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from executors.batch_dataset import prediction_columns
from ledger.artifacts.blobs import Blobs
from ledger.artifacts.store import ArtifactStore
from ledger.drift.sketches import TableSketch
from ledger.logging import get_logger

COLLECTED = "collected"
META_COLUMNS = ("correlation_id", "event_time", "model")  # the rest: features, outputs
PARQUET_SUFFIX = ".parquet"
SKETCH_SUFFIX = ".sketch"
HOUR_FORMAT = "%Y-%m-%dT%H"
HOUR = timedelta(hours=1)
EVENT_TIME = pa.timestamp("us", tz="UTC")
log = get_logger(__name__)

Location = ArtifactStore | Blobs | Path | str
"""Where collected data goes: an artifact store (or its objects), or its location (a
directory or a store URL)."""


@dataclass(frozen=True)
class Sampled:
    """One sampled request, as the replica scored it."""

    event_time: datetime
    correlation_id: str
    inputs: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]


def utc_now() -> datetime:
    return datetime.now(UTC)


def blobs_of(location: Location) -> Blobs:
    """The objects of an artifact store, given as a store, its objects or its location."""
    if isinstance(location, ArtifactStore):
        return location.blobs
    if isinstance(location, Path | str):
        return ArtifactStore(location).blobs
    return location


def deployment_prefix(endpoint: str, deployment: str) -> str:
    """The key prefix of a deployment's collected objects (one folder per hour below)."""
    return f"{COLLECTED}/endpoint={endpoint}/deployment={deployment}/"


def hour_of(moment: datetime) -> datetime:
    """The UTC hour holding ``moment`` (a naive time is taken as UTC)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def hour_prefix(endpoint: str, deployment: str, hour: datetime) -> str:
    """The key prefix of a deployment's objects collected in ``hour``."""
    return f"{deployment_prefix(endpoint, deployment)}hour={hour.strftime(HOUR_FORMAT)}/"


def collected_files(
    location: Location, endpoint: str, deployment: str, start: datetime, end: datetime
) -> list[str]:
    """The keys of the collected Parquet objects of the hours that overlap ``[start, end)``,
    in time order (their rows may still need filtering on ``event_time`` at the window's
    edges). Each hour is listed on its own: a deployment's older hours are never listed."""
    blobs = blobs_of(location)
    hour, stop = hour_of(start), end.replace(tzinfo=UTC) if end.tzinfo is None else end
    keys: list[str] = []
    while hour < stop:
        listed = blobs.listing(hour_prefix(endpoint, deployment, hour))
        keys.extend(sorted(o.key for o in listed if is_collected(o.key)))
        hour += HOUR
    return keys


def is_collected(key: str) -> bool:
    """Whether ``key`` names a collected Parquet object (not its sketch, nor a stranger)."""
    name = key.rsplit("/", 1)[-1]
    return name.endswith(PARQUET_SUFFIX) and not name.startswith((".", "_"))


def sketch_key(collected: str) -> str:
    """The key of a collected object's sketch."""
    return collected.removesuffix(PARQUET_SUFFIX) + SKETCH_SUFFIX


def write_sketch(blobs: Blobs, collected: str, sketch: TableSketch) -> None:
    """Store ``sketch`` beside the collected object (one object, written whole)."""
    blobs.write(sketch_key(collected), [sketch.to_bytes()])


def read_sketch(blobs: Blobs, collected: str) -> TableSketch | None:
    """The stored sketch of a collected object; None when it has none."""
    try:
        with blobs.reader(sketch_key(collected)) as stream:
            return TableSketch.from_bytes(stream.read())
    except FileNotFoundError:
        return None


def read_collected(blobs: Blobs, key: str, columns: Sequence[str] | None = None) -> pa.Table:
    """A collected object as a table (a flush is small: read whole, in memory)."""
    with blobs.reader(key) as stream:
        data = stream.read()
    return pq.read_table(pa.BufferReader(data), columns=list(columns) if columns else None)


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
    """Samples a replica's requests at ``rate`` and writes them in the background to the
    artifact store at ``location`` (a store, a directory or a store URL)."""

    def __init__(
        self,
        location: Location,
        endpoint: str,
        deployment: str,
        model: str,
        replica: str,
        *,
        flush_s: float,
        clock: Callable[[], datetime] = utc_now,
        background: bool = True,
    ) -> None:
        self.blobs = blobs_of(location)
        self.endpoint = endpoint
        self.deployment = deployment
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

    def flush(self) -> list[str]:
        """Write what was sampled so far: one object per hour of event time; their keys."""
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

    def _write(self, hour: datetime, records: list[Sampled]) -> str:
        table = sampled_table(self.model, records)
        self._sequence += 1
        key = (
            f"{hour_prefix(self.endpoint, self.deployment, hour)}"
            f"{self.replica}-{self._sequence:06d}{PARQUET_SUFFIX}"
        )
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        self.blobs.write(key, [buffer.getvalue()])  # whole or not at all
        self._wrote(key, table)
        return key

    def _wrote(self, key: str, table: pa.Table) -> None:
        """Beside each object, the sketch of its features and outputs: a window's profile
        is then the merge of its objects' sketches, with no raw row read again."""
        sketch = TableSketch.of_table(table.drop_columns(list(META_COLUMNS)))
        write_sketch(self.blobs, key, sketch)
        log.debug("collected requests written", key=key, store=self.blobs.url,
                  rows=table.num_rows)  # fmt: skip

    def _run(self, flush_s: float) -> None:
        while not self._stop.wait(flush_s):
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception as error:  # a failed write (a store down) must not stop collecting
            log.warning("collected requests lost: not written", store=self.blobs.url,
                        prefix=deployment_prefix(self.endpoint, self.deployment),
                        error=f"{type(error).__name__}: {error}")  # fmt: skip

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self._flush_logged()
