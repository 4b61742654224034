"""Names and references: ``name``, ``name:VERSION`` and ``model@alias``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.errors import InvalidInputError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
RESERVED_ALIASES = frozenset({"latest"})


def check_name(name: str, what: str = "name") -> str:
    """Names start with a letter or digit and use letters, digits, '.', '_' and '-'."""
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' or '-' "
            "(max 128, starting with a letter or digit)"
        )
    return name


def check_alias(alias: str) -> str:
    if not _ALIAS.fullmatch(alias) or alias in RESERVED_ALIASES:
        raise InvalidInputError(
            f"invalid alias {alias!r}: start with a letter, then letters, digits, '_' or '-'"
            + (" ('latest' is reserved)" if alias in RESERVED_ALIASES else "")
        )
    return alias


@dataclass(frozen=True)
class Ref:
    """A reference to a version: an explicit number, an alias, or (neither) the latest."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def parse_ref(text: str, *, allow_alias: bool = True) -> Ref:
    """Parse ``name``, ``name:3`` or (when allowed) ``name@alias``."""
    text = text.strip()
    if allow_alias and "@" in text:
        name, alias = text.split("@", 1)
        return Ref(check_name(name), alias=check_alias(alias))
    if ":" in text:
        name, version = text.rsplit(":", 1)
        if not version.isdigit() or int(version) < 1:
            raise InvalidInputError(f"invalid reference {text!r}: version must be a number >= 1")
        return Ref(check_name(name), version=int(version))
    return Ref(check_name(text))


def parse_pairs(items: list[str], what: str) -> dict[str, str]:
    """Parse ``key=value`` arguments (tags, parameters, weights)."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"invalid {what} {item!r}: expected key=value")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_weights(items: list[str], what: str = "traffic") -> dict[str, int]:
    """Parse ``deployment=percent`` arguments into whole percentages."""
    weights: dict[str, int] = {}
    for key, value in parse_pairs(items, what).items():
        try:
            weights[key] = int(value)
        except ValueError:
            raise InvalidInputError(
                f"invalid {what} weight {key}={value!r}: expected a whole percentage"
            ) from None
    return weights
