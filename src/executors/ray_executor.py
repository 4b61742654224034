"""The Ray executor: each task attempt is a Ray task with the step's resources."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import ray
from ray.exceptions import (
    RayTaskError,
    RuntimeEnvSetupError,
    TaskCancelledError,
    WorkerCrashedError,
)

from executors.graph import Task, TaskCall
from executors.runtime_envs import UnbuildableEnvironmentError, build_failure
from executors.scheduler import TaskPoolExecutor
from ledger.logging import get_logger

RESOURCES_TTL_S = 10.0  # how long the cluster's total resources are taken as known
log = get_logger(__name__)


class StepProcessDiedError(Exception):
    """The process running a step died (killed, out of memory...)."""


class UnschedulableStepError(Exception):
    """The step asks for more than the whole Ray cluster has: it would wait forever."""


def connect_ray(address: str = "", num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` (or RAY_ADDRESS), else start a local Ray; once
    per process."""
    if not ray.is_initialized():
        ray.init(
            address=address or None,
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        log.info("ray connected", address=address or "local")


def _run_task(function: Callable[[TaskCall], Any], call: TaskCall) -> Any:
    return function(call)


class RayExecutor(TaskPoolExecutor["ray.ObjectRef[Any]"]):
    """Runs tasks on Ray: a cluster at ``address``, or a Ray started in this process.

    Tasks get ``num_cpus``/``num_gpus``/``memory`` from the step's resources, so Ray
    places them where they fit and runs independent ones in parallel. A step's
    environment becomes the task's ``runtime_env`` (executors.runtime_envs). Cancelling
    kills the task's worker process.
    """

    name = "ray"
    builds_environments = True

    def __init__(self, address: str = "", num_cpus: int | None = None) -> None:
        connect_ray(address, num_cpus)
        self._remote = ray.remote(max_retries=0)(_run_task)
        self._resources: dict[str, float] = {}
        self._resources_read_at = -RESOURCES_TTL_S
        self._environments: dict[ray.ObjectRef[Any], str] = {}  # running task -> its env

    def start_task(self, task: Task, call: TaskCall) -> ray.ObjectRef[Any]:
        self._check_fits(task)
        options: dict[str, Any] = {
            "num_cpus": task.resources.cpus,
            "num_gpus": task.resources.gpus,
            "name": f"{task.name}#{call.attempt}",
        }
        if task.resources.memory_mb:
            options["memory"] = task.resources.memory_mb * 1024 * 1024
        environment = task.environment
        if environment is not None:
            if environment.refused:
                raise UnbuildableEnvironmentError(environment.refused)
            if environment.runtime_env:
                options["runtime_env"] = environment.runtime_env
        ref: ray.ObjectRef[Any] = self._remote.options(**options).remote(task.function, call)
        if environment is not None and environment.runtime_env:
            self._environments[ref] = environment.ref
        return ref

    def _check_fits(self, task: Task) -> None:
        """Refuse a task no node of the cluster, as it is now, could ever run."""
        if time.monotonic() - self._resources_read_at > RESOURCES_TTL_S:
            self._resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
            self._resources_read_at = time.monotonic()
        wanted = {"CPU": task.resources.cpus, "GPU": task.resources.gpus}
        for name, amount in wanted.items():
            have = self._resources.get(name, 0.0)
            if amount > have:
                raise UnschedulableStepError(
                    f"the step needs {amount:g} {name}(s); the Ray cluster has {have:g}"
                )

    def wait_any(
        self, handles: Sequence[ray.ObjectRef[Any]], timeout: float
    ) -> list[ray.ObjectRef[Any]]:
        ready, rest = ray.wait(list(handles), num_returns=1, timeout=timeout)
        if ready and rest:  # collect whatever else is ready too
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        return ready

    def result(self, handle: ray.ObjectRef[Any]) -> Any:
        environment = self._environments.pop(handle, "")
        try:
            return ray.get(handle)
        except RuntimeEnvSetupError as error:  # the step never ran
            raise build_failure(environment, str(error)) from None
        except RayTaskError as error:
            cause = error.cause
            raise (cause if isinstance(cause, Exception) else error) from None
        except TaskCancelledError:
            raise StepProcessDiedError("the step was cancelled") from None
        except WorkerCrashedError:
            raise StepProcessDiedError("the process running the step died") from None

    def cancel_task(self, handle: ray.ObjectRef[Any]) -> None:
        self._environments.pop(handle, None)
        ray.cancel(handle, force=True)
