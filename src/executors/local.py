"""The local executor: tasks run on threads of this process (tests, tiny jobs)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from dataclasses import dataclass
from typing import Any

from executors.graph import Task, TaskCall, task_cancelled
from executors.runtime_envs import UnbuildableEnvironmentError
from executors.scheduler import TaskPoolExecutor


def _check_environment(task: Task) -> None:
    """Threads share this process's packages: an environment that only sets variables
    runs here, one that installs packages needs the Ray executor."""
    environment = task.environment
    if environment is None:
        return
    if environment.refused:
        raise UnbuildableEnvironmentError(environment.refused)
    if environment.installs_packages:
        raise UnbuildableEnvironmentError(
            f"environment {environment.ref} installs packages "
            f"({', '.join(environment.runtime_env['pip'])}), which the local executor "
            "cannot do: run the job on the Ray executor (LEDGER_EXECUTOR=ray)"
        )


@dataclass(frozen=True)
class LocalHandle:
    future: Future[Any]
    cancelled: threading.Event


class LocalExecutor(TaskPoolExecutor[LocalHandle]):
    """Runs up to ``max_workers`` tasks at once on threads.

    A thread cannot be killed: cancelling sets the task's ``task_cancelled``
    event, which stops a command step's process and which a Python step can
    check (``ctx.cancelled``). Resources are not reserved.
    """

    name = "local"

    def __init__(self, max_workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="step")

    def start_task(self, task: Task, call: TaskCall) -> LocalHandle:
        _check_environment(task)
        cancelled = threading.Event()

        def run() -> Any:
            task_cancelled.set(cancelled)
            return task.function(call)

        return LocalHandle(self._pool.submit(copy_context().run, run), cancelled)

    def wait_any(self, handles: Sequence[LocalHandle], timeout: float) -> list[LocalHandle]:
        done, _ = wait([h.future for h in handles], timeout=timeout, return_when=FIRST_COMPLETED)
        return [h for h in handles if h.future in done]

    def result(self, handle: LocalHandle) -> Any:
        return handle.future.result()

    def cancel_task(self, handle: LocalHandle) -> None:
        handle.cancelled.set()
        handle.future.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
