"""The logs of pipeline jobs' steps: one file per step and attempt, under the logs folder.

The step runner writes them (``executors.steps``); `ledger job logs` and the web UI's job
page read them here, in the order the attempts were written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def log_path(logs_dir: Path, job_id: str, step: str, attempt: int) -> Path:
    """Where the log of ``step``'s ``attempt`` of job ``job_id`` is written."""
    return logs_dir / "jobs" / job_id / f"{step}.{attempt}.log"


@dataclass(frozen=True)
class StepLog:
    """The log file of one attempt of one step."""

    step: str
    attempt: int
    path: Path

    @property
    def heading(self) -> str:
        """How `ledger job logs` heads this log: ``train (attempt 2)``."""
        return f"{self.step} (attempt {self.attempt})"

    def size(self) -> int:
        """Its size now (0 when it is gone)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, start: int = 0, limit: int | None = None) -> bytes:
        """Its bytes from ``start`` (all of them, or at most ``limit``)."""
        with self.path.open("rb") as log:
            log.seek(start)
            return log.read() if limit is None else log.read(limit)

    def tail(self, limit: int) -> tuple[str, bool]:
        """Its last ``limit`` bytes as text, and whether earlier ones were left out."""
        size = self.size()
        start = max(0, size - limit)
        return self.read(start, limit).decode(errors="replace"), start > 0


def step_logs(logs_dir: Path, job_id: str, step: str = "") -> list[StepLog]:
    """The logs of job ``job_id`` (an id as the views key it), of ``step`` only when given,
    oldest first (by when they were last written, then by name)."""
    directory = logs_dir / "jobs" / job_id
    found = []
    for path in directory.glob(f"{step or '*'}.*.log"):
        name, _, attempt = path.name.removesuffix(".log").rpartition(".")
        if name and attempt.isdigit() and (not step or name == step):
            found.append((_written_at(path), path.name, StepLog(name, int(attempt), path)))
    return [log for _, _, log in sorted(found, key=lambda item: item[:2])]


def _written_at(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
