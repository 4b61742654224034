"""A pipeline's code directory, stored with the pipeline version it belongs to."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ledger.artifacts.store import ArtifactStore
from ledger.errors import InvalidInputError
from ledger.specs import content_digest

# Never part of a pipeline's code: caches, virtual environments, VCS and ledger data.
SKIPPED = frozenset(
    {
        ".git",
        ".hg",
        "__pycache__",
        ".venv",
        "venv",
        "node_modules",
        ".ledger",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)
MAX_CODE_FILES = 2_000


def code_files(directory: Path) -> list[Path]:
    """The files under ``directory`` that make up the code, sorted."""
    if not directory.is_dir():
        raise InvalidInputError(f"pipeline code directory does not exist: {directory}")
    files = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part in SKIPPED for part in relative.parts) or path.suffix == ".pyc":
            continue
        if path.is_file():
            files.append(path)
            if len(files) > MAX_CODE_FILES:
                raise InvalidInputError(
                    f"{directory} holds more than {MAX_CODE_FILES} files: point `code` "
                    "at the pipeline's own directory"
                )
    if not files:
        raise InvalidInputError(f"pipeline code directory holds no files: {directory}")
    return files


def snapshot_code(artifacts: ArtifactStore, directory: Path) -> dict[str, Any]:
    """Store the code files; return the snapshot recorded in the pipeline version."""
    entries = []
    for path in code_files(directory):
        digest, size = artifacts.put_file(path)
        entries.append(
            {"path": path.relative_to(directory).as_posix(), "sha256": digest, "size": size}
        )
    return {
        "digest": content_digest([[e["path"], e["sha256"]] for e in entries]),
        "git_commit": git_commit(directory),
        "files": entries,
    }


def git_commit(directory: Path) -> str:
    """The commit checked out at ``directory`` (suffixed ``-dirty`` when it has changes),
    or "" outside a git work tree."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    try:
        commit = git("rev-parse", "HEAD")
        if commit and git("status", "--porcelain", "--", "."):
            commit += "-dirty"
        return commit
    except (OSError, subprocess.TimeoutExpired):
        return ""
