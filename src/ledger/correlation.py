"""Correlation ids: what ties a caller's request to its events and to the rows collected
from it (which ``ledger monitor labels`` joins ground truth with)."""

from __future__ import annotations

import re
import uuid

HEADER = "X-Correlation-ID"
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def well_formed(text: str) -> bool:
    return bool(_WELL_FORMED.fullmatch(text))


def given_or_new(text: str) -> str:
    """``text`` when it is a well-formed correlation id, else a new one."""
    return text if well_formed(text) else uuid.uuid4().hex
