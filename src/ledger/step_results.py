"""What a pipeline step hands back to the worker that records it (plain, picklable data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.artifacts.paths import FileEntry

FILE_PREFIX = "sha256:"  # a step's output file: its blob's digest follows
TREE_PREFIX = "tree:sha256:"  # a directory: the digest of its JSON manifest of files


@dataclass(frozen=True)
class ModelRequest:
    """A model version a step asks to register; its files are already stored."""

    name: str
    files: list[FileEntry]
    flavor: str = "custom"
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    signature: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepOutcome:
    """What one successful step attempt produced."""

    outputs: dict[str, str]
    metrics: dict[str, float]
    duration_s: float
    log_uri: str
    models: list[ModelRequest] = field(default_factory=list)
