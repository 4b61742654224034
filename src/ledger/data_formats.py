"""The file formats data assets may hold, told by a file name's suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeAlias

from ledger.errors import InvalidInputError

Format: TypeAlias = Literal["csv", "parquet"]

_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def format_of(label: str, name: str) -> Format:
    """The format a file name's suffix tells; InvalidInputError naming ``label`` else."""
    fmt = _FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        supported = ", ".join(sorted(_FORMATS))
        raise InvalidInputError(f"unsupported dataset file {label} (expected {supported})")
    return fmt
