"""A batch job's input as a Ray Dataset, scored by actors that each hold an ONNX session.

The input is read in blocks by Ray Data's read tasks (never whole, never by the worker
process); the model's feature columns are mini-batched to ``OnnxBatchScorer`` actors,
one per replica of the deployment, with its CPUs, GPUs and memory. A failed mini-batch
is scored again (a replica that died is restarted first) up to the job's
``max_retries`` times.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray.data import ActorPoolStrategy, DataContext, Dataset

from executors.features import feature_columns
from executors.serving.replica import ModelReplica, reservable_gpus
from ledger.data_profile import csv_options, dataset_files
from ledger.domain.batch_job import BatchJob

READERS = 2  # read tasks at a time


def feature_dataset(
    path: Path, features: int, blocks: int, *, on_this_node: bool = False
) -> Dataset:
    """The first ``features`` numeric columns of a CSV or Parquet file (or a directory of
    them), exactly that many, read lazily in about ``blocks`` blocks; InvalidInputError
    when the columns do not fit. ``on_this_node``: the file is this node's own (an
    object fetched here), so it is read on this node."""
    fmt, files = dataset_files(path)
    names = [str(file) for file in files]
    # Reading reserves no CPU, as when the worker read the input itself: the replicas
    # may hold every CPU of the cluster, and reads waiting for one would never run. (The
    # newer datasource lists files in a task of its own that takes a CPU.)
    DataContext.get_current().use_datasource_v2 = False
    options: dict[str, Any] = {"override_num_blocks": blocks, "num_cpus": 0, "concurrency": READERS}
    if on_this_node:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node = ray.get_runtime_context().get_node_id()
        strategy = NodeAffinitySchedulingStrategy(node, soft=False)
        # Ray 2.60 has no named parameter for a scheduling strategy (hence its warning).
        options["ray_remote_args"] = {"scheduling_strategy": strategy}
    if fmt == "parquet":
        dataset = ray.data.read_parquet(names, **options)
    else:
        dataset = ray.data.read_csv(names, **options, **csv_options(files[0]))
    columns = feature_columns(path, dataset.schema().base_schema, features, exact=True)
    return dataset.select_columns(columns)


def scored_dataset(
    features: Dataset,
    job: BatchJob,
    resources: Mapping[str, Any],
    scorer: Any,
    scorer_args: tuple[Any, ...],
) -> Dataset:
    """``features`` scored by ``scorer`` (a callable class such as OnnxBatchScorer, built
    with ``scorer_args``) on the deployment's replicas, in input order."""
    # The dataset's own context: a read copies the process's current one, so a change to
    # that after the read would reach only the process's next job.
    context = features.context
    context.execution_options.preserve_order = True
    # An exception in a replica is retried as a crash is.
    context.retried_map_errors = True
    context.max_map_retries = job.max_retries
    context.enable_progress_bars = False
    return features.map_batches(
        scorer,
        fn_constructor_args=scorer_args,
        batch_size=job.mini_batch_size,
        batch_format="numpy",
        compute=ActorPoolStrategy(size=resources["replicas"]),
        num_cpus=resources["cpus"],
        num_gpus=reservable_gpus(resources),
        memory=resources["memory_mb"] * 2**20,
        # Ray 2.60 has no named parameters for these yet (hence its deprecation warning).
        max_restarts=job.max_retries,
        # Retried until the replica answers or is dead for good (max_restarts bounds that):
        # a count would be spent in the seconds before the cluster declares a lost node
        # dead, each try failing at once with ActorUnavailableError. Exceptions of the
        # model are not retried here but by max_map_retries.
        max_task_retries=-1,
    )


class OnnxBatchScorer:
    """One replica of a batch job: an ONNX Runtime session (on CUDA when a GPU is wanted
    and present) scoring mini-batches of feature columns."""

    def __init__(self, artifacts_url: str, files: list[dict[str, Any]], want_gpu: bool) -> None:
        # The session holds the model once loaded: its files need not outlive this.
        with tempfile.TemporaryDirectory(prefix="ledger-batch-") as work_dir:
            self.replica = ModelReplica(artifacts_url, files, want_gpu, work_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = np.column_stack(list(batch.values())).astype(np.float32, copy=False)
        return prediction_columns(self.replica.score_arrays(features))


def prediction_columns(outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One column per output; ``name_j`` for the j-th column of a 2-D output."""
    columns: dict[str, np.ndarray] = {}
    for name, values in outputs.items():
        if values.ndim == 1:
            columns[name] = values
        else:
            for j in range(values.shape[1]):
                columns[f"{name}_{j}"] = values[:, j]
    return columns
