"""Reading an MLflow request's fields: a GET's from its query string (a repeated field
given once or many times), any other method's from its JSON body, as MLflow's server does.

Versions travel as strings (``"3"``; a number is accepted too), tags as ``[{key, value}]``.
Every bad value is an MlflowError(INVALID_PARAMETER_VALUE) naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from ledger.api.mlflow.errors import INVALID_PARAMETER_VALUE, MlflowError
from ledger.api.routes.common import MAX_NUMBER

REASON_HEADER = "X-Ledger-Reason"
MAX_REASON = 2_000


def invalid(message: str) -> MlflowError:
    return MlflowError(INVALID_PARAMETER_VALUE, message)


class Fields:
    """The fields of one request, read by name and type."""

    def __init__(self, values: dict[str, Any], lists: dict[str, list[str]] | None = None):
        self._values = values
        self._lists = lists or {}

    def has(self, name: str) -> bool:
        return self._values.get(name) is not None

    def text(self, name: str, *, required: bool = False) -> str:
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise invalid(f"missing value for required parameter '{name}'")
            return ""
        if not isinstance(value, str):
            raise invalid(f"parameter '{name}' must be a string, got {value!r:.80}")
        return value

    def version(self, name: str = "version") -> int:
        """A required version number, ``"3"`` or ``3``."""
        value = self._values.get(name)
        if value is None or value == "":
            raise invalid(f"missing value for required parameter '{name}'")
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not text.isascii() or not text.isdigit():
            raise invalid(f"parameter '{name}' must be a version number, got {value!r:.80}")
        number = int(text)
        if not 1 <= number <= MAX_NUMBER:
            raise invalid(f"parameter '{name}' must be a version number >= 1, got {value!r:.80}")
        return number

    def number(self, name: str, default: int) -> int:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise invalid(f"parameter '{name}' must be an integer, got {value!r:.80}")
        try:
            return int(value)
        except ValueError:
            raise invalid(f"parameter '{name}' must be an integer, got {value!r:.80}") from None

    def texts(self, name: str) -> list[str]:
        """A repeated string field (e.g. ``order_by``, ``stages``)."""
        value = self._lists.get(name, self._values.get(name))
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise invalid(f"parameter '{name}' must be a list of strings, got {value!r:.80}")
        return items

    def tags(self, name: str = "tags") -> dict[str, str]:
        """``[{"key": k, "value": v}, ...]`` as a dict (the last of a repeated key wins)."""
        value = self._values.get(name) or []
        if not isinstance(value, list):
            raise invalid(f"parameter '{name}' must be a list of {{key, value}} objects")
        tags: dict[str, str] = {}
        for tag in value:
            key = tag.get("key") if isinstance(tag, dict) else None
            text = tag.get("value", "") if isinstance(tag, dict) else None
            if not isinstance(key, str) or not key or not isinstance(text, str):
                raise invalid(f"parameter '{name}': each tag needs a key and a string value")
            tags[key] = text
        return tags


async def read_fields(request: Request) -> Fields:
    """The request's fields: the query string of a GET, else the JSON object of its body."""
    if request.method == "GET":
        query = request.query_params
        return Fields(dict(query), {key: query.getlist(key) for key in query})
    body = await request.body()
    if not body.strip():
        return Fields({})
    try:
        values = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise invalid(f"the request body is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise invalid("the request body must be a JSON object")
    return Fields(values)


RequestFields = Annotated[Fields, Depends(read_fields)]


def reason_of(request: Request, fallback: str) -> str:
    """Why, as recorded on the events: the ``X-Ledger-Reason`` header, else ``fallback``."""
    given = request.headers.get(REASON_HEADER, "").strip()
    return (given or fallback)[:MAX_REASON]
