"""What both export formats share: checking ``--since``, and what an export did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ledger.errors import InvalidInputError

Progress = Callable[[int, int], None]  # (events done, events in all)


def check_since(since: int | None, head: int) -> None:
    """A ``--since`` position must be in the log: 0 (everything) to its head."""
    if since is None:
        return
    if since < 0:
        raise InvalidInputError(f"--since must be a log position (0 or more), got {since}")
    if since > head:
        raise InvalidInputError(
            f"--since {since} is beyond the end of the log (its last position is {head})"
        )


@dataclass
class ExportSummary:
    """One export: where to, from which position, how far, and what it wrote."""

    target: str
    format: str
    since: int  # events after this position were exported
    position: int  # ... up to this one
    views_position: int  # the views were exported as they were at this position
    events: int  # events written by this export
    exported_at: str
    written: list[str] = field(default_factory=list)  # files (Parquet) or tables (DuckDB)
    adopted: list[str] = field(default_factory=list)  # part files a stopped run had written
    views: int = 0  # view tables and analytics datasets exported

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
