"""Pages of query results with opaque continuation tokens.

A token carries the log position where the previous page stopped; positions
never change, so a page sequence stays stable while new events arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic

from typing_extensions import TypeVar

from ledger.errors import InvalidInputError

Item = TypeVar("Item", default=dict[str, Any])


@dataclass(frozen=True)
class Page(Generic[Item]):
    """One page of results, and the token for the next one ("" when this is the last)."""

    items: list[Item]
    next_token: str

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_token": self.next_token}


def encode_token(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"position": position}).encode()).decode()


def decode_token(token: str) -> int:
    try:
        position = json.loads(base64.urlsafe_b64decode(token.encode()))["position"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        position = None
    if not isinstance(position, int) or isinstance(position, bool):
        raise InvalidInputError("invalid page token: pass the next_token of a previous page")
    return position
