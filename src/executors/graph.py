"""Task graphs: what an executor is given to run, and how it reports back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from executors.runtime_envs import StepEnvironment


@dataclass(frozen=True)
class TaskResources:
    """What one task needs: CPUs, GPUs and memory (0: no reservation)."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int = 0


@dataclass(frozen=True)
class TaskCall:
    """One attempt at a task, with the results of the tasks it depends on."""

    task: str
    attempt: int
    upstream: dict[str, Any]


@dataclass(frozen=True)
class Task:
    """A node of the graph. ``function`` must be picklable for executors that run it
    in other processes (a module-level function, or a partial of one)."""

    name: str
    function: Callable[[TaskCall], Any]
    depends_on: tuple[str, ...] = ()
    resources: TaskResources = field(default_factory=TaskResources)
    max_attempts: int = 1  # failed attempts allowed before the task fails for good
    attempts_made: int = 0  # attempts an earlier run started (a resumed job): numbering
    failures: int = 0  # of those, the ones that failed and count against max_attempts
    timeout_s: float | None = None
    environment: StepEnvironment | None = None  # built by executors that can (Ray)


class TaskListener(Protocol):
    """Told about every attempt; an exception it raises stops the whole run."""

    def task_started(self, task: str, attempt: int) -> None: ...

    def task_succeeded(self, task: str, attempt: int, result: Any) -> None: ...

    def task_failed(
        self, task: str, attempt: int, error: BaseException, retrying: bool
    ) -> None: ...


@dataclass(frozen=True)
class GraphOutcome:
    """How a run ended: every task succeeded, one failed for good, or it was cancelled.

    ``error`` says why a run failed; ``listener_error`` is set when recording
    progress itself failed (the run was stopped, its state is unknown to the listener).
    """

    status: Literal["succeeded", "failed", "cancelled"]
    results: dict[str, Any]
    error: str = ""
    listener_error: BaseException | None = None


class GraphRun(Protocol):
    """A submitted graph, running."""

    def cancel(self) -> None:
        """Stop the running tasks and start no more."""

    def wait(self, timeout: float | None = None) -> GraphOutcome | None:
        """The outcome, or None if the run has not ended within ``timeout`` seconds."""


class Executor(Protocol):
    """Runs graphs of tasks. Built-in: ``local`` and ``ray``; plug-ins register a
    factory ``(settings) -> Executor`` in the ``lifecycle_ledger.executors``
    entry-point group."""

    name: str

    def submit(
        self,
        tasks: Sequence[Task],
        listener: TaskListener,
        completed: Mapping[str, Any] | None = None,
    ) -> GraphRun:
        """Start running ``tasks`` (those in ``completed`` already ran: their results)."""

    def close(self) -> None:
        """Release what the executor holds (threads, the Ray connection)."""


# Set while a task runs on an executor that stops tasks cooperatively (local threads):
# the task may check it, and command steps stop their process when it is set.
task_cancelled: ContextVar[threading.Event | None] = ContextVar("task_cancelled", default=None)


def check_graph(tasks: Sequence[Task], completed: Mapping[str, Any]) -> None:
    """Refuse a graph with duplicate names, or dependencies that are neither tasks of
    the graph nor completed ones."""
    names = [task.name for task in tasks]
    if len(set(names)) != len(names):
        raise ValueError("task names must be unique")
    known = set(names) | set(completed)
    for task in tasks:
        unknown = [d for d in task.depends_on if d not in known]
        if unknown:
            raise ValueError(f"task {task.name!r} depends on unknown task(s) {unknown}")
        if task.max_attempts < 1:
            raise ValueError(f"task {task.name!r}: max_attempts must be at least 1")
