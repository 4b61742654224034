"""MLflow's search-filter grammar, read once for every search that speaks it (a tokenizer
and a small recursive parser, no eval) into comparisons each search maps onto its own
fields, refusing there what it does not answer.

A filter is comparisons joined by ``AND``::

    metrics.acc > 0.9    params.C = '1.0'    tags.`mlflow.user` LIKE 'ro%'
    name IN ('a', 'b')    version_number >= 3    tag."key with space" != 'x'

An identifier is ``entity.key`` (entity: metric(s), param(s), parameter(s), tag(s),
attribute(s), attr or run) or a key alone; a key with dots or spaces after a prefix, or one
alone, may be quoted with backticks or double quotes. Values are strings in ``'`` or ``"``
(a doubled quote inside is one), numbers, and for ``IN`` and ``NOT IN`` a list of strings in
parentheses. Operators: ``= != <> == < <= > >= LIKE ILIKE IN NOT IN``. What cannot be read
is an InvalidInputError saying where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.errors import InvalidInputError

# Each entity prefix (lowercased), as MLflow takes it -> the entity it names.
ENTITIES = {
    "metric": "metrics", "metrics": "metrics",
    "param": "params", "params": "params", "parameter": "params", "parameters": "params",
    "tag": "tags", "tags": "tags",
    "attribute": "attributes", "attributes": "attributes", "attr": "attributes",
    "run": "attributes",
}  # fmt: skip
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<quoted>`[^`]*`)
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),])
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
    | (?P<word>[A-Za-z_][\w.\-/:]*)
    )""",
    re.VERBOSE,
)
_NOUNS = {"metrics": "metric ", "params": "param ", "tags": "tag ", "attributes": "attribute "}


@dataclass(frozen=True)
class Token:
    kind: str  # string, quoted, op, punct, number, word
    text: str


@dataclass(frozen=True)
class Comparison:
    """``entity.key op value``. ``entity``: attributes, metrics, params or tags, "" for a key
    without a prefix, else the unknown prefix as written (lowercased). ``value``: a quoted
    string's text, a number as written (``quoted`` false), or IN's strings. ``written``: the
    identifier as written, for messages."""

    entity: str
    key: str
    op: str
    value: str | tuple[str, ...]
    quoted: bool = True
    written: str = ""


def tokenize(text: str) -> list[Token]:
    """The filter's tokens; InvalidInputError at the first character that starts none."""
    tokens, position, text = [], 0, text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            rest = text[position:].strip()
            raise InvalidInputError(
                f"invalid filter: cannot read {rest[:40]!r} (at character {position})"
            )
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_filter(text: str) -> tuple[Comparison, ...]:
    """The comparisons of ``text`` ("" for none)."""
    tokens = tokenize(text)
    comparisons: list[Comparison] = []
    position = 0
    while position < len(tokens):
        comparison, position = _comparison(tokens, position)
        comparisons.append(comparison)
        if position < len(tokens):
            word = tokens[position]
            if word.kind != "word" or word.text.upper() != "AND":
                what = "OR is" if word.text.upper() == "OR" else f"{word.text!r} is"
                raise InvalidInputError(
                    f"invalid filter: {what} not supported; join comparisons with AND"
                )
            position += 1
            if position == len(tokens):
                raise InvalidInputError("invalid filter: it ends with AND")
    return tuple(comparisons)


def _take(tokens: list[Token], position: int, what: str) -> Token:
    if position >= len(tokens):
        raise InvalidInputError(f"invalid filter: it ends where {what} was expected")
    return tokens[position]


def _comparison(tokens: list[Token], position: int) -> tuple[Comparison, int]:
    written = _take(tokens, position, "a name to compare").text
    entity, key, position = _identifier(tokens, position)
    op, position = _operator(tokens, position)
    if op in ("IN", "NOT IN"):
        values, position = _value_list(tokens, position)
        return Comparison(entity, key, op, values, True, written), position
    token = _take(tokens, position, "a value")
    if token.kind == "number":
        return Comparison(entity, key, op, token.text, False, written), position + 1
    if token.kind != "string":
        raise InvalidInputError(
            f"invalid filter: expected a quoted string or a number, got {token.text!r}"
        )
    return Comparison(entity, key, op, unquote(token.text), True, written), position + 1


def _identifier(tokens: list[Token], position: int) -> tuple[str, str, int]:
    """(entity, key, next position) of the identifier at ``position``."""
    token = tokens[position]
    if token.kind in ("quoted", "string"):
        return "", unquote(token.text), position + 1
    if token.kind != "word":
        raise InvalidInputError(f"invalid filter: expected a name to compare, got {token.text!r}")
    prefix, dot, key = token.text.partition(".")
    if not dot:
        return "", token.text, position + 1
    entity = ENTITIES.get(prefix.lower(), prefix.lower())
    if key:
        return entity, key, position + 1
    quoted = _take(tokens, position + 1, "a key")
    if quoted.kind in ("quoted", "string") and len(quoted.text) > 2:
        return entity, unquote(quoted.text), position + 2
    noun = _NOUNS.get(entity, "")
    raise InvalidInputError(
        f"invalid filter: a {noun}key follows {token.text!r} (quote it with backticks)"
    )


def _operator(tokens: list[Token], position: int) -> tuple[str, int]:
    token = _take(tokens, position, "a comparison operator")
    if token.kind == "op":
        return {"==": "=", "<>": "!="}.get(token.text, token.text), position + 1
    word = token.text.upper() if token.kind == "word" else ""
    if word in ("LIKE", "ILIKE", "IN"):
        return word, position + 1
    if word == "NOT" and position + 1 < len(tokens) and tokens[position + 1].text.upper() == "IN":
        return "NOT IN", position + 2
    raise InvalidInputError(
        f"invalid filter: {token.text!r} is not a supported comparison operator"
    )


def _value_list(tokens: list[Token], position: int) -> tuple[tuple[str, ...], int]:
    if _take(tokens, position, "(").text != "(":
        raise InvalidInputError(
            "invalid filter: IN takes a list of strings in parentheses: ('a', 'b')"
        )
    values: list[str] = []
    position += 1
    while True:
        token = _take(tokens, position, "a quoted string")
        if token.kind != "string":
            raise InvalidInputError(
                f"invalid filter: IN lists hold quoted strings, got {token.text!r}"
            )
        values.append(unquote(token.text))
        separator = _take(tokens, position + 1, "',' or ')'")
        position += 2
        if separator.text == ")":
            return tuple(values), position
        if separator.text != ",":
            raise InvalidInputError(
                f"invalid filter: expected ',' or ')' in a list, got {separator.text!r}"
            )


def unquote(text: str) -> str:
    """A quoted string's or key's text (a doubled quote inside a string is one)."""
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote) if quote in "'\"" else text[1:-1]
