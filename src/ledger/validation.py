"""Refuse values the stores cannot hold, before anything is written.

PostgreSQL text cannot hold NUL; UTF-8 cannot encode a lone surrogate; SQLite and
PostgreSQL ``BIGINT`` stop at 64 bits; JSON has no NaN or infinity. An event carrying
one of these would commit to the log and then break every view that tries to store
it, so every new event is checked here, field by field, at the command boundary.
"""

from __future__ import annotations

import math
from typing import Any

from ledger.errors import InvalidInputError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Event fields the ledger itself sets (an id, numbers, a time): never user input.
_OWN_FIELDS = frozenset({"originator_id", "originator_version", "timestamp"})
# How event fields are named in messages, where the field's own name says too little.
_LABELS = {"key": "tag key", "value": "tag value", "spec": "", "content": ""}
_NO_KEY = object()


class _Poison(Exception):
    """A value the stores cannot hold; ``path`` grows as the walk unwinds."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.key: object = _NO_KEY  # the offending dict key, when it is a key
        self.path: list[object] = []  # keys and indexes, outermost first


def _check_str(text: str) -> None:
    if "\x00" in text:
        raise _Poison("contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _Poison("contains a lone surrogate (not valid Unicode)") from None


def _check_int(number: int) -> None:
    if not INT64_MIN <= number <= INT64_MAX:
        raise _Poison("is an integer outside the signed 64-bit range")


def _check_float(number: float) -> None:
    if not math.isfinite(number):
        raise _Poison(f"is not a finite number ({number!r})")


def _check_dict(mapping: dict[Any, Any]) -> None:
    for key, item in mapping.items():
        try:
            _check_value(key)
        except _Poison as poison:
            poison.key = key
            raise
        try:
            _check_value(item)
        except _Poison as poison:
            poison.path.insert(0, key)
            raise


def _check_sequence(items: list[Any] | tuple[Any, ...]) -> None:
    for index, item in enumerate(items):
        try:
            _check_value(item)
        except _Poison as poison:
            poison.path.insert(0, index)
            raise


_CHECKS: dict[type, Any] = {
    str: _check_str,
    int: _check_int,
    float: _check_float,
    dict: _check_dict,
    list: _check_sequence,
    tuple: _check_sequence,
    bool: None,
    type(None): None,
}


def _check_value(value: Any) -> None:
    """Dispatch on the exact type (the common case), then on subclasses (str enums...)."""
    kind = type(value)
    if kind in _CHECKS:
        check = _CHECKS[kind]
    else:
        base = next((t for t in (str, int, float, dict, list, tuple) if isinstance(value, t)), None)
        check = _CHECKS[kind] = _CHECKS[base] if base is not None else None
    if check is not None:
        check(value)


def _fine(value: Any) -> bool:
    """Whether ``value`` holds nothing to refuse: the fast pass every event goes through
    (about 5 µs for a registration). ``_check_value`` then says what and where."""
    kind = type(value)
    if kind is str:
        return "\x00" not in value and (value.isascii() or _encodable(value))
    if kind is dict:
        for key, item in value.items():
            if type(key) is str and type(item) is str:  # tags, most often: inlined
                plain = key.isascii() and item.isascii() and "\x00" not in key
                if not (plain and "\x00" not in item) and not (_fine(key) and _fine(item)):
                    return False
            elif not (_fine(key) and _fine(item)):
                return False
        return True
    if kind is list or kind is tuple:
        return all(map(_fine, value))
    if kind is int:
        return bool(INT64_MIN <= value <= INT64_MAX)
    if kind is float:
        return math.isfinite(value)
    if kind is bool or value is None:
        return True
    try:  # a subclass (a str enum...) or another type: the thorough pass decides
        _check_value(value)
    except _Poison:
        return False
    return True


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _message(what: str, poison: _Poison) -> str:
    """E.g. "tags['team'] contains a NUL character", "key 'a\\x00' of tags contains..."."""
    label, path = _LABELS.get(what, what), poison.path
    if not label and path:  # a spec's own fields read as top-level names
        label, path = str(path[0]), path[1:]
    place = label + "".join(f"[{_shown(part)}]" for part in path)
    if poison.key is not _NO_KEY:
        return f"key {_shown(poison.key)} of {place or 'the input'} {poison.problem}"
    return f"{place or 'the input'} {poison.problem}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_value(what: str, value: Any) -> None:
    """Raise InvalidInputError when ``value`` (recursively) holds something no store can
    hold: NUL, a lone surrogate, an int beyond 64 bits, NaN or infinity."""
    if _fine(value):
        return
    try:
        _check_value(value)
    except _Poison as poison:
        raise InvalidInputError(_message(what, poison)) from None


def check_event_fields(event: Any) -> None:
    """Check every field of a new domain event except those the ledger sets itself."""
    for name, value in vars(event).items():
        if name not in _OWN_FIELDS and not _fine(value):
            check_value(name, value)
