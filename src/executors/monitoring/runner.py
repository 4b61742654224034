"""Running monitors: each due window judged against the monitor's reference, recorded.

The worker calls ``MonitorRunner.run_due`` on a schedule; ``ledger monitor run`` calls
``evaluate`` for one window on demand. Several workers may run at once: recording a
window is a command that refuses a window already recorded, so each is judged once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

import pyarrow.parquet as pq

from executors.monitoring.collector import collected_files, read_collected
from executors.monitoring.evaluation import Judgement, judge, split_outputs
from executors.monitoring.performance import joined, performance, performance_results
from executors.monitoring.windows import due_windows, window_sketch
from ledger.data_sketch import version_sketch
from ledger.domain.monitor import Monitor, parse_duration, parse_reference
from ledger.drift.sketches import TableSketch
from ledger.errors import InvalidInputError, LedgerError, RuleViolationError
from ledger.ground_truth import CORRELATION
from ledger.ledger import Ledger
from ledger.logging import get_logger
from projections.training_data import training_data
from projections.views import Views

GRACE_FLUSHES = 2  # a window is judged this many replica flushes after it ends
log = get_logger(__name__)


@dataclass(frozen=True)
class Served:
    """What a monitor watches: the model answering (NAME:VERSION), its outputs' names,
    and the endpoint's deployments taking live traffic."""

    model: str
    outputs: list[str]
    live: list[str]


def prediction_column(columns: list[str]) -> str | None:
    """The collected column holding a model's prediction: its ``label`` output, else its
    only output column; None when the window collected none."""
    if not columns:
        return None
    if "label" in columns:
        return "label"
    if len(columns) == 1:
        return columns[0]
    raise InvalidInputError(
        f"the model's outputs are collected as {', '.join(columns)}: performance needs a "
        "'label' output or a single output column"
    )


class MonitorRunner:
    """Judges monitors' windows with a ledger (to record) and its views (to read)."""

    def __init__(self, ledger: Ledger, views: Views) -> None:
        self.ledger = ledger
        self.views = views
        self.blobs = ledger.artifacts.blobs

    def run_due(self, now: datetime | None = None) -> int:
        """Judge every monitor's windows that ended and were not judged yet; how many. A
        monitor that cannot judge its window (its reference has no sketch, its endpoint
        has no deployment left...) is logged and tried again next time; the others go on."""
        now = now or datetime.now(UTC)
        grace_s = GRACE_FLUSHES * self.ledger.settings.collect_flush_s
        judged = 0
        for monitor in self.views.monitors():
            last = monitor["last_window_end"]
            created = datetime.fromisoformat(monitor["created_at"])
            ended = datetime.fromisoformat(last) if last else None
            for start, end in due_windows(monitor["every_s"], created, ended, now, grace_s):
                try:
                    self.evaluate(monitor, start, end)
                except RuleViolationError:
                    break  # another worker judged it first (or the monitor was deleted)
                except LedgerError as error:
                    log.warning("monitor cannot judge its window", monitor=monitor["name"],
                                window_end=end.isoformat(), error=str(error))  # fmt: skip
                    break
                except Exception:
                    log.exception("judging a monitor's window failed", monitor=monitor["name"],
                                  window_end=end.isoformat())  # fmt: skip
                    break
                judged += 1
        return judged

    def evaluate(
        self, monitor: dict[str, Any], start: datetime, end: datetime, *, on_demand: bool = False
    ) -> Monitor:
        """Judge the window ``[start, end)`` and record it (``on_demand``: a window judged
        before or still in progress, the schedule left as it is)."""
        served = self._served(monitor)
        deployments = [monitor["deployment"]] if monitor["deployment"] else served.live
        window = window_sketch(self.blobs, monitor["endpoint"], deployments, start, end)
        features, predicted = split_outputs(window, served.outputs)
        reference, reference_outputs = self._reference(monitor, start, served)
        judgement = judge(monitor, reference, features, reference_outputs, predicted)
        if "performance" in monitor["signals"]:
            column = prediction_column(list(predicted.columns))
            self._performance(monitor, judgement, deployments, (start, end), column)
        return self._record(monitor["name"], start, end, window.rows, judgement, on_demand)

    def _performance(
        self,
        monitor: dict[str, Any],
        judgement: Judgement,
        deployments: list[str],
        window: tuple[datetime, datetime],
        column: str | None,
    ) -> None:
        """Join the window's predictions (``column``; None: nothing collected) with the
        endpoint's ground truth."""
        if column is None:
            judgement.breaches["performance"] = None
            return
        collected = [
            read_collected(self.blobs, key, [CORRELATION, column])
            for deployment in deployments
            for key in collected_files(self.blobs, monitor["endpoint"], deployment, *window)
        ]
        labels = [
            pq.read_table(BytesIO(self._blob(digest)))
            for digest in self.views.ground_truth(monitor["endpoint"])
        ]
        predicted, actual = joined(collected, labels, column)
        results, breaches = performance_results(
            performance(predicted, actual) if predicted else {},
            len(predicted),
            monitor["thresholds"],
            monitor["min_samples"],
        )
        judgement.results.extend(results)
        judgement.breaches["performance"] = breaches

    def _record(
        self,
        name: str,
        start: datetime,
        end: datetime,
        rows: int,
        judgement: Judgement,
        on_demand: bool,
    ) -> Monitor:
        return self.ledger.monitors.record_window(
            name,
            window_start=start.isoformat(),
            window_end=end.isoformat(),
            rows=rows,
            results=judgement.results,
            drift_shares=judgement.drift_shares,
            breaches=judgement.breaches,
            on_demand=on_demand,
        )

    # -- what the window is compared with ------------------------------------------------

    def _served(self, monitor: dict[str, Any]) -> Served:
        """The watched deployment's model (the one taking most traffic when the monitor
        watches them all), its outputs, and the deployments taking live traffic (mirrored
        copies are not production's requests)."""
        endpoint = self.views.endpoint(monitor["endpoint"])
        deployments, traffic = endpoint["deployments"], endpoint["traffic"]
        name = monitor["deployment"] or max(traffic, key=traffic.__getitem__, default="")
        if name not in deployments:
            raise InvalidInputError(
                f"endpoint {monitor['endpoint']!r} has no deployment "
                + (f"{name!r}" if name else "taking traffic")
            )
        model = f"{deployments[name]['model']}:{deployments[name]['version']}"
        signature = self.views.version(model)["signature"]
        outputs = [output["name"] for output in signature.get("outputs", [])]
        return Served(model, outputs, sorted(d for d, weight in traffic.items() if weight))

    def _reference(
        self, monitor: dict[str, Any], start: datetime, served: Served
    ) -> tuple[TableSketch, TableSketch | None]:
        """The reference's features, and its outputs when known (the predictions of a
        batch job over the reference data, or an earlier window's outputs)."""
        kind, argument = parse_reference(monitor["reference"])
        if kind == "window":
            before = start - parse_duration(argument)
            deployments = [monitor["deployment"]] if monitor["deployment"] else served.live
            earlier = window_sketch(self.blobs, monitor["endpoint"], deployments, before, start)
            return split_outputs(earlier, served.outputs)
        if kind == "training":
            found = training_data(self.views, served.model)
            if found is None:
                raise InvalidInputError(
                    f"no training data recorded in the lineage of {served.model}: give the "
                    "monitor a data:NAME:VERSION reference"
                )
            argument = found
        return self._data_reference(argument, served.model)

    def _data_reference(self, ref: str, model: str) -> tuple[TableSketch, TableSketch | None]:
        version = self.views.asset_version("data", ref)
        features = version_sketch(self.ledger.artifacts, version, ref.partition(":")[0])
        predictions = self.views.predictions_of(version["digest"], model)
        if predictions is None:
            return features, None
        table = pq.read_table(BytesIO(self._blob(predictions)))
        return features, TableSketch.of_table(table)

    def _blob(self, digest: str) -> bytes:
        with self.ledger.artifacts.open_blob(digest) as blob:
            return blob.read()
