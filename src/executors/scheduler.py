"""Running a task graph on any executor that can start, await and cancel single tasks.

The scheduler is the driver: it starts every task whose dependencies have
succeeded (so independent tasks run in parallel), retries a failed attempt up
to the task's limit, enforces timeouts, and reports each attempt to the
listener. Executors only implement the four task primitives of
:class:`TaskPoolExecutor`.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from executors.graph import GraphOutcome, Task, TaskCall, TaskListener, check_graph
from ledger.logging import get_logger

H = TypeVar("H")
POLL_S = 0.05  # how often the scheduler checks for cancellation and timeouts
log = get_logger(__name__)


class StepTimeoutError(Exception):
    """A task ran longer than its ``timeout_s``."""


class TaskPoolExecutor(ABC, Generic[H]):
    """An executor built from task primitives; ``submit`` schedules the graph."""

    name = "abstract"

    @abstractmethod
    def start_task(self, task: Task, call: TaskCall) -> H:
        """Start one attempt; return a handle to wait on."""

    @abstractmethod
    def wait_any(self, handles: Sequence[H], timeout: float) -> list[H]:
        """The handles that have finished, waiting up to ``timeout`` for the first."""

    @abstractmethod
    def result(self, handle: H) -> Any:
        """The finished task's result, or raise its error."""

    @abstractmethod
    def cancel_task(self, handle: H) -> None:
        """Stop a running task (best effort; the handle is then abandoned)."""

    def submit(
        self,
        tasks: Sequence[Task],
        listener: TaskListener,
        completed: Mapping[str, Any] | None = None,
    ) -> ScheduledRun[H]:
        check_graph(tasks, completed or {})
        return ScheduledRun(self, list(tasks), listener, dict(completed or {}))

    def close(self) -> None:
        """Nothing to release by default."""


@dataclass
class _Attempt(Generic[H]):
    task: Task
    number: int
    handle: H
    started: float


class ScheduledRun(Generic[H]):
    """One graph being run by a :class:`TaskPoolExecutor`, on a thread of its own."""

    def __init__(
        self,
        executor: TaskPoolExecutor[H],
        tasks: list[Task],
        listener: TaskListener,
        completed: dict[str, Any],
    ) -> None:
        self._executor = executor
        self._tasks = {task.name: task for task in tasks}
        self._listener = listener
        self._results = completed
        self._attempts = {task.name: task.attempts_made for task in tasks}
        self._failures = {task.name: task.failures for task in tasks}
        self._running: list[_Attempt[H]] = []
        self._cancel = threading.Event()
        self._outcome: GraphOutcome | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._drive, name="graph-run", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> GraphOutcome | None:
        self._done.wait(timeout)
        return self._outcome

    # -- the driver loop -----------------------------------------------------------------

    def _drive(self) -> None:
        try:
            self._outcome = self._run()
        except Exception as error:  # the listener failed: stop everything
            log.warning("stopping a run: recording its progress failed", error=str(error))
            self._stop_running()
            self._outcome = GraphOutcome(
                "failed", dict(self._results), str(error), listener_error=error
            )
        finally:
            self._done.set()

    def _run(self) -> GraphOutcome:
        failure = ""
        while True:
            if self._cancel.is_set():
                self._stop_running()
                return GraphOutcome("cancelled", dict(self._results))
            if not failure:
                failure = self._start_ready()
            if not self._running:
                if failure:
                    return GraphOutcome("failed", dict(self._results), failure)
                if all(name in self._results for name in self._tasks):
                    return GraphOutcome("succeeded", dict(self._results))
                raise RuntimeError("no task can start: the graph has a cycle")
            finished = self._executor.wait_any([a.handle for a in self._running], POLL_S)
            for attempt in self._finished_or_timed_out(finished):
                failure = self._settle(attempt, retry_allowed=not failure) or failure

    def _start_ready(self) -> str:
        """Start every task whose dependencies succeeded; a failure message if one cannot."""
        busy = {a.task.name for a in self._running}
        for task in self._tasks.values():
            if task.name in self._results or task.name in busy:
                continue
            if all(dep in self._results for dep in task.depends_on):
                number = self._attempts[task.name] + 1
                self._attempts[task.name] = number
                self._listener.task_started(task.name, number)
                call = TaskCall(task.name, number, {d: self._results[d] for d in task.depends_on})
                try:
                    handle = self._executor.start_task(task, call)
                except Exception as error:  # e.g. resources the executor can never provide
                    self._listener.task_failed(task.name, number, error, False)
                    return f"step {task.name!r} could not start: {error}"
                self._running.append(_Attempt(task, number, handle, time.monotonic()))
        return ""

    def _finished_or_timed_out(self, finished: list[H]) -> list[_Attempt[H]]:
        now = time.monotonic()
        done = [
            a
            for a in self._running
            if any(a.handle is h for h in finished)
            or (a.task.timeout_s is not None and now - a.started > a.task.timeout_s)
        ]
        for attempt in done:
            self._running.remove(attempt)
        return done

    def _settle(self, attempt: _Attempt[H], *, retry_allowed: bool) -> str:
        """Report a finished attempt; return the run's failure message if it failed for good."""
        name, number = attempt.task.name, attempt.number
        try:
            if attempt.task.timeout_s is not None and not self._is_finished(attempt):
                self._executor.cancel_task(attempt.handle)
                raise StepTimeoutError(f"timed out after {attempt.task.timeout_s:g} s")
            result = self._executor.result(attempt.handle)
        except Exception as error:
            self._failures[name] += 1
            retrying = retry_allowed and self._failures[name] < attempt.task.max_attempts
            self._listener.task_failed(name, number, error, retrying)
            if retrying:
                return ""
            return f"step {name!r} failed after {number} attempt(s): {error}"
        self._listener.task_succeeded(name, number, result)
        self._results[name] = result
        return ""

    def _is_finished(self, attempt: _Attempt[H]) -> bool:
        return bool(self._executor.wait_any([attempt.handle], 0))

    def _stop_running(self) -> None:
        for attempt in self._running:
            try:
                self._executor.cancel_task(attempt.handle)
            except Exception as error:  # best effort: the run is being abandoned
                log.warning("could not cancel a task", task=attempt.task.name, error=str(error))
        self._running.clear()
